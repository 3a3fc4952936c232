#!/usr/bin/python3
"""Peer for `saekit bench train --arch batchtopk|matryoshka`: one PyTorch training step of a
BatchTopK SAE as dictionary_learning's BatchTopKTrainer computes it (ReLU, the top k * batch
pre-activations of the whole batch by flattening, a dense code decoded by f @ W_dec) and of
a Matryoshka BatchTopK SAE as its MatryoshkaBatchTopKTrainer does (the same code, one
reconstruction loss per nested prefix of the latents). Adam, no AuxK, no decoder
normalisation: the work saekit's bench measures.

Prints one JSON line per configuration in the schema of peer_topk_sae.py:
{"impl", "threads", "d", "m", "k", "batch", "tokens_per_s", "ms_per_step"}.

usage: peer_batchtopk.py [--d 512] [--m 16384] [--k 64] [--batch 4096] [--steps 5]
                         [--threads 2] [--impl batchtopk,matryoshka]
Run with Debian's /usr/bin/python3 (python3-torch) and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
unset so OpenBLAS picks its AVX-512 kernel.
"""
import argparse
import json

import torch
import torch.nn.functional as F

from peer_timing import training_step_ms


class BatchTopKSAE(torch.nn.Module):
    def __init__(self, d, m, k, widths):
        super().__init__()
        self.k = k
        self.widths = widths  # nested prefixes; [m] for plain BatchTopK
        self.W_enc = torch.nn.Parameter(torch.randn(d, m) / d**0.5)
        self.b_enc = torch.nn.Parameter(torch.zeros(m))
        self.W_dec = torch.nn.Parameter(self.W_enc.data.t().clone())  # [m, d]
        self.b_dec = torch.nn.Parameter(torch.zeros(d))

    def loss(self, x):
        post = F.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        flat = post.flatten()
        top = flat.topk(self.k * x.size(0), sorted=False)
        f = torch.zeros_like(flat).scatter_(-1, top.indices, top.values).reshape(post.shape)
        total = 0.0
        x_hat = self.b_dec.expand_as(x)
        start = 0
        for width in self.widths:
            x_hat = x_hat + f[:, start:width] @ self.W_dec[start:width]
            total = total + (x - x_hat).pow(2).sum(-1).mean()
            start = width
        return total


def bench(impl, threads, d, m, k, batch, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # saekit's default levels: d_sae / 16, / 8, / 4, / 2 and d_sae.
    widths = [m // 16, m // 8, m // 4, m // 2, m] if impl == "matryoshka" else [m]
    sae = BatchTopKSAE(d, m, k, widths)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    x = torch.randn(batch, d)
    ms = training_step_ms(lambda: sae.loss(x), opt, steps)
    return {"impl": impl, "threads": threads, "d": d, "m": m, "k": k, "batch": batch,
            "tokens_per_s": round(batch / ms * 1000), "ms_per_step": round(ms, 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--m", type=int, default=16384)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", default="2")
    p.add_argument("--impl", default="batchtopk,matryoshka")
    a = p.parse_args()
    for impl in a.impl.split(","):
        for t in a.threads.split(","):
            print(json.dumps(bench(impl, int(t), a.d, a.m, a.k, a.batch, a.steps)), flush=True)


if __name__ == "__main__":
    main()
