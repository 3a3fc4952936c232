#!/usr/bin/python3
"""Peer for `saekit bench train --matmul-precision medium`: the TopK SAE step of
../shared/bench/peer_topk_sae.py with its encoder's linear layer under PyTorch's CPU bf16
autocast (oneDNN's bf16 GEMM, forward and backward) while the selection, the sparse
decoder, the parameters, their gradients and Adam stay float32, as in saekit's medium
precision, whose only dense products in a TopK step are the encoder's. (Autocast over the
whole step fails: embedding_bag refuses bf16 weights per sample with a float32 table.)

Prints one JSON line per configuration, the schema of peer_topk_sae.py plus "autocast".
Run with Debian's /usr/bin/python3 (python3-torch).

usage: peer_topk_sae_autocast.py [--d 512] [--m 16384] [--k 64] [--batch 4096] [--steps 5]
                                 [--threads 2] [--impl sparse]
"""
import argparse
import importlib.util
import json
import os
import time

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "peer_topk_sae", os.path.join(here, "..", "..", "shared", "bench", "peer_topk_sae.py"))
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)


class AutocastEncoderSAE(peer.TopKSAE):
    """peer.TopKSAE with the encoder's product on bfloat16; the rest is its forward as is."""

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mu = F.linear(x - self.b_dec, self.W_enc, self.b_enc)
        mu = mu.float()
        if self.variational:
            self.kl = 0.5 * mu.pow(2).sum(-1).mean()
            mu = mu + torch.randn_like(mu)
        pre = F.relu(mu)
        vals, idx = pre.topk(self.k, dim=-1, sorted=False)
        if self.sparse_decoder:
            x_hat = F.embedding_bag(idx, self.W_dec, per_sample_weights=vals, mode="sum")
        else:
            z = torch.zeros_like(pre).scatter_(-1, idx, vals)
            x_hat = z @ self.W_dec
        return x_hat + self.b_dec


def bench(impl, threads, d, m, k, batch, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sae = AutocastEncoderSAE(d, m, k, sparse_decoder=(impl != "dense"), variational=(impl == "vsae"))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    x = torch.randn(batch, d)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = (sae(x) - x).pow(2).sum(-1).mean()
        if sae.variational:
            loss = loss + sae.beta * sae.kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    return {"impl": impl, "autocast": "bfloat16", "threads": threads, "d": d, "m": m, "k": k, "batch": batch,
            "tokens_per_s": round(batch / med), "ms_per_step": round(med * 1e3, 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--m", type=int, default=16384)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", default="2")
    p.add_argument("--impl", default="sparse")
    a = p.parse_args()
    for impl in a.impl.split(","):
        for t in a.threads.split(","):
            print(json.dumps(bench(impl, int(t), a.d, a.m, a.k, a.batch, a.steps)), flush=True)


if __name__ == "__main__":
    main()
