#!/usr/bin/env bash
# Builds the embedded-safe modules (PerchGraph, PerchEngine, perch-agent) in Embedded Swift mode for a cross
# target, to prove they stay free of Foundation, existentials and reflection. `make test` runs it.
# Usage: scripts/build-embedded.sh [TARGET]   (default aarch64-none-none-elf)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${1:-aarch64-none-none-elf}"
SWIFTC="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
OUT=".build-embedded/$TARGET"
mkdir -p "$OUT"
case "$TARGET" in
  aarch64-*) SYSROOT=/usr/aarch64-linux-gnu ;;
  armv7*) SYSROOT=/usr/arm-linux-gnueabihf ;;
  *) SYSROOT=/ ;;
esac
COMMON=(-target "$TARGET" -enable-experimental-feature Embedded -wmo -parse-as-library -Osize
  -I Sources/CPerchShims/include -I "$OUT"
  -Xcc --sysroot="$SYSROOT" -Xcc -isystem -Xcc "$SYSROOT/include" -Xcc -D__linux__ -Xcc -D__unix__)
# CPerchShims is header-only (static inline), imported through its module map.
mkdir -p "$OUT/CPerchShims"
cat > "$OUT/module.modulemap" <<MAP
module CPerchShims {
  header "$(pwd)/Sources/CPerchShims/include/CPerchShims.h"
  export *
}
MAP
echo "embedded: PerchGraph ($TARGET)"
"$SWIFTC" "${COMMON[@]}" -module-name PerchGraph -emit-module -emit-module-path "$OUT/PerchGraph.swiftmodule" \
  -c -o "$OUT/PerchGraph.o" $(find Sources/PerchGraph -name '*.swift' | sort)
echo "embedded: PerchEngine ($TARGET)"
"$SWIFTC" "${COMMON[@]}" -module-name PerchEngine -emit-module -emit-module-path "$OUT/PerchEngine.swiftmodule" \
  -c -o "$OUT/PerchEngine.o" $(find Sources/PerchEngine -name '*.swift' | sort)
# perch-agent (compile only; linking a device binary is `perch agent build`). Its shim header
# includes libsodium's and libarchive's headers, which are architecture-independent: take them
# from the host's /usr/include after the target sysroot.
mkdir -p "$OUT/agent"
cat > "$OUT/agent/module.modulemap" <<MAP
module CPerchAgentShims {
  header "$(pwd)/Sources/CPerchAgentShims/include/CPerchAgentShims.h"
  export *
}
MAP
echo "embedded: perch-agent ($TARGET)"
"$SWIFTC" "${COMMON[@]/-parse-as-library}" -I "$OUT/agent" -Xcc -idirafter -Xcc /usr/include -module-name perch_agent \
  -c -o "$OUT/perch-agent.o" $(find Sources/perch-agent -name '*.swift' | sort)
ls -l "$OUT"/*.o
echo "embedded build OK ($TARGET)"
