#!/usr/bin/env bash
# generate-onnx-proto.sh — regenerate Sources/PerchONNX/Generated/onnx.pb.swift
#
# What it does, from scratch and in a throw-away temp dir:
#   1. installs protoc (Debian package protobuf-compiler) if it is missing;
#   2. downloads the onnx==1.17.0 wheel from PyPI (--no-deps --only-binary :all:)
#      and takes onnx/onnx.proto out of it (proto2, package `onnx`);
#   3. clones swift-protobuf 1.39.0 (the version Package.swift depends on) and
#      builds its protoc-gen-swift plugin (`swift build -c release`, a minute or
#      a few on 2 cores);
#   4. runs `protoc --swift_out=... --swift_opt=Visibility=Public` and writes
#      Sources/PerchONNX/Generated/onnx.pb.swift (types are `Onnx_ModelProto`,
#      `Onnx_GraphProto`, ...).
#
# The generated file is COMMITTED to the repo, so building Perch never needs
# protoc or this script; run it only to change the ONNX or swift-protobuf
# version. It is idempotent: the output file is only rewritten if it changed.
#
# Optional environment:
#   PROTOC_GEN_SWIFT=/path/to/protoc-gen-swift  reuse an already built plugin
#   PYTHON=python3                              interpreter whose pip is used
set -euo pipefail

ONNX_VERSION=1.17.0
SWIFT_PROTOBUF_VERSION=1.39.0
SWIFT_PROTOBUF_URL=https://github.com/apple/swift-protobuf
PYTHON=${PYTHON:-python3}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
out_dir=Sources/PerchONNX/Generated
out_file=$out_dir/onnx.pb.swift

log() { printf '[generate-onnx-proto] %s\n' "$*" >&2; }

# --- tools -----------------------------------------------------------------
if ! command -v protoc >/dev/null 2>&1; then
    log "protoc not found; installing protobuf-compiler"
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq protobuf-compiler
fi
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH=/opt/swift/usr/bin:$PATH
fi
if [ -z "${PROTOC_GEN_SWIFT:-}" ] && ! command -v swift >/dev/null 2>&1; then
    log "error: swift not found on PATH (needed to build protoc-gen-swift)"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/perch-onnx-proto.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- onnx.proto from the wheel ----------------------------------------------
log "downloading onnx==$ONNX_VERSION wheel"
"$PYTHON" -m pip download --quiet --disable-pip-version-check \
    --no-deps --only-binary :all: -d "$tmp/wheel" "onnx==$ONNX_VERSION"
wheel=$(ls "$tmp"/wheel/onnx-"$ONNX_VERSION"-*.whl | head -n 1)
mkdir -p "$tmp/proto"
"$PYTHON" - "$wheel" "$tmp/proto/onnx.proto" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("onnx/onnx.proto"))
PY

# --- protoc-gen-swift ---------------------------------------------------------
plugin=${PROTOC_GEN_SWIFT:-}
if [ -z "$plugin" ]; then
    log "cloning swift-protobuf $SWIFT_PROTOBUF_VERSION"
    git -c advice.detachedHead=false clone --quiet \
        --branch "$SWIFT_PROTOBUF_VERSION" "$SWIFT_PROTOBUF_URL" "$tmp/swift-protobuf"
    log "building protoc-gen-swift (release)"
    swift build -c release --product protoc-gen-swift \
        --package-path "$tmp/swift-protobuf" >&2
    plugin=$(swift build -c release --product protoc-gen-swift \
        --package-path "$tmp/swift-protobuf" --show-bin-path)/protoc-gen-swift
fi
[ -x "$plugin" ] || { log "error: plugin not executable: $plugin"; exit 1; }

# --- generate -----------------------------------------------------------------
mkdir -p "$tmp/out"
protoc -I "$tmp/proto" \
    --plugin=protoc-gen-swift="$plugin" \
    --swift_out="$tmp/out" \
    --swift_opt=Visibility=Public \
    "$tmp/proto/onnx.proto"

mkdir -p "$out_dir"
if [ -f "$out_file" ] && cmp -s "$tmp/out/onnx.pb.swift" "$out_file"; then
    log "$out_file is up to date"
else
    cp "$tmp/out/onnx.pb.swift" "$out_file"
    log "wrote $out_file ($(wc -c <"$out_file") bytes)"
fi
