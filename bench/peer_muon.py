#!/usr/bin/python3
"""Peer for `saekit bench train --optimizer muon`: one PyTorch training step of a TopK SAE
with the sparse (embedding_bag) decoder of ../shared/bench/peer_topk_sae.py, stepped as
sparsify's "muon" optimizer steps it: Muon on the weight matrices (Nesterov momentum 0.95,
five quintic Newton-Schulz iterations, decoupled weight decay 0.1, update scaled by
0.2 sqrt(max(rows, cols))) and Adam on the biases, both at lr 2e-3.

--ns-dtype bfloat16 runs the Newton-Schulz products in bfloat16, as sparsify does (fast only
on CPUs with AVX-512 BF16); float32 is the like-for-like peer of saekit's default precision.

Prints one JSON line per configuration in the schema of peer_topk_sae.py:
{"impl", "threads", "d", "m", "k", "batch", "tokens_per_s", "ms_per_step"}.

usage: peer_muon.py [--d 512] [--m 16384] [--k 64] [--batch 4096] [--steps 5] [--threads 2]
                    [--ns-dtype float32|bfloat16]
Run with Debian's /usr/bin/python3 (python3-torch) and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
unset so OpenBLAS picks its AVX-512 kernel.
"""
import argparse
import json

import torch
import torch.nn.functional as F

from peer_timing import median_ms

QUINTIC = (3.4445, -4.7750, 2.0315)


def orthogonalize(g, dtype):
    """Five quintic Newton-Schulz steps on the smaller Gram side of g."""
    a, b, c = QUINTIC
    x = g.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.t()
    x = x / (x.norm() + 1e-7)
    for _ in range(5):
        gram = x @ x.t()
        x = a * x + (b * gram + c * gram @ gram) @ x
    if tall:
        x = x.t()
    return x.to(g.dtype)


class MuonWithAdam:
    """Muon on 2-D parameters, torch's Adam on the rest, as sparsify pairs them."""

    def __init__(self, params, lr, ns_dtype, momentum=0.95, weight_decay=0.1):
        self.matrices = [p for p in params if p.ndim >= 2]
        self.buffers = [torch.zeros_like(p) for p in self.matrices]
        self.adam = torch.optim.Adam([p for p in params if p.ndim < 2], lr=lr)
        self.lr, self.ns_dtype, self.momentum, self.weight_decay = lr, ns_dtype, momentum, weight_decay

    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.matrices, self.buffers):
            p.mul_(1 - self.lr * self.weight_decay)
            buf.mul_(self.momentum).add_(p.grad, alpha=1 - self.momentum)
            nesterov = p.grad * (1 - self.momentum) + buf * self.momentum
            p.add_(orthogonalize(nesterov, self.ns_dtype), alpha=-self.lr * 0.2 * max(p.shape) ** 0.5)
        self.adam.step()

    def zero_grad(self):
        for p in self.matrices:
            p.grad = None
        self.adam.zero_grad(set_to_none=True)


class TopKSAE(torch.nn.Module):
    def __init__(self, d, m, k):
        super().__init__()
        self.k = k
        self.W_enc = torch.nn.Parameter(torch.randn(m, d) / d**0.5)
        self.b_enc = torch.nn.Parameter(torch.zeros(m))
        self.W_dec = torch.nn.Parameter(self.W_enc.data.clone())
        self.b_dec = torch.nn.Parameter(torch.zeros(d))

    def forward(self, x):
        pre = F.relu(F.linear(x - self.b_dec, self.W_enc, self.b_enc))
        vals, idx = pre.topk(self.k, dim=-1, sorted=False)
        return F.embedding_bag(idx, self.W_dec, per_sample_weights=vals, mode="sum") + self.b_dec


def bench(threads, d, m, k, batch, steps, ns_dtype):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sae = TopKSAE(d, m, k)
    opt = MuonWithAdam(list(sae.parameters()), lr=2e-3, ns_dtype=ns_dtype)
    x = torch.randn(batch, d)

    def step():
        opt.zero_grad()
        loss = (sae(x) - x).pow(2).sum(-1).mean()
        loss.backward()
        opt.step()

    ms = median_ms(step, steps)
    impl = "muon" if ns_dtype == torch.float32 else "muon-bf16"
    return {"impl": impl, "threads": threads, "d": d, "m": m, "k": k, "batch": batch,
            "tokens_per_s": round(batch / ms * 1000), "ms_per_step": round(ms, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--m", type=int, default=16384)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ns-dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--impl", default="muon", help="accepted for compare.mjs's uniform call; only muon")
    a = ap.parse_args()
    dtype = torch.float32 if a.ns_dtype == "float32" else torch.bfloat16
    print(json.dumps(bench(a.threads, a.d, a.m, a.k, a.batch, a.steps, dtype)))


if __name__ == "__main__":
    main()
