#!/usr/bin/python3
"""Peer reference: one matching pursuit SAE training step in PyTorch on the CPU, the way
SAELens' MatchingPursuitTrainingSAE computes it (sae_lens/saes/matching_pursuit_sae.py,
use_gram off): per pursuit step a [batch, d_sae] product picks each token's row by
argmax ReLU(r . W_dec_j) without gradient, the amount is recomputed from that row with
gradient, the code accumulates in a dense [batch, d_sae] tensor, and tokens stop when
their support stops growing; then x_hat = f W_dec + b_dec, MSE, autograd, Adam.

It is the side-by-side anchor for `saekit bench train --arch mp`: same shapes, random
data, unit-norm decoder rows, at most k steps, residual threshold 0.

Needs PyTorch (Debian: `apt-get install -y python3-torch libopenblas0-pthread`; run it with
/usr/bin/python3). Prints one JSON line: {"impl", "threads", "d", "m", "k", "batch",
"tokens_per_s", "ms_per_step"}.

usage: peer_mp.py [--d 512] [--m 16384] [--k 16] [--batch 4096] [--steps 5] [--threads 2]
"""
import argparse
import json

import torch

from peer_timing import training_step_ms


def pursue(residual, W_dec, max_steps):
    """The code of each row of `residual` (already centred), with SAELens' stopping rules."""
    batch, m = residual.shape[0], W_dec.shape[0]
    code = torch.zeros(batch, m, dtype=residual.dtype)
    support_before = torch.zeros(batch, m, dtype=torch.bool)
    finished = torch.zeros(batch, dtype=torch.bool)
    for _ in range(max_steps):
        with torch.no_grad():
            chosen = (residual @ W_dec.T).relu().argmax(dim=1)
        rows = W_dec[chosen]
        amount = (residual * rows).sum(dim=-1, keepdim=True).relu()
        amount = amount * (~finished).unsqueeze(1).to(amount.dtype)
        code = code.scatter_add(1, chosen.unsqueeze(1), amount)
        residual = residual - amount * rows
        with torch.no_grad():
            support = code != 0
            finished = finished | (support == support_before).all(dim=1)
            support_before = support
            if bool(finished.all()):
                break
    return code


def bench(threads, d, m, k, batch, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    W = torch.randn(m, d)
    W_dec = torch.nn.Parameter(W / W.norm(dim=1, keepdim=True))
    b_dec = torch.nn.Parameter(torch.zeros(d))
    opt = torch.optim.Adam([W_dec, b_dec], lr=1e-4)
    x = torch.randn(batch, d)

    def loss():
        code = pursue(x - b_dec, W_dec, k)
        x_hat = code @ W_dec + b_dec
        return (x_hat - x).pow(2).sum(-1).mean()

    ms = training_step_ms(loss, opt, steps)
    return {"impl": "torch-mp", "threads": threads, "d": d, "m": m, "k": k, "batch": batch,
            "tokens_per_s": round(batch / (ms / 1000)), "ms_per_step": round(ms, 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--m", type=int, default=16384)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--impl", default="mp")  # accepted for compare.mjs's uniform calls
    a = p.parse_args()
    print(json.dumps(bench(a.threads, a.d, a.m, a.k, a.batch, a.steps)))


if __name__ == "__main__":
    main()
