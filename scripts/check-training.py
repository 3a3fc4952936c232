#!/usr/bin/env python3
"""Checks saekit's training steps against PyTorch: autograd and torch.optim.Adam.

saekit trains every SAE with hand-written backward passes, its own Adam, clipping, decoder
renormalisation and dead-latent bookkeeping (src/train/core.ts). The tests check each
backward by finite differences and each kernel against its TypeScript twin; this checks the
whole step as the Python tools would take it. For each architecture it lets saekit train a
small SAE for a few steps (the start), then fine-tunes it (`saekit train --from`) for 30
more with warm-up, decay, clipping, dead latents and each architecture's extra terms in
play, and runs the same 30 steps in PyTorch (float64): the loss written from the formulas
SAELens, sparsify and dictionary_learning train (topk with AuxK and Multi-TopK, abstopk,
batchtopk with its threshold EMA, Matryoshka, relu with its L1 warm-up, JumpReLU's
straight-through estimator with the step, tanh and target-L0 sparsity losses and the
pre-activation loss, gated with its auxiliary reconstruction, p-annealing's Lp penalties on
relu and gated with their schedule of p and rescaled coefficient, the vSAE's noisy TopK and KL,
VAEase's gated variational loss, matching pursuit's greedy code), differentiated by autograd,
the unit-norm decoder's parallel gradient removed, clip_grad_norm_, torch.optim.Adam (or
sparsify's Muon, or its Schedule-Free SignSGD) at the scheduled learning rate, the decoder
rows renormalised. The data set is one batch, each
step an epoch of it; the reference takes its rows in the order saekit's shuffle serves them
and the variational SAEs' noise from saekit's counter-based stream, both replicated here
(src/core/rng.ts), so that the two runs see the same numbers. It compares each
step's loss (metrics.jsonl) and the final weights saekit saves (sae_weights.safetensors).
An entry that lies on a decision boundary (a top-k cut, a JumpReLU threshold, the edge of
its straight-through kernel) to within float32's rounding can fall either side of it in the
two; the latents that had such an entry in some step are reported apart, and every other
latent, b_dec and each step's loss must agree.

Needs a Python with torch and safetensors (python3 -m venv /tmp/hf && /tmp/hf/bin/pip
install torch safetensors) and a built checkout (npm ci):
  /tmp/hf/bin/python scripts/check-training.py [WORD ...]
(words pick the cases whose names hold one of them, e.g. `anneal`). Not part of `npm test`, which must not need Python.
"""
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from saekit_node import saekit

torch.set_default_dtype(torch.float64)

ROWS, D_IN, D_SAE, STEPS = 512, 16, 64, 30
# Every run: Adam at 3e-3, 4 warm-up steps, linear decay over the last 10, the global
# gradient norm clipped at 2 (which binds in some steps of most runs).
SCHEDULE = {"lr": 3e-3, "warmup": 4, "decay_start": 20, "clip": 2.0}
# Losses and weights agree to this, relative to the largest value of each tensor (float32
# against float64, over the 30 steps); a latent with an entry within NEAR of a decision
# boundary in some step may have gone the other way there, and is reported apart.
TOLERANCE, NEAR = 1e-4, 1e-5
# p-annealing's penalty below p = 1, whose gradient p u^(p-1) is unbounded at u = 0: a code
# value under SINGULAR is as near that kink as NEAR is to the others (in runs of this check,
# float32's rounding carried through from u = 1e-5, and not from 3e-5 up).
SINGULAR = 3e-5
# Which axis of each per-latent parameter counts the latents (W_enc [d_in, d_sae]: 1, the others 0).
LATENT_AXIS = {"W_enc": 1, "W_dec": 0, "b_enc": 0}
# The fine-tuning runs' seed: their shuffles and noise streams.
SEED = 1

# (name, saekit's options for both runs): each case puts one part of the step in play.
CASES = [
    ("topk, AuxK on latents silent for 2 steps", ["--arch", "topk", "--k", "4", "--aux-k", "8", "--dead-after-tokens", "1024"]),
    ("topk, Multi-TopK, weight decay", ["--arch", "topk", "--k", "4", "--multi-topk", "--weight-decay", "0.01"]),
    ("topk, sparsify's Muon", ["--arch", "topk", "--k", "4", "--optimizer", "muon"]),
    ("topk, sparsify's Schedule-Free SignSGD, weight decay", ["--arch", "topk", "--k", "4", "--optimizer", "signum", "--weight-decay", "0.01"]),
    ("topk, cosine schedule", ["--arch", "topk", "--k", "4", "--lr-schedule", "cosine", "--lr-end", "1e-3"]),
    ("abstopk", ["--arch", "abstopk", "--k", "4", "--aux-k", "8", "--dead-after-tokens", "1024"]),
    ("batchtopk, threshold EMA", ["--arch", "batchtopk", "--k", "4", "--aux-k", "8", "--dead-after-tokens", "1024"]),
    ("matryoshka, weighted levels", ["--arch", "matryoshka", "--k", "4", "--matryoshka-widths", "8,24,64", "--level-weights", "1,0.5,2"]),
    ("topk, inputs scaled to E||x||^2 = d_in", ["--arch", "topk", "--k", "4", "--normalize", "expected_norm"]),
    ("relu, L1 warm-up", ["--arch", "relu", "--l1", "0.5", "--l1-warmup", "10"]),
    ("relu, inputs scaled to E||x||^2 = d_in", ["--arch", "relu", "--l1", "0.5", "--normalize", "expected_norm"]),
    ("jumprelu, step L0", ["--arch", "jumprelu", "--l0", "0.05", "--bandwidth", "0.1"]),
    ("jumprelu, tanh, pre-activation loss", ["--arch", "jumprelu", "--l0", "0.05", "--sparsity-loss", "tanh",
                                             "--pre-act-loss", "0.1", "--dead-after-tokens", "1024"]),
    ("jumprelu, target L0", ["--arch", "jumprelu", "--l0", "0.5", "--target-l0", "6", "--l0-warmup", "8"]),
    ("gated, L1 warm-up", ["--arch", "gated", "--l1", "0.2", "--l1-warmup", "5"]),
    # p-annealing: p from 1 toward 0.7 in 5 updates (steps 5 to 25) in 30 steps, the coefficient
    # rescaled at each from the batches since the last, at most 8 (all 5) or 3 of them; the start
    # anneals over its own 6. (Far below 0.7, p u^(p-1) grows so steep near u = 0 that float32's
    # rounding of small codes, amplified through the clipped global norm, moves every latent.)
    ("panneal, Lp^p, L1 warm-up", ["--arch", "panneal", "--l1", "0.3", "--l1-warmup", "5", "--p-end", "0.7",
                                   "--anneal-start", "5", "--anneal-end", "25", "--p-updates", "5", "--p-queue", "8"]),
    ("panneal, Lp", ["--arch", "panneal", "--l1", "0.3", "--sparsity-function", "Lp", "--p-end", "0.7",
                     "--anneal-start", "5", "--anneal-end", "25", "--p-updates", "5", "--p-queue", "3"]),
    ("gated_anneal", ["--arch", "gated_anneal", "--l1", "0.2", "--p-end", "0.7",
                      "--anneal-start", "5", "--anneal-end", "25", "--p-updates", "5", "--p-queue", "3"]),
    ("vsae, KL on every latent, learned variance, KL warm-up", ["--arch", "vsae", "--k", "4", "--variance", "learned", "--beta", "0.05",
                                                                "--kl-warmup", "10"]),
    ("vsae, KL on the selected latents, TopK by |z|, ReLU on mu, AuxK", ["--arch", "vsae", "--k", "4", "--kl-scope", "active",
                                                                         "--topk-mode", "abs", "--relu-mu", "--beta", "0.05",
                                                                         "--aux-k", "8", "--dead-after-tokens", "1024"]),
    ("vaease, a Swish hidden layer", ["--arch", "vaease", "--hidden", "24"]),
    ("vae (VAEase without its gate)", ["--arch", "vaease", "--no-gate"]),
    ("matching pursuit, residual threshold and iteration cap", ["--arch", "mp", "--max-iterations", "6", "--residual-threshold", "0.6"]),
]


def lr_at(step, sched, steps):
    """saekit's schedule (src/train/schedule.ts, after SAELens' get_lr_scheduler): linear
    warm-up from lr / warmup, constant or cosine to lr_end, linear decay to 0 from decay_start."""
    lr, warm, decay = sched["lr"], sched["warmup"], sched["decay_start"]
    lr_end = sched.get("lr_end", lr)
    if step >= decay:
        value = lr_end * (steps - step) / (steps - decay)
    elif sched.get("kind") == "cosine" and step >= warm:
        value = lr_end + (lr - lr_end) * (1 + math.cos(math.pi * (step - warm) / (decay - warm))) / 2
    else:
        value = lr
    return min(value, lr * (step + 1) / warm) if step < warm else value


def warmup(step, steps):
    return 1.0 if steps <= 0 else min(1.0, step / steps)


class PAnneal:
    """p-annealing's penalty as dictionary_learning's PAnnealTrainer and GatedAnnealTrainer
    take it: alpha w(t) mean_b P_p(u_b), P_p(u) = sum_j u_j^p (Lp^p) or its 1/p-th power (Lp);
    p = p_start until the schedule's second update step (torch.linspace's steps and values);
    each batch from the first update on also measures P at the next p, and each update
    rescales alpha by mean P_p / mean P_next over the queue (its last sparsity_queue_length
    batches) before moving p on. saekit's queue holds only the batches since the last update
    (p-annealing.ts), so this one is emptied at each update too; the penalty of an update's
    own step is weighted by alpha before that update, as in both trainers."""

    def __init__(self, cfg):
        self.cfg, self.alpha, self.done, self.queue = cfg, cfg["l1_coefficient"], 0, []
        n, start, end = cfg["n_sparsity_updates"], cfg["anneal_start"], cfg["anneal_end"] or STEPS
        self.steps = [int(v) for v in torch.linspace(start, end, n).floor()] if n > 1 else [start]
        self.ps = torch.linspace(cfg["p_start"], cfg["p_end"], n).tolist() if n > 1 else [cfg["p_start"]]

    def exponents(self):
        if self.done == 0:
            return self.cfg["p_start"], None
        return self.ps[self.done - 1], self.ps[self.done] if self.done < len(self.ps) else self.cfg["p_end"]

    def penalty(self, u, step, edges):
        """u [B, m] >= 0: the weighted penalty, with the batch's measurements kept for after_step.
        Below p = 1 its gradient p u^(p-1) turns steep near u = 0, where float32's rounding of a
        small code moves it: an entry under SINGULAR counts as at a decision boundary."""
        p, nxt = self.exponents()
        if p < 1:
            edges.near_all(torch.where(u > 0, u * (NEAR / SINGULAR), math.inf))

        def mean_p(q):
            total = torch.where(u > 0, u.clamp(min=1e-300) ** q, 0).sum(-1)
            return (total if self.cfg["sparsity_function"] == "Lp^p" else torch.where(total > 0, total.clamp(min=1e-300) ** (1 / q), 0)).mean()

        now = mean_p(p)
        self.pending = (step, now.item(), mean_p(nxt).item() if nxt is not None else None)
        return self.alpha * warmup(step, self.cfg["l1_warmup_steps"]) * now

    def after_step(self):
        step, now, nxt = self.pending
        if nxt is not None:
            self.queue = (self.queue + [(now, nxt)])[-self.cfg["sparsity_queue_length"]:]
        if self.done < len(self.steps) and step >= self.steps[self.done]:
            if self.done > 0 and self.queue:
                self.alpha *= sum(a for a, _ in self.queue) / sum(b for _, b in self.queue)
            self.done += 1
            self.queue = []


class JumpReLU(torch.autograd.Function):
    """f = z H(z - theta); d f / d z = H, d f / d theta = -(theta / eps) K((z - theta) / eps)
    with the rectangle kernel K (SAELens' JumpReLU, Rajamanoharan et al. 2024)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * (z > theta)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        kernel = ((z - theta).abs() < ctx.eps / 2).to(z.dtype)
        return g * (z > theta), (-(theta / ctx.eps) * kernel * g).sum(0), None


class Step(torch.autograd.Function):
    """H(z - theta); no gradient in z, d H / d theta = -(1 / eps) K((z - theta) / eps)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        kernel = ((z - theta).abs() < ctx.eps / 2).to(z.dtype)
        return None, (-(1 / ctx.eps) * kernel * g).sum(0), None


class Edges:
    """Per latent, the closest any of its entries came to a decision boundary of the step
    (a top-k cut, the ReLU's or the gate's kink, a JumpReLU threshold or the edge of its
    straight-through kernel). float32 and float64 can decide such an entry differently; the
    latents that had none must agree."""

    def __init__(self, m):
        self.distance = torch.full((m,), math.inf)

    def near(self, latents, distance):
        self.distance.scatter_reduce_(0, latents.flatten(), distance.detach().abs().flatten(), "amin")

    def near_all(self, distance, columns=None):
        """distance [B, columns] (of those latents, default all): each column's closest row."""
        closest = distance.detach().abs().amin(0)
        self.near(torch.arange(len(closest)) if columns is None else columns, closest)


def top_k_code(v, k, edges, by_magnitude=False, columns=None):
    """Each row's k largest entries of v (by |v| keeping sign, or after the ReLU), the rest
    0; columns: the latent of each column of v (default: the column itself)."""
    latent = torch.arange(v.shape[1]) if columns is None else columns
    key = v.abs() if by_magnitude else v
    top = key.topk(min(k + 1, v.shape[1]), dim=-1)
    idx = top.indices[:, :k]
    if k < v.shape[1]:  # the cut between each row's k-th and (k+1)-th
        gap = top.values[:, k - 1] - top.values[:, k]
        edges.near(latent[top.indices[:, k - 1:k + 1]], torch.stack([gap, gap], -1))
    kept = v.gather(-1, idx)
    if not by_magnitude:
        edges.near(latent[idx], kept)
    return torch.zeros_like(v).scatter(-1, idx, kept if by_magnitude else kept.relu())


def batch_top_k_code(v, k, edges):
    """The k * batch largest entries of ReLU(v) over the whole batch (BatchTopK)."""
    flat = v.flatten()
    n = k * v.shape[0]
    top = flat.relu().topk(n + 1)
    idx = top.indices[:n]
    m = v.shape[1]
    edges.near(top.indices[n - 1:] % m, (top.values[n - 1] - top.values[n]).expand(2))
    edges.near(idx % m, flat[idx])
    return torch.zeros_like(flat).scatter(0, idx, flat[idx].relu()).view_as(v), flat[idx].relu().min()


def aux_k_loss(cfg, p, pre, x, x_hat, dead, edges, by_magnitude=False):
    """AuxK (OpenAI, sparsify, dictionary_learning): the top aux_k dead latents reconstruct
    the detached residual e; alpha mean ||e - e_hat||^2 / mean ||e - mean(e)||^2."""
    n_dead = int(dead.sum())
    if n_dead == 0 or cfg.get("aux_k", 0) == 0:
        return torch.zeros(())
    v = (pre + p["b_enc"])[:, dead]
    code = top_k_code(v, min(cfg["aux_k"], n_dead), edges, by_magnitude, columns=dead.nonzero().flatten())
    e = (x - x_hat).detach()
    e_hat = code @ p["W_dec"][dead]
    var = ((e - e.mean(0)) ** 2).sum(-1).mean()
    return cfg["aux_alpha"] * ((e - e_hat) ** 2).sum(-1).mean() / var


# saekit's random streams (src/core/rng.ts), replicated: which rows each step's batch holds in
# which order (every epoch a Fisher-Yates shuffle by xoshiro128**), and the variational SAEs'
# noise (a counter-based Gaussian: value i of stream `step` depends on (seed, step, i) alone).
M32 = 0xFFFFFFFF


def _imul(a, b):
    return (a * b) & M32


def _rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class Xoshiro128:
    """Rng: xoshiro128** seeded by splitmix32, uniform() of 53 bits, int(n), shuffle()."""

    def __init__(self, seed):
        state = seed & M32
        words = []
        for _ in range(4):
            state = (state + 0x9E3779B9) & M32
            z = state
            z = _imul(z ^ (z >> 16), 0x85EBCA6B)
            z = _imul(z ^ (z >> 13), 0xC2B2AE35)
            words.append(z ^ (z >> 16))
        self.s = words

    def next_u32(self):
        s0, s1, s2, s3 = self.s
        result = _imul(_rotl(_imul(s1, 5), 7), 9)
        t = (s1 << 9) & M32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        self.s = [s0, s1, s2, _rotl(s3, 11)]
        return result

    def int(self, n):
        hi, lo = self.next_u32() >> 5, self.next_u32() >> 6
        return math.floor((hi * 67108864 + lo) / 9007199254740992 * n)

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = self.int(i + 1)
            a[i], a[j] = a[j], a[i]
        return a


def batch_order(rows, seed, epoch):
    """The rows of epoch `epoch` of an in-memory activation matrix, as ArraySource serves them."""
    return Xoshiro128(seed * 1_000_003 + epoch).shuffle(list(range(rows)))


def _hash32(x):
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & M32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & M32
    return x ^ (x >> 15)


def counter_normal(seed, stream, n):
    """Values 0..n-1 of the counter-based Gaussian stream (seed, stream): Box-Muller on word
    pairs (2p, 2p+1), cos for even i, sin for odd."""
    k1 = int(_hash32(np.uint64(_imul(seed, 0x9E3779B9) ^ int(_hash32(np.uint64(stream))))))
    k2 = int(_hash32(np.uint64(k1 ^ 0x85EBCA6B)))
    words = _hash32(_hash32((np.arange(n + n % 2, dtype=np.uint64) + k1) & M32) ^ k2)
    u1 = ((words[0::2] >> 8) + 1) / 16777216.0
    u2 = (words[1::2] >> 8) / 16777216.0
    r = np.sqrt(-2 * np.log(u1))
    out = np.empty(len(words))
    out[0::2], out[1::2] = r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)
    return torch.from_numpy(out[:n])


def loss_and_code(cfg, p, x, step, dead, edges, anneal=None):
    """The architecture's training loss on x [B, d] and its code, from the published formulas
    (`anneal`: the p-annealing SAEs' penalty, a PAnneal)."""
    arch, B = cfg["architecture"], x.shape[0]

    def sse(x_hat):
        return ((x_hat - x) ** 2).sum() / B

    if arch == "vaease":
        return vaease_loss(cfg, p, x, step, sse)
    if arch == "mp":
        return matching_pursuit_loss(cfg, p, x, edges, sse)
    xc = x - p["b_dec"] if cfg["apply_b_dec_to_input"] else x
    pre = xc @ p["W_enc"]
    if arch == "vsae":
        return variational_topk_loss(cfg, p, x, xc, pre, step, dead, edges, sse)
    if arch in ("topk", "abstopk"):
        mag = arch == "abstopk"
        f = top_k_code(pre + p["b_enc"], cfg["k"], edges, mag)
        x_hat = f @ p["W_dec"] + p["b_dec"]
        loss = sse(x_hat) + aux_k_loss(cfg, p, pre, x, x_hat, dead, edges, mag)
        if cfg.get("multi_topk"):
            wide = top_k_code(pre + p["b_enc"], min(4 * cfg["k"], cfg["d_sae"]), edges, mag)
            loss = loss + sse(wide @ p["W_dec"] + p["b_dec"]) / 8
        return loss, f, {}
    if arch in ("batchtopk", "matryoshka"):
        f, smallest = batch_top_k_code(pre + p["b_enc"], cfg["k"], edges)
        if arch == "batchtopk":
            x_hat = f @ p["W_dec"] + p["b_dec"]
            loss = sse(x_hat)
        else:
            widths, weights = cfg["matryoshka_widths"], cfg["level_weights"] or [1.0] * len(cfg["matryoshka_widths"])
            loss = sum(w * sse(f[:, :n] @ p["W_dec"][:n] + p["b_dec"]) for n, w in zip(widths, weights))
            x_hat = f @ p["W_dec"] + p["b_dec"]
        return loss + aux_k_loss(cfg, p, pre, x, x_hat, dead, edges), f, {"smallest": smallest}
    norms = p["W_dec"].norm(dim=-1)
    if arch in ("relu", "panneal"):
        f = (pre + p["b_enc"]).relu()
        edges.near_all(pre + p["b_enc"])
        if arch == "panneal":
            return sse(f @ p["W_dec"] + p["b_dec"]) + anneal.penalty(f * norms, step, edges), f, {}
        l1 = cfg["l1_coefficient"] * warmup(step, cfg["l1_warmup_steps"])
        return sse(f @ p["W_dec"] + p["b_dec"]) + l1 * (f * norms).sum() / B, f, {}
    if arch in ("gated", "gated_anneal"):
        gate = pre + p["b_gate"]
        mag = pre * p["r_mag"].exp() + p["b_mag"]
        f = (gate > 0) * mag.relu()
        edges.near_all(gate)
        edges.near_all(torch.where(gate > 0, mag, math.inf))
        aux = sse(gate.relu() @ p["W_dec"].detach() + p["b_dec"].detach())
        if arch == "gated_anneal":
            return sse(f @ p["W_dec"] + p["b_dec"]) + anneal.penalty(gate.relu() * norms, step, edges) + aux, f, {}
        l1 = cfg["l1_coefficient"] * warmup(step, cfg["l1_warmup_steps"])
        return sse(f @ p["W_dec"] + p["b_dec"]) + l1 * (gate.relu() * norms).sum() / B + aux, f, {}
    if arch == "jumprelu":
        z, theta, eps = pre + p["b_enc"], p["log_threshold"].exp(), cfg["bandwidth"]
        f = JumpReLU.apply(z, theta, eps)
        edges.near_all(z - theta)
        edges.near_all((z - theta).abs() - eps / 2)
        l0 = cfg["l0_coefficient"] * warmup(step, cfg["l0_warmup_steps"])
        if cfg["sparsity_loss_mode"] == "tanh":
            sparsity = l0 * torch.tanh(cfg["tanh_scale"] * f * norms).sum() / B
        elif cfg["target_l0"] > 0:
            sparsity = l0 * (Step.apply(z, theta, eps).sum() / B / cfg["target_l0"] - 1) ** 2
        else:
            sparsity = l0 * Step.apply(z, theta, eps).sum() / B
        loss = sse(f @ p["W_dec"] + p["b_dec"]) + sparsity
        if cfg["pre_act_loss_coefficient"] > 0 and dead.any():
            loss = loss + cfg["pre_act_loss_coefficient"] * ((theta - z).relu()[:, dead] * norms[dead]).sum() / B
        return loss, f, {}
    raise ValueError(f"no reference for {arch}")


def newton_schulz(g):
    """Five quintic Newton-Schulz steps from g / ||g|| (Muon's orthogonalisation, as sparsify
    runs it): g's singular vectors, its singular values pushed toward 1."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.t() if g.shape[0] > g.shape[1] else g
    x = x / (x.norm() + 1e-7)
    for _ in range(5):
        gram = x @ x.t()
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.t() if g.shape[0] > g.shape[1] else x


class Muon:
    """sparsify's Muon: each weight matrix steps along its orthogonalised Nesterov momentum
    (0.95), scaled by 0.2 sqrt(max(rows, cols)), with decoupled weight decay; Adam steps the
    biases and thresholds."""

    def __init__(self, params, lr, weight_decay):
        self.matrices = [t for t in params if t.ndim == 2]
        self.momentum = [torch.zeros_like(t) for t in self.matrices]
        self.weight_decay = weight_decay
        self.adam = torch.optim.Adam([t for t in params if t.ndim < 2], lr=lr, betas=(0.9, 0.999), eps=1e-8)
        self.param_groups = self.adam.param_groups

    def zero_grad(self):
        for t in self.matrices:
            t.grad = None
        self.adam.zero_grad()

    def step(self):
        lr = self.param_groups[0]["lr"]
        for w, buf in zip(self.matrices, self.momentum):
            buf.mul_(0.95).add_(w.grad, alpha=0.05)
            update = newton_schulz(0.05 * w.grad + 0.95 * buf)
            w.mul_(1 - lr * self.weight_decay).sub_(update, alpha=lr * 0.2 * max(w.shape) ** 0.5)
        self.adam.step()


class ScheduleFreeSign:
    """sparsify's "signum": the schedulefree package's wrapper around SignSGD (momentum 0.95).
    The gradient is taken at the parameters y; the base step moves z by -lr sign(g) (weight
    decay taken at y); x averages the z's, weighted by the largest lr so far squared; y =
    x + (1 - momentum)(z - x). A run ends with x, which sparsify saves."""

    def __init__(self, params, lr, weight_decay, momentum=0.95):
        self.params = list(params)
        self.z = [t.detach().clone() for t in self.params]
        self.x = [t.detach().clone() for t in self.params]
        self.lr_max, self.weight_sum = 0.0, 0.0
        self.weight_decay, self.momentum = weight_decay, momentum
        self.param_groups = [{"lr": lr}]

    def zero_grad(self):
        for t in self.params:
            t.grad = None

    def step(self):
        lr = self.param_groups[0]["lr"]
        self.lr_max = max(self.lr_max, lr)
        weight = self.lr_max ** 2
        self.weight_sum += weight
        average = weight / self.weight_sum
        for y, z, x in zip(self.params, self.z, self.x):
            z -= lr * self.weight_decay * y + lr * torch.sign(y.grad)
            x += average * (z - x)
            y.copy_(x + (1 - self.momentum) * (z - x))


def fed_scaled(weights, s, unit):
    """The SAE that, fed s x, computes s times what `weights` computes on x (SAELens'
    expected_average_only_in: training sees s x, the saved SAE takes x): W_enc / s, W_dec s,
    b_dec s; with `unit`, a unit-norm decoder's rows renormalised, each norm moved into the
    latent's encoder column, bias and threshold (codes and reconstructions unchanged where the
    norms are equal, as s makes them). s = 1 / s maps the trained SAE back."""
    w = dict(weights, W_enc=weights["W_enc"] / s, W_dec=weights["W_dec"] * s, b_dec=weights["b_dec"] * s)
    if unit:
        norms = w["W_dec"].norm(dim=-1)
        w.update(W_dec=w["W_dec"] / norms[:, None], W_enc=w["W_enc"] * norms, b_enc=w["b_enc"] * norms)
        if "threshold" in w:
            w["threshold"] = w["threshold"] * norms
    return w


def variational_topk_loss(cfg, p, x, xc, pre, step, dead, edges, sse):
    """vSAE (the vSAE paper; saekit's options): mu = pre (+ ReLU), z = mu + sigma eps with
    sigma = 1 or exp(logvar / 2), logvar = clamp(W_lv xc + b_lv, -6, 2); f = TopK(z) (after
    ReLU, or by |z| keeping the sign); loss = mse + beta min(1, t / warm-up) KL + AuxK, KL =
    0.5 sum (mu^2 + sigma^2 - 1 - logvar) per token over every latent or the selected ones."""
    B, m = x.shape[0], cfg["d_sae"]
    u = pre + p["b_enc"]
    mu = u.relu() if cfg["relu_mu"] else u
    eps = counter_normal(SEED, step, B * m).view(B, m)
    if cfg["variance"] == "learned":
        raw = xc @ p["W_logvar"].t() + p["b_logvar"]
        edges.near_all(raw + 6)
        edges.near_all(raw - 2)
        logvar = raw.clamp(-6, 2)
    else:
        logvar = torch.zeros_like(mu)
    z = mu + (0.5 * logvar).exp() * eps
    by_magnitude = cfg["topk_mode"] == "abs"
    f = top_k_code(z, cfg["k"], edges, by_magnitude)
    x_hat = f @ p["W_dec"] + p["b_dec"]
    terms = mu ** 2 + logvar.exp() - 1 - logvar
    if cfg["kl_scope"] == "active":
        chosen = torch.zeros_like(z, dtype=torch.bool).scatter(-1, (z.abs() if by_magnitude else z).topk(cfg["k"], dim=-1).indices, True)
        terms = terms * chosen
    kl = 0.5 * terms.sum() / B
    anneal = cfg["beta"] * warmup(step, cfg["kl_warmup_steps"])
    infer_abs = by_magnitude and not cfg["relu_mu"]
    return sse(x_hat) + anneal * kl + aux_k_loss(cfg, p, pre, x, x_hat, dead, edges, infer_abs), f, {}


def matching_pursuit_loss(cfg, p, x, edges, sse):
    """Matching pursuit (Costa et al. 2025, as SAELens trains it): from r = x - b_dec, each step
    takes the latent j with the largest ReLU(r . W_dec_j), adds a = ReLU(r . W_dec_j) to f_j
    and removes a W_dec_j from r; a token stops once its support stops growing or ||r|| falls
    under residual_threshold, or after max_iterations steps. Autograd runs through the amounts
    and the residuals with the choices held; loss = ||x - (f W_dec + b_dec)||^2."""
    W = p["W_dec"]
    r = x - p["b_dec"] if cfg["apply_b_dec_to_input"] else x
    f = torch.zeros(x.shape[0], cfg["d_sae"])
    support = torch.zeros_like(f, dtype=torch.bool)
    done = torch.zeros(x.shape[0], dtype=torch.bool)
    for _ in range(cfg["max_iterations"]):
        with torch.no_grad():
            top = (r @ W.t()).relu().topk(2, dim=-1)
            edges.near(top.indices, (top.values[:, :1] - top.values[:, 1:]).expand(-1, 2) + done[:, None] * math.inf)
        j = top.indices[:, 0]
        raw = (r * W[j]).sum(-1)
        edges.near(j, raw + done * math.inf)
        a = raw.relu() * ~done
        f = f.scatter_add(1, j[:, None], a[:, None])
        r = r - a[:, None] * W[j]
        with torch.no_grad():
            now = f != 0
            norm = r.norm(dim=-1)
            edges.near(j, norm - cfg["residual_threshold"] + done * math.inf)
            done = done | (now == support).all(-1) | (norm < cfg["residual_threshold"])
            support = now
        if done.all():
            break
    x_hat = f @ W + (p["b_dec"] if cfg["apply_b_dec_to_input"] else 0)
    return sse(x_hat), f, {}


def vaease_loss(cfg, p, x, step, sse):
    """VAEase (Sparse Autoencoders, Again?): h = Swish MLP(x); mu, s = heads of h; logvar =
    -softplus(s), sigma = exp(logvar / 2); z = mu + sigma eps; the decoder sees (1 - sigma) z
    (z itself without the gate); loss = ||x - x_hat||^2 / gamma + d log gamma + sum (sigma^2 +
    mu^2 - logvar - 1), per token."""
    B, m, d = x.shape[0], cfg["d_sae"], cfg["d_in"]
    h = x
    for i in range(len(cfg["hidden"])):
        a = h @ p[f"W_h{i}"].t() + p[f"b_h{i}"]
        h = a * torch.sigmoid(a)
    mu = h @ p["W_mu"].t() + p["b_mu"]
    logvar = -F.softplus(h @ p["W_s"].t() + p["b_s"])
    sigma = (0.5 * logvar).exp()
    z = mu + sigma * counter_normal(SEED, step, B * m).view(B, m)
    e = (1 - sigma) * z if cfg["gate"] else z
    gamma = p["log_gamma"].exp()
    x_hat = e @ p["W_dec"] + p["b_dec"]
    kl = (sigma ** 2 + mu ** 2 - logvar - 1).sum() / B
    return sse(x_hat) / gamma[0] + d * p["log_gamma"][0] + kl, e, {}


def to_params(weights, cfg):
    """The SAELens file's tensors as the trainable parameters (JumpReLU's is log theta) and buffers."""
    p = {name: t.to(torch.float64) for name, t in weights.items()}
    bufs = {}
    if cfg["architecture"] == "jumprelu":
        p["log_threshold"] = p.pop("threshold").log()
    elif "threshold" in p:
        bufs["threshold"] = p.pop("threshold")
    for t in p.values():
        t.requires_grad_(True)
    return p, bufs


def train_reference(start, cfg, x, sched, dead_after):
    """STEPS steps as core.ts orders them; returns each step's loss, the final tensors, how
    close each latent came to a decision boundary (Edges) and how much of the step was in
    play (clipping, dead latents)."""
    p, bufs = to_params(start, cfg)
    if sched["optimizer"] == "muon":
        opt = Muon(list(p.values()), sched["lr"], sched["weight_decay"])
    elif sched["optimizer"] == "signum":
        opt = ScheduleFreeSign(p.values(), sched["lr"], sched["weight_decay"])
    else:
        opt = torch.optim.AdamW(p.values(), lr=sched["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=sched["weight_decay"])
    since_fired = torch.zeros(cfg["d_sae"])
    unit = cfg["decoder_norm"] == "unit"
    losses, clipped, most_dead, edges = [], 0, 0, Edges(cfg["d_sae"])
    anneal = PAnneal(cfg) if cfg["architecture"] in ("panneal", "gated_anneal") else None
    for step in range(STEPS):
        dead = since_fired >= dead_after
        most_dead = max(most_dead, int(dead.sum()))
        # Each step is an epoch of the one batch: its rows in the order saekit's shuffle serves them.
        xs = x[batch_order(x.shape[0], SEED, step)]
        loss, f, extra = loss_and_code(cfg, p, xs, step, dead, edges, anneal)
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            W, g = p["W_dec"], p["W_dec"].grad
            if unit:  # the component of each row's gradient along the (unit) row
                g -= (g * W).sum(-1, keepdim=True) * W
            clipped += int(torch.nn.utils.clip_grad_norm_(p.values(), sched["clip"]) > sched["clip"])
            if sched["optimizer"] == "signum":
                # A sign step's decision boundary: a gradient entry near 0 may have either sign in float32.
                for name, t in p.items():
                    near = t.grad.abs() < NEAR * t.grad.abs().max()
                    if name in LATENT_AXIS and near.any():
                        latents = near.any(dim=LATENT_AXIS[name] ^ 1) if t.grad.dim() == 2 else near
                        edges.near(latents.nonzero().flatten(), torch.zeros(int(latents.sum())))
            for group in opt.param_groups:
                group["lr"] = lr_at(step, sched, STEPS)
            opt.step()
            if unit:
                W /= W.norm(dim=-1, keepdim=True)
            if anneal:
                anneal.after_step()
            if "smallest" in extra:
                bufs["threshold"] = 0.99 * bufs["threshold"] + 0.01 * extra["smallest"]
            fired = (f != 0).any(0)
            since_fired = torch.where(fired, torch.zeros(()), since_fired + x.shape[0])
    # Schedule-Free ends with its average x, not the point y the gradients were taken at.
    out = dict(zip(p, opt.x)) if isinstance(opt, ScheduleFreeSign) else {name: t.detach() for name, t in p.items()}
    if "log_threshold" in out:
        out["threshold"] = out.pop("log_threshold").exp()
    return losses, {**out, **bufs}, edges.distance, f"{clipped} steps clipped, at most {most_dead} latents dead"


def data():
    """Sparse combinations of 64 unit directions in R^16, noise and an offset: superposition's shape."""
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((64, D_IN))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    coefficients = (rng.random((ROWS, 64)) < 0.08) * rng.exponential(1.0, (ROWS, 64))
    return (coefficients @ directions + 0.05 * rng.standard_normal((ROWS, D_IN)) + 0.3).astype(np.float32)


def silence(folder, architecture, latents=8):
    """Makes the start's first latents go quiet, so that AuxK (or JumpReLU's pre-activation
    loss) has dead latents to train: a TopK-family latent's encoder column shrunk 50-fold
    (its pre-activations small, often positive, never in the top k), a JumpReLU latent's
    bias pushed below its threshold."""
    path = os.path.join(folder, "sae_weights.safetensors")
    w = load_file(path)
    if architecture == "jumprelu":
        w["b_enc"][:latents] -= 2
    else:
        w["W_enc"][:, :latents] *= 0.02
        w["b_enc"][:latents] = 0
    save_file(w, path)


def weight_errors(ours, ref, cfg):
    """The largest difference of the tensors not per latent (b_dec, BatchTopK's single
    threshold, VAEase's decoder variance and hidden layers), and per latent the largest of
    its encoder column, decoder row, biases and threshold: each relative to the largest
    value of its tensor."""
    shared, per_latent = 0.0, torch.zeros(cfg["d_sae"])
    for name, r in ref.items():
        err = (ours[name].double() - r).abs() / r.abs().max().clamp(min=1e-12)
        if name in ("b_dec", "log_gamma") or name.startswith(("W_h", "b_h")) or (name == "threshold" and cfg["architecture"] != "jumprelu"):
            shared = max(shared, float(err.max()))
        else:
            per_latent = torch.maximum(per_latent, err.amax(0) if name == "W_enc" else err.reshape(cfg["d_sae"], -1).amax(-1))
    return shared, per_latent


def saved_tensors(folder):
    """An SAE folder's tensors: sae_weights.safetensors and saekit's extras (the vSAE's log-variance head)."""
    tensors = load_file(os.path.join(folder, "sae_weights.safetensors"))
    extras = os.path.join(folder, "saekit_extras.safetensors")
    return {**tensors, **(load_file(extras) if os.path.exists(extras) else {})}


def option(opts, name, default):
    """The value given for a command-line option in opts, or the default."""
    return opts[opts.index(name) + 1] if name in opts else default


def main():
    print(f"torch {torch.__version__}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        x32 = data()
        path = os.path.join(tmp, "x.npy")
        np.save(path, x32)
        x = torch.from_numpy(x32).to(torch.float64)
        common = ["--data", path, "--d-sae", str(D_SAE), "--batch", str(ROWS), "--threads", "1", "--seed", str(SEED)]
        for i, (name, opts) in enumerate(CASES):
            # Arguments pick the cases whose names hold any of them (none: all).
            if sys.argv[1:] and not any(word in name for word in sys.argv[1:]):
                continue
            start, run = os.path.join(tmp, f"start{i}"), os.path.join(tmp, f"run{i}")
            # The start: saekit's own init and a few fast steps, so nothing is tied or zero.
            # (A p-annealing start anneals within its 6 steps; the fine-tuning run's options set its own schedule.)
            own = ["--anneal-start", "0", "--anneal-end", "5", "--p-updates", "2"] if "--p-updates" in opts else []
            saekit("train", *common, *opts, *own, "--steps", "6", "--lr", "1e-2", "--warmup-steps", "0", "--out", start)
            if "--dead-after-tokens" in opts:
                silence(start, option(opts, "--arch", "topk"))
            optimizer = option(opts, "--optimizer", "adam")
            # Muon decays its matrices' weights by 0.1 unless told otherwise (sparsify's default).
            sched = {**SCHEDULE, "optimizer": optimizer, "weight_decay": float(option(opts, "--weight-decay", 0.1 if optimizer == "muon" else 0))}
            if "--lr-schedule" in opts:
                sched.update(kind="cosine", lr_end=float(option(opts, "--lr-end", 0)))
            saekit("train", *common, *opts, "--from", start, "--steps", str(STEPS), "--lr", str(sched["lr"]),
                   "--warmup-steps", str(sched["warmup"]), "--decay-start", str(sched["decay_start"]),
                   "--clip", str(sched["clip"]), "--log-every", "1", "--checkpoint-every", "0", "--out", run)
            with open(os.path.join(run, "cfg.json")) as f:
                cfg = json.load(f)["saekit"]["config"]
            with open(os.path.join(run, "metrics.jsonl")) as f:
                ours_losses = [r["loss"] for r in map(json.loads, f) if "loss" in r]
            start_weights = {k: t.double() for k, t in saved_tensors(start).items()}
            scale = math.sqrt(D_IN / float((x ** 2).sum(-1).mean())) if "--normalize" in opts else 1.0
            # saekit's start (startFromSae): the input scale folded in, and a TopK-family SAE's
            # unit-norm decoder rows renormalised with their norms moved into the encoder.
            fold = cfg["decoder_norm"] == "unit" and cfg["architecture"] in ("topk", "abstopk", "batchtopk", "matryoshka")
            if scale != 1 or fold:
                start_weights = fed_scaled(start_weights, scale, fold)
            ref_losses, ref, distance, in_play = train_reference(start_weights, cfg, x * scale, sched,
                                                                 int(option(opts, "--dead-after-tokens", 10_000_000)))
            if scale != 1:
                ref = {**ref, **fed_scaled(ref, 1 / scale, False)}
            ours = saved_tensors(run)
            loss_err = max(abs(a - b) / abs(b) for a, b in zip(ours_losses, ref_losses))
            shared, per_latent = weight_errors(ours, ref, cfg)
            near = distance < NEAR
            apart = per_latent > TOLERANCE
            unexplained = int((apart & ~near).sum())
            clear = float(per_latent[~near].amax()) if (~near).any() else 0.0
            ok = len(ours_losses) == STEPS and loss_err <= TOLERANCE and shared <= TOLERANCE and unexplained == 0
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: losses {ref_losses[0]:.4g} -> {ref_losses[-1]:.4g}, each step's within "
                  f"{loss_err:.1e} (relative); weights within {max(shared, clear):.1e} of the largest (b_dec and the "
                  f"{int((~near).sum())} latents clear of decision boundaries; {int(near.sum())} came within {NEAR:g} of one, "
                  f"{int((apart & near).sum())} of them apart by up to {float(per_latent[near].amax()) if near.any() else 0.0:.1e}"
                  f"{f', {unexplained} others' if unexplained else ''}); {in_play}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
