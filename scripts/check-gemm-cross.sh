#!/bin/sh
# Builds the native addon for another CPU: every native source compiled and linked into the
# addon (against Node's headers, warnings as errors), and the GEMM built without Node and
# checked against a float64 triple loop under qemu: the arm64 kernel (NEON) cannot be run by
# the test suites on an x86 machine.
# Needs Debian's g++-aarch64-linux-gnu and qemu-user (apt-get install -y g++-aarch64-linux-gnu
# qemu-user). Usage: scripts/check-gemm-cross.sh [aarch64]   (default aarch64)
set -eu
arch="${1:-aarch64}"
cxx="${arch}-linux-gnu-g++"
command -v "$cxx" >/dev/null || { echo "$cxx not found: apt-get install -y g++-${arch}-linux-gnu qemu-user" >&2; exit 2; }
command -v "qemu-${arch}" >/dev/null || { echo "qemu-${arch} not found: apt-get install -y qemu-user" >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
flags="-std=c++17 -O3 -fopenmp-simd -fno-math-errno -fno-trapping-math -Wall -Wno-unused-function -Werror -pthread"

# The whole addon, as binding.gyp builds it (Node's headers: beside the node binary running this).
node_include="$(dirname "$(dirname "$(node -p process.execPath)")")/include/node"
[ -f "$node_include/node_api.h" ] || { echo "Node's headers not found in $node_include" >&2; exit 2; }
for src in "$here"/native/src/*.cc; do
  "$cxx" $flags -fPIC -fexceptions -DNAPI_CPP_EXCEPTIONS -DNAPI_VERSION=8 -I"$node_include" \
    -I"$here/node_modules/node-addon-api" -c "$src" -o "$out/$(basename "$src").o"
done
"$cxx" -shared -pthread "$out"/*.o -o "$out/saekit_native.node"
echo "the addon builds for $arch: $(ls "$here"/native/src/*.cc | wc -l) sources, no warnings"

# The GEMM, run.
"$cxx" $flags \
  "$here/native/check/gemm_check.cc" "$here/native/src/gemm.cc" "$here/native/src/gemm_kernels.cc" \
  "$here/native/src/cpu.cc" "$here/native/src/threadpool.cc" -o "$out/gemm_check"
"qemu-${arch}" -L "/usr/${arch}-linux-gnu" "$out/gemm_check"
