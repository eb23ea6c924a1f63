#!/usr/bin/env bash
# Upload throughput of Perch's SSH transport vs OpenSSH's scp, on the same test-device link, in
# one run: a 64 MiB bundle-sized file to a fresh `perch testfleet` device, three times each,
# median seconds and the ratio (scp time / perch time; ≥ 0.8 is the target). Both times are the
# wall time of the whole process (connect, authenticate, send, rename), measured the same way;
# perch's own `seconds` (upload step only, without connection setup) is printed beside them.
# The files go to the device's home in the state directory, which is removed at the end.
# Usage: bench/upload-throughput.sh [PERCH_BINARY] [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
PERCH="${1:-.build/release/perch}"
MIB="${2:-64}"
STATE=$(mktemp -d /tmp/perch-upload-bench.XXXXXX)
trap '"$PERCH" testfleet down --state "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
"$PERCH" testfleet up --devices 1 --state "$STATE" --no-agent >/dev/null
HOST=$(grep -m1 'host:' "$STATE/fleet.yaml" | sed 's/.*host: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/')
PORT=$(grep -m1 'port:' "$STATE/fleet.yaml" | sed 's/.*port: *//')
USER_=$(grep -m1 'user:' "$STATE/fleet.yaml" | sed 's/.*user: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/')
head -c $((MIB * 1048576)) /dev/urandom > "$STATE/payload.bin"
DEST="$STATE/devices/dev1/home"
perch_times=() perch_own=() scp_times=()
for i in 1 2 3; do
  p0=$(date +%s.%N)
  t=$("$PERCH" upload "$STATE/payload.bin" --inventory "$STATE/fleet.yaml" --device dev1 --remote "$DEST/perch-$i.bin" --json \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  p1=$(date +%s.%N)
  perch_times+=("$(python3 -c "print($p1 - $p0)")")
  perch_own+=("$t")
  s0=$(date +%s.%N)
  scp -q -o BatchMode=yes -o UserKnownHostsFile="$STATE/known_hosts" -o StrictHostKeyChecking=yes \
      -i "$STATE/id_ed25519" -P "$PORT" "$STATE/payload.bin" "$USER_@$HOST:$DEST/scp-$i.bin"
  s1=$(date +%s.%N)
  scp_times+=("$(python3 -c "print($s1 - $s0)")")
done
cmp "$STATE/payload.bin" "$DEST/perch-3.bin"
python3 - "$MIB" "${perch_times[*]}" "${scp_times[*]}" "${perch_own[*]}" <<'PY'
import statistics, sys
mib = float(sys.argv[1])
p = statistics.median(map(float, sys.argv[2].split()))
s = statistics.median(map(float, sys.argv[3].split()))
o = statistics.median(map(float, sys.argv[4].split()))
print("runs (wall s): perch %s; scp %s" % (sys.argv[2], sys.argv[3]))
print("upload %d MiB, process wall time: perch %.2f s (%.0f MiB/s; upload step alone %.2f s), scp %.2f s (%.0f MiB/s), "
      "perch/scp throughput ratio %.2f (target >= 0.8)" % (mib, p, mib / p, o, s, mib / s, s / p))
PY
