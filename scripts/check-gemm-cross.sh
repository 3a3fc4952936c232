#!/bin/sh
# Builds the native GEMM (no Node) for another CPU and checks it against a float64 triple
# loop under qemu: the arm64 kernel (NEON) cannot be run by the test suites on an x86 machine.
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
"$cxx" -std=c++17 -O3 -fopenmp-simd -fno-math-errno -Wall -Wno-unused-function -pthread \
  "$here/native/check/gemm_check.cc" "$here/native/src/gemm.cc" "$here/native/src/gemm_kernels.cc" \
  "$here/native/src/cpu.cc" "$here/native/src/threadpool.cc" -o "$out/gemm_check"
"qemu-${arch}" -L "/usr/${arch}-linux-gnu" "$out/gemm_check"
