#!/usr/bin/python3
"""Peer for `saekit bench gemm` and `saekit bench topk`: PyTorch on the CPU (sgemm is
OpenBLAS on Debian; topk is ATen's).

Prints one JSON line per measurement in the schema of the saekit benches:
{"bench":"gemm","impl":"torch","m":..,"k":..,"n":..,"threads":..,"dtype":..,"ms":..,"gflops":..,"blas":..}
{"bench":"topk","impl":"torch","batch":..,"m":..,"k":..,"threads":..,"ms":..}
Run with Debian's /usr/bin/python3 (python3-torch) and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
unset so OpenBLAS picks its AVX-512 kernel.

--dtype bfloat16 times torch.mm on bfloat16 tensors instead (oneDNN's bf16 GEMM, float32
accumulation, bf16 output): the peer of `saekit bench gemm --matmul-precision medium`.

usage: peer_kernels.py [--shapes 4096x512x16384,4096x2048x512] [--topk 4096x16384x64]
                       [--threads 1,2] [--runs 7] [--dtype float32|bfloat16]
"""
import argparse
import ctypes
import json
import re

import torch

from peer_timing import median_ms


def set_blas_threads(threads):
    """torch.set_num_threads does not reach Debian's pthread OpenBLAS; call it directly."""
    torch.set_num_threads(threads)
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "libopenblas" in line}
    for lib in libs:
        ctypes.CDLL(lib).openblas_set_num_threads(threads)


def blas_name():
    """Which library torch.mm runs on: OpenBLAS (Debian's torch, linked to "generic" BLAS that
    the OpenBLAS package provides) or MKL (PyPI's CPU wheels), as the comparison's label."""
    with open("/proc/self/maps") as maps:
        if any("libopenblas" in line for line in maps):
            return "OpenBLAS"
    match = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return {"mkl": "MKL"}.get(match.group(1), match.group(1)) if match else "unknown"


def bench(m, k, n, threads, runs, dtype="float32"):
    set_blas_threads(threads)
    torch.manual_seed(0)
    a = torch.randn(m, k).to(getattr(torch, dtype))
    b = torch.randn(k, n).to(getattr(torch, dtype))
    c = torch.empty(m, n, dtype=getattr(torch, dtype))
    ms = median_ms(lambda: torch.mm(a, b, out=c), runs)
    return {"bench": "gemm", "impl": "torch", "m": m, "k": k, "n": n, "threads": threads, "dtype": dtype,
            "ms": round(ms, 3), "gflops": round(2.0 * m * k * n / ms / 1e6, 1), "blas": blas_name()}


def bench_topk(batch, m, k, threads, runs):
    set_blas_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(batch, m)
    ms = median_ms(lambda: x.topk(k, dim=-1, sorted=False), runs)
    return {"bench": "topk", "impl": "torch", "batch": batch, "m": m, "k": k, "threads": threads, "ms": round(ms, 3)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="4096x512x16384,4096x2048x512")
    p.add_argument("--topk", default="4096x16384x64")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    a = p.parse_args()
    for shape in filter(None, a.shapes.split(",")):
        m, k, n = (int(v) for v in shape.split("x"))
        for t in a.threads.split(","):
            print(json.dumps(bench(m, k, n, int(t), a.runs, a.dtype)), flush=True)
    for shape in filter(None, a.topk.split(",")):
        batch, m, k = (int(v) for v in shape.split("x"))
        for t in a.threads.split(","):
            print(json.dumps(bench_topk(batch, m, k, int(t), a.runs)), flush=True)


if __name__ == "__main__":
    main()
