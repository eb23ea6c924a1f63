#!/usr/bin/env bash
# Upload throughput of Perch's SSH transport vs OpenSSH's scp, on the same test-device link, in
# one run: a 64 MiB bundle-sized file to a fresh `perch testfleet` device, three times each,
# median seconds and the ratio (scp time / perch time; ≥ 0.8 is the target).
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
perch_times=() scp_times=()
for i in 1 2 3; do
  t=$("$PERCH" upload "$STATE/payload.bin" --inventory "$STATE/fleet.yaml" --device dev1 --remote "bench/perch-$i.bin" --json \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  perch_times+=("$t")
  s0=$(date +%s.%N)
  scp -q -o BatchMode=yes -o UserKnownHostsFile="$STATE/known_hosts" -o StrictHostKeyChecking=yes \
      -i "$STATE/id_ed25519" -P "$PORT" "$STATE/payload.bin" "$USER_@$HOST:scp-$i.bin"
  s1=$(date +%s.%N)
  scp_times+=("$(python3 -c "print($s1 - $s0)")")
done
python3 - "$MIB" "${perch_times[*]}" "${scp_times[*]}" <<'PY'
import statistics, sys
mib = float(sys.argv[1])
p = statistics.median(map(float, sys.argv[2].split()))
s = statistics.median(map(float, sys.argv[3].split()))
print("upload %d MiB: perch %.2f s (%.0f MiB/s), scp %.2f s (%.0f MiB/s), perch/scp throughput ratio %.2f (target >= 0.8)"
      % (mib, p, mib / p, s, mib / s, s / p))
PY
