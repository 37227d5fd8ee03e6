#!/usr/bin/env bash
# The cluster's control plane, measured (docs/performance.md, "The control plane"):
#   sudo UO=/path/to/useroverlay Bench/cluster-latency.sh
# Five hosts from namespaces (192.0.2.1–5): three managers, one worker, one standalone router. Prints the latency
# of `network connect` (20 each) on the standalone router's own network, and on a cluster network from the worker
# and from a follower manager; then kills the Raft leader and times until another manager accepts `network create`.
# Uses namespaces uomeas-<pid>-* and addresses 192.0.2.0/24, 198.18.0.0/15 only; removes everything on exit.
set -euo pipefail
UO=${UO:-useroverlay}
P="uomeas-$$"; work=$(mktemp -d /tmp/uomeas.XXXXXX); pids=()
cleanup() { set +e; for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; sleep 0.5; for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$P-hub"; ip -n "$P-hub" link add br0 type bridge; ip -n "$P-hub" link set br0 up
for i in 1 2 3 4 5; do
  ip netns add "$P-h$i"; ip -n "$P-h$i" link set lo up
  ip link add "${P}v$i" type veth peer name eth0 netns "$P-h$i"; ip link set "${P}v$i" netns "$P-hub"
  ip -n "$P-hub" link set "${P}v$i" master br0 up; ip -n "$P-h$i" addr add "192.0.2.$i/24" dev eth0; ip -n "$P-h$i" link set eth0 up
  ip netns exec "$P-h$i" "$UO" up --underlay "192.0.2.$i" --name "$P-h$i" --state-dir "$work/s$i" --log-level Warning > "$work/h$i.log" 2>&1 & pids+=($!)
done
for i in 1 2 3 4 5; do for _ in $(seq 100); do "$UO" status -H "$P-h$i" >/dev/null 2>&1 && break; sleep 0.1; done; done
"$UO" swarm init -H "$P-h1" --advertise-addr 192.0.2.1 --default-addr-pool 198.18.0.0/16 >/dev/null
mt=$("$UO" swarm join-token -H "$P-h1" -q manager); wt=$("$UO" swarm join-token -H "$P-h1" -q worker)
"$UO" swarm join -H "$P-h2" --token "$mt" 192.0.2.1 >/dev/null; "$UO" swarm join -H "$P-h3" --token "$mt" 192.0.2.1 >/dev/null
"$UO" swarm join -H "$P-h4" --token "$wt" 192.0.2.1 >/dev/null
"$UO" network create -H "$P-h1" --attachable cnet >/dev/null   # 198.18.0.0/24 from the pool
"$UO" network create -H "$P-h5" --subnet 198.19.0.0/24 lnet >/dev/null
for _ in $(seq 100); do "$UO" network ls -H "$P-h4" | grep -q cnet && break; sleep 0.1; done
ms() { echo $(( ($2 - $1) / 1000000 )); }
measure() { # host network count
  local out=()
  for k in $(seq "$3"); do
    ns="$P-x${1: -1}$2$k"; ip netns add "$ns"
    t0=$(date +%s%N); "$UO" network connect -H "$1" "$2" "$ns" >/dev/null; t1=$(date +%s%N)
    out+=($(ms "$t0" "$t1"))
  done
  printf '%s\n' "${out[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %d ms, min %d, max %d (n=%d)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
}
echo "network connect, own network, standalone router: $(measure "$P-h5" lnet 20)"
echo "network connect, cluster network, on a worker: $(measure "$P-h4" cnet 20)"
echo "network connect, cluster network, on a manager: $(measure "$P-h2" cnet 20)"
leader=$("$UO" swarm status -H "$P-h1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
li=${leader#192.0.2.}; li=${li%%:*}
echo "leader: h$li"
others=(); for i in 1 2 3; do [ "$i" != "$li" ] && others+=("$i"); done
t0=$(date +%s%N); kill -KILL "${pids[$((li-1))]}"
n=0; until "$UO" network create -H "$P-h${others[0]}" --attachable "after-$n" >/dev/null 2>&1; do n=$((n+1)); sleep 0.05; done
t1=$(date +%s%N)
echo "leader killed → network create accepted by another manager: $(ms "$t0" "$t1") ms ($n refused attempts)"
