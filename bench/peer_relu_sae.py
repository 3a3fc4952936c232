#!/usr/bin/python3
"""Peer for `saekit bench train --arch relu|jumprelu|gated`: one PyTorch training step of
the SAEs without a k, as SAELens' training SAEs compute them:

- relu ("standard"): f = ReLU(W_enc (x - b_dec) + b_enc), loss = ||x - x_hat||^2 +
  l1 * sum_j f_j ||W_dec_j||;
- jumprelu: f = JumpReLU_theta(pre), theta = exp(log_threshold), the step-function L0 loss,
  both with the rectangle-kernel straight-through gradients of their thresholds
  (bandwidth 0.05, init threshold 0.01, l0_coefficient 1);
- gated: a gate pi_gate = pre + b_gate and a magnitude exp(r_mag) * pre + b_mag, f = 1[pi_gate > 0]
  * ReLU(magnitude), loss = ||x - x_hat||^2 + l1 * sum_j ReLU(pi_gate)_j ||W_dec_j|| + the
  auxiliary reconstruction from ReLU(pi_gate) through the detached decoder.

Each decodes its code densely (f @ W_dec), as SAELens does. Adam, no decoder normalisation.
As initialised they fire about half their latents, as when training starts; --l0 N first
moves b_enc (b_gate) or the threshold so that the batch's N * batch largest pre-activations
fire, as saekit's bench does.

Prints one JSON line per configuration in the schema of peer_topk_sae.py plus the last
step's mean L0: {"impl", "threads", "d", "m", "batch", "l0", "tokens_per_s", "ms_per_step"}.

usage: peer_relu_sae.py [--d 512] [--m 16384] [--batch 4096] [--steps 5] [--threads 2]
                        [--impl relu,jumprelu,gated] [--l0 0]
Run with Debian's /usr/bin/python3 (python3-torch) and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
unset so OpenBLAS picks its AVX-512 kernel.
"""
import argparse
import json
import math

import torch
import torch.nn.functional as F

from peer_timing import training_step_ms

BANDWIDTH = 0.05


def rectangle(u):
    return ((u > -0.5) & (u < 0.5)).to(u)


class Step(torch.autograd.Function):
    """H(z - theta); theta's pseudo-gradient -(1/eps) K((z - theta)/eps)."""

    @staticmethod
    def forward(ctx, z, theta):
        ctx.save_for_backward(z, theta)
        return (z > theta).to(z)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        g_theta = -(1.0 / BANDWIDTH) * rectangle((z - theta) / BANDWIDTH) * g
        return torch.zeros_like(z), g_theta.sum(dim=0)


class JumpReLU(torch.autograd.Function):
    """z H(z - theta); theta's pseudo-gradient -(theta/eps) K((z - theta)/eps)."""

    @staticmethod
    def forward(ctx, z, theta):
        ctx.save_for_backward(z, theta)
        return z * (z > theta).to(z)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        g_z = (z > theta).to(z) * g
        g_theta = -(theta / BANDWIDTH) * rectangle((z - theta) / BANDWIDTH) * g
        return g_z, g_theta.sum(dim=0)


class Sae(torch.nn.Module):
    def __init__(self, impl, d, m):
        super().__init__()
        self.impl = impl
        self.W_enc = torch.nn.Parameter(torch.randn(d, m) / d**0.5)
        self.W_dec = torch.nn.Parameter(self.W_enc.data.t().clone())  # [m, d]
        self.b_enc = torch.nn.Parameter(torch.zeros(m))  # gated: b_gate
        self.b_dec = torch.nn.Parameter(torch.zeros(d))
        if impl == "jumprelu":
            self.log_threshold = torch.nn.Parameter(torch.full((m,), math.log(0.01)))
        if impl == "gated":
            self.r_mag = torch.nn.Parameter(torch.zeros(m))
            self.b_mag = torch.nn.Parameter(torch.zeros(m))

    def loss(self, x):
        pre = (x - self.b_dec) @ self.W_enc
        norms = self.W_dec.norm(dim=1)
        if self.impl == "relu":
            f = F.relu(pre + self.b_enc)
            sparsity = (f * norms).sum(-1).mean()
        elif self.impl == "jumprelu":
            z = pre + self.b_enc
            theta = self.log_threshold.exp()
            f = JumpReLU.apply(z, theta)
            sparsity = Step.apply(z, theta).sum(-1).mean()
        else:
            gate = pre + self.b_enc
            f = (gate > 0).to(x) * F.relu(pre * self.r_mag.exp() + self.b_mag)
            pi_gate = F.relu(gate)
            sparsity = (pi_gate * norms).sum(-1).mean()
            via_gate = pi_gate @ self.W_dec.detach() + self.b_dec.detach()
            sparsity = sparsity + (via_gate - x).pow(2).sum(-1).mean()
        self.last_code = f.detach()
        x_hat = f @ self.W_dec + self.b_dec
        return (x_hat - x).pow(2).sum(-1).mean() + sparsity

    @torch.no_grad()
    def set_l0(self, x, l0):
        pre = (x - self.b_dec) @ self.W_enc
        q = pre.flatten().topk(l0 * x.size(0), sorted=False).values.min().item()
        if self.impl == "jumprelu":
            self.log_threshold.fill_(math.log(q))
        else:
            self.b_enc.fill_(-q)


def bench(impl, threads, d, m, batch, steps, target_l0):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sae = Sae(impl, d, m)
    x = torch.randn(batch, d)
    if target_l0:
        sae.set_l0(x, target_l0)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    ms = training_step_ms(lambda: sae.loss(x), opt, steps)
    l0 = (sae.last_code != 0).sum().item() / batch  # the last step's, counted outside the timing
    return {"impl": impl, "threads": threads, "d": d, "m": m, "batch": batch, "l0": round(l0, 1),
            "tokens_per_s": round(batch / ms * 1000), "ms_per_step": round(ms, 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--m", type=int, default=16384)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", default="2")
    p.add_argument("--impl", default="relu,jumprelu,gated")
    p.add_argument("--l0", type=int, default=0)
    a = p.parse_args()
    for impl in a.impl.split(","):
        for t in a.threads.split(","):
            print(json.dumps(bench(impl, int(t), a.d, a.m, a.batch, a.steps, a.l0)), flush=True)


if __name__ == "__main__":
    main()
