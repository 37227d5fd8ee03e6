#!/usr/bin/env bash
# UserOverlay quick start: three "hosts" on one machine, built from network namespaces.
#
#   sudo samples/quickstart.sh
#
# Builds useroverlay (Release), creates an underlay bridge (192.0.2.0/24) with hosts h1–h3,
# gives each host two workloads — c<i> on network blue (VNI 4097) and r<i> on network red
# (VNI 4098), both 198.18.0.0/24 — starts one router per host from samples/static/host<i>.yaml,
# then shows pings across hosts, that blue and red never mix, a short throughput figure, and
# a router's status. Everything it creates is removed when it exits (also on Ctrl-C or error).
# It only uses namespaces named uoqs-<pid>-*, and addresses 192.0.2.0/24 and 198.18.0.0/15.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
P="uoqs-$$"
work=$(mktemp -d /tmp/useroverlay-quickstart.XXXXXX)
pids=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "quickstart: $*" >&2; exit 1; }

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

say "Creating hosts h1–h3 on an underlay bridge (192.0.2.0/24) and workloads c1–c3, r1–r3"
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
  for w in c r; do ip netns add "$P-$w$i"; ip -n "$P-$w$i" link set lo up; done
done

say "Starting one router per host (useroverlay up --config samples/static/host<i>.yaml)"
for i in 1 2 3; do
  # The sample files name the workloads c<i>/r<i>; point them at this run's namespaces.
  sed -e "s/netns: c$i /netns: $P-c$i /; s/netns: r$i,/netns: $P-r$i,/" "$here/static/host$i.yaml" > "$work/host$i.yaml"
  ip netns exec "$P-h$i" dotnet "$work/bin/useroverlay.dll" up --config "$work/host$i.yaml" --name "$P-h$i" \
    > "$work/h$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 100); do uo status --name "$P-h$i" >/dev/null 2>&1 && break; sleep 0.1; done
  uo status --name "$P-h$i" >/dev/null 2>&1 || { cat "$work/h$i.log"; die "router h$i did not start"; }
  echo "router h$i is up: $(ip -n "$P-c$i" -br addr show eth0 | awk '{print $1, $3}') in $P-c$i"
done

say "Pings across hosts on network blue"
for pair in "1 12" "1 13" "2 13" "3 11"; do
  set -- $pair
  printf '%-28s' "c$1 → 198.18.0.$2:"
  ip netns exec "$P-c$1" ping -n -c 3 -i 0.2 -W 2 "198.18.0.$2" | tail -n 1
done
say "Network red, same subnet, different VNI"
printf '%-28s' "r1 → 198.18.0.23:"
ip netns exec "$P-r1" ping -n -c 3 -i 0.2 -W 2 198.18.0.23 | tail -n 1
printf '%-28s' "c1 (blue) → 198.18.0.23 (red):"
if ip netns exec "$P-c1" ping -n -c 2 -i 0.2 -W 1 198.18.0.23 >/dev/null 2>&1; then
  echo "REPLIED — networks leaked!"; exit 1
else
  echo "no reply, as it must be: blue and red never mix"
fi

if command -v iperf3 >/dev/null; then
  say "Throughput c1 → c3 across the overlay (iperf3, TCP, 3 s)"
  ip netns exec "$P-c3" iperf3 -s -1 -D --logfile "$work/iperf3-server.log"
  sleep 0.3
  ip netns exec "$P-c1" iperf3 -c 198.18.0.13 -t 3 -f m | grep -E 'receiver$' | awk '{print "  " $7, $8, "received over the overlay"}'
else
  say "Throughput: skipped (apt-get install iperf3 to see it)"
fi

say "What router h1 knows (useroverlay status --name $P-h1)"
uo status --name "$P-h1"

say "Done; stopping routers (their TAP devices go with them) and removing namespaces"
