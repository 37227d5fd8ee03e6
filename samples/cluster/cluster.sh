#!/usr/bin/env bash
# UserOverlay cluster walk-through: three "hosts" on one machine, built from network namespaces,
# form a cluster like Docker swarm and share one encrypted network defined once.
#
#   sudo samples/cluster/cluster.sh
#
# Builds useroverlay (Release), creates an underlay bridge (192.0.2.0/24) with hosts h1–h3, starts one
# router per host from a configuration with no networks (host<i>.yaml here), then: swarm init on h1,
# h2 joins as a manager and h3 as a worker, `network create --attachable --opt encrypted blue` once on
# h1, a workload on every host attached with an address from the cluster's IPAM, pings across hosts,
# node ls, and the network as every host sees it. Everything it creates is removed when it exits.
# It only uses namespaces named uocl-<pid>-*, and addresses 192.0.2.0/24 and 198.18.0.0/15.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
P="uocl-$$"
work=$(mktemp -d /tmp/useroverlay-cluster.XXXXXX)
pids=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "cluster: $*" >&2; exit 1; }

cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || die "run it as root (sudo $0): it creates network namespaces and TAP devices"
for t in ip ping dotnet; do command -v "$t" >/dev/null || die "'$t' is missing (apt-get install iproute2 iputils-ping; .NET 10 SDK for dotnet)"; done

say "Building useroverlay (Release)"
dotnet build "$repo/Cli/Cli.csproj" -c Release -o "$work/bin" -v quiet -nologo | tail -n 3
uo() { dotnet "$work/bin/useroverlay.dll" "$@"; }

say "Creating hosts h1–h3 on an underlay bridge (192.0.2.0/24) and a workload namespace per host"
ip netns add "$P-hub"
ip -n "$P-hub" link add br0 type bridge
ip -n "$P-hub" link set br0 up
for i in 1 2 3; do
  ip netns add "$P-h$i"; ip -n "$P-h$i" link set lo up
  ip link add "${P}v$i" type veth peer name eth0 netns "$P-h$i"
  ip link set "${P}v$i" netns "$P-hub"
  ip -n "$P-hub" link set "${P}v$i" master br0 up
  ip -n "$P-h$i" addr add "192.0.2.$i/24" dev eth0
  ip -n "$P-h$i" link set eth0 up
  ip netns add "$P-c$i"; ip -n "$P-c$i" link set lo up
done

say "Starting one router per host (no networks in its configuration: the cluster brings them)"
for i in 1 2 3; do
  ip netns exec "$P-h$i" dotnet "$work/bin/useroverlay.dll" up --config "$here/host$i.yaml" --name "$P-h$i" \
    --state-dir "$work/state-h$i" > "$work/h$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 100); do uo status -H "$P-h$i" >/dev/null 2>&1 && break; sleep 0.1; done
  uo status -H "$P-h$i" >/dev/null 2>&1 || { cat "$work/h$i.log"; die "router h$i did not start"; }
done

say "h1: swarm init (control port 192.0.2.1:2377, subnets from 198.18.0.0/16)"
uo swarm init -H "$P-h1" --advertise-addr 192.0.2.1 --default-addr-pool 198.18.0.0/16
manager=$(uo swarm join-token -H "$P-h1" -q manager)
worker=$(uo swarm join-token -H "$P-h1" -q worker)

say "h2 joins as a manager, h3 as a worker (the token decides)"
uo swarm join -H "$P-h2" --token "$manager" 192.0.2.1
uo swarm join -H "$P-h3" --token "$worker" 192.0.2.1
uo node ls -H "$P-h1"

say "h1: one encrypted network for the whole cluster"
uo network create -H "$P-h1" --attachable --opt encrypted blue
for i in 1 2 3; do
  for _ in $(seq 100); do uo network ls -H "$P-h$i" -q | grep -q . && break; sleep 0.2; done
  uo network connect -H "$P-h$i" blue "$P-c$i"
done

say "Pings across hosts (addresses from the cluster's IPAM; ESP between hosts)"
addr() { ip -n "$1" -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1; }
for pair in "1 2" "1 3" "2 3" "3 1"; do
  set -- $pair
  to=$(addr "$P-c$2")
  printf '%-34s' "c$1 (h$1) → $to (c$2 on h$2):"
  ip netns exec "$P-c$1" ping -n -c 3 -i 0.2 -W 2 "$to" | tail -n 1
done

say "The network as h3, a worker, sees it (Scope swarm; Peers: the hosts with endpoints on it)"
uo network inspect -H "$P-h3" blue | grep -E '"(Name|Scope|Subnet|Gateway|encrypted|IP)"'
say "h3 may not create networks: it is a worker"
uo network create -H "$P-h3" --attachable red || true
say "h3's view of the cluster"
uo swarm status -H "$P-h3"

say "Done; stopping routers and removing namespaces"
