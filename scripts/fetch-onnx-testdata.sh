#!/usr/bin/env bash
# fetch-onnx-testdata.sh — put ONNX's own backend test data under testdata/
#
# Downloads onnx wheels from PyPI (pip download --no-deps --only-binary :all:)
# and unpacks only the test data out of them:
#   onnx==1.17.0                    onnx/backend/test/data/node/*
#                                     -> testdata/onnx-node/<case>/{model.onnx,test_data_set_*/}
#   newest onnx (or $ONNX_NEW_VERSION)  onnx/backend/test/data/<kind>/*
#                                     -> testdata/onnx-<kind>/   for kind in
#                                        light pytorch-converted pytorch-operator simple real
#
# Idempotent: a directory with a stamp testdata/.<dir>.source is complete and
# is skipped; when all are present nothing is downloaded. FORCE=1 refetches
# everything.
# Each directory is unpacked in a staging dir and moved into place, so an
# interrupted run never leaves a half-filled directory behind.
# testdata/ is git-ignored.
set -euo pipefail

NODE_ONNX_VERSION=1.17.0
ONNX_NEW_VERSION=${ONNX_NEW_VERSION:-1.23.2}   # pinned: the light models' expected outputs were checked with it
NEW_KINDS=(light pytorch-converted pytorch-operator simple real)
PYTHON=${PYTHON:-python3}
FORCE=${FORCE:-0}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
mkdir -p testdata

log() { printf '[fetch-onnx-testdata] %s\n' "$*" >&2; }

# Stamp files live beside the data dirs (not inside, so that listing
# testdata/onnx-node/ yields only case directories).
stamp() { printf 'testdata/.%s.source' "$1"; }
is_done() { [ "$FORCE" != 1 ] && [ -f "$(stamp "$1")" ] && [ -d "testdata/$1" ]; }

need_node=1
is_done onnx-node && need_node=0
need_new=0
for kind in "${NEW_KINDS[@]}"; do
    is_done "onnx-$kind" || need_new=1
done
if [ "$need_node" = 0 ] && [ "$need_new" = 0 ]; then
    log "all ONNX test data already present (FORCE=1 to refetch)"
    exit 0
fi

rm -rf testdata/.staging-*   # left over by an interrupted run
tmp=$(mktemp -d "${TMPDIR:-/tmp}/perch-onnx-testdata.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# download SPEC DEST -> prints the wheel path
download() {
    "$PYTHON" -m pip download --quiet --disable-pip-version-check \
        --no-deps --only-binary :all: -d "$2" "$1" >&2
    ls "$2"/onnx-*.whl | head -n 1
}

# extract WHEEL PREFIX DEST_NAME SOURCE_LABEL
# Unpacks every member under PREFIX (stripped) into testdata/DEST_NAME.
extract() {
    local wheel=$1 prefix=$2 dest=testdata/$3 label=$4
    local stage
    stage=$(mktemp -d "testdata/.staging-$3.XXXXXX")
    "$PYTHON" - "$wheel" "$prefix" "$stage" <<'PY'
import os, shutil, sys, zipfile
wheel, prefix, stage = sys.argv[1:4]
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        if not rel or rel.startswith("/") or ".." in rel.split("/"):
            continue
        target = os.path.join(stage, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        n += 1
if n == 0:
    sys.exit(f"no files under {prefix!r} in {wheel}")
print(n)
PY
    rm -rf "$dest" "$(stamp "$3")"
    chmod 755 "$stage"   # mktemp -d creates it 0700
    mv "$stage" "$dest"
    printf '%s\n' "$label" >"$(stamp "$3")"
    log "$dest: $(find "$dest" -type f | wc -l) files from $label"
}

if [ "$need_node" = 1 ]; then
    log "downloading onnx==$NODE_ONNX_VERSION"
    wheel=$(download "onnx==$NODE_ONNX_VERSION" "$tmp/node")
    extract "$wheel" onnx/backend/test/data/node/ onnx-node "onnx==$NODE_ONNX_VERSION" >/dev/null
fi

if [ "$need_new" = 1 ]; then
    spec=onnx
    [ -n "$ONNX_NEW_VERSION" ] && spec="onnx==$ONNX_NEW_VERSION"
    log "downloading $spec"
    wheel=$(download "$spec" "$tmp/new")
    version=$(basename "$wheel" | cut -d- -f2)
    for kind in "${NEW_KINDS[@]}"; do
        is_done "onnx-$kind" && continue
        extract "$wheel" "onnx/backend/test/data/$kind/" "onnx-$kind" "onnx==$version" >/dev/null
    done
fi
