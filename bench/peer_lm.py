#!/usr/bin/python3
"""Peer reference: a GPT-NeoX forward in PyTorch on the CPU, at Pythia-70M's shapes with
random weights, computed the way Hugging Face's modeling_gpt_neox does in eager mode: one
fused QKV projection laid out per head, rotary embedding on the first quarter of each
head's dimensions (rotate-half), causal attention as matmul + masked softmax + matmul, a
GELU MLP beside it (parallel residual), a final LayerNorm and the untied unembedding.

It is the side-by-side anchor for `saekit bench lm --preset pythia-70m`: the same tokens
per forward (batch x ctx), the same measurements, the first two under torch.inference_mode():
  harvest: the embedding and the blocks up to --layer, stopping there (what harvesting
           blocks.{layer}.hook_resid_post needs; TransformerLens' stop_at_layer);
  full:    every block, the unembedding and the mean next-token cross-entropy;
  e2e_kl:  the model's share of an end-to-end SAE training step (sparsify's loss_fn "kl"):
           a clean forward, the blocks after --layer again from a replacement of its
           resid_post (here the activation itself) that requires grad, the KL between the
           two next-token distributions, and autograd's backward to the replacement.

Needs PyTorch (Debian: `apt-get install -y python3-torch libopenblas0-pthread`; run it with
/usr/bin/python3). Prints one JSON line: {"bench", "impl", "preset", "layer", "ctx",
"batch", "threads", "harvest_tokens_per_s", "harvest_ms", "full_tokens_per_s", "full_ms",
"e2e_kl_tokens_per_s", "e2e_kl_ms"}.

usage: peer_lm.py [--layer 0] [--ctx 128] [--batch 32] [--runs 5] [--threads 2]
"""
import argparse
import json
import math

import torch
import torch.nn.functional as F

from peer_timing import median_ms

# Pythia-70M (EleutherAI/pythia-70m config.json).
VOCAB, D, LAYERS, HEADS, D_MLP = 50304, 512, 6, 8, 2048
HEAD = D // HEADS
ROTARY = int(HEAD * 0.25)
EPS = 1e-5


def random_weights(gen):
    def linear(out_f, in_f):
        return (torch.randn(out_f, in_f, generator=gen) * 0.02, torch.randn(out_f, generator=gen) * 0.02)

    blocks = []
    for _ in range(LAYERS):
        blocks.append({
            "ln1": (torch.ones(D), torch.zeros(D)), "ln2": (torch.ones(D), torch.zeros(D)),
            "qkv": linear(3 * D, D), "dense": linear(D, D),
            "up": linear(D_MLP, D), "down": linear(D, D_MLP),
        })
    return {
        "embed": torch.randn(VOCAB, D, generator=gen) * 0.02,
        "blocks": blocks,
        "ln_f": (torch.ones(D), torch.zeros(D)),
        "unembed": torch.randn(VOCAB, D, generator=gen) * 0.02,
    }


def rotary_tables(ctx):
    inv_freq = 1.0 / (10000 ** (torch.arange(0, ROTARY, 2).float() / ROTARY))
    angles = torch.outer(torch.arange(ctx).float(), inv_freq)
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def attention(h, w, cos, sin, mask):
    batch, ctx, _ = h.shape
    qkv = F.linear(h, *w["qkv"]).view(batch, ctx, HEADS, 3 * HEAD).permute(0, 2, 1, 3)
    q, k, v = qkv[..., :HEAD], qkv[..., HEAD:2 * HEAD], qkv[..., 2 * HEAD:]
    q_rot, q_pass = q[..., :ROTARY], q[..., ROTARY:]
    k_rot, k_pass = k[..., :ROTARY], k[..., ROTARY:]
    q = torch.cat((q_rot * cos + rotate_half(q_rot) * sin, q_pass), dim=-1)
    k = torch.cat((k_rot * cos + rotate_half(k_rot) * sin, k_pass), dim=-1)
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(HEAD)
    scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
    out = torch.matmul(scores.softmax(dim=-1), v)
    out = out.permute(0, 2, 1, 3).reshape(batch, ctx, D)
    return F.linear(out, *w["dense"])


def block(x, w, cos, sin, mask):
    attn = attention(F.layer_norm(x, (D,), *w["ln1"], EPS), w, cos, sin, mask)
    mlp = F.linear(F.gelu(F.linear(F.layer_norm(x, (D,), *w["ln2"], EPS), *w["up"])), *w["down"])
    return x + attn + mlp


def forward(tokens, W, stop_after=None):
    ctx = tokens.shape[1]
    cos, sin = rotary_tables(ctx)
    mask = torch.ones(ctx, ctx, dtype=torch.bool).triu(1)
    x = F.embedding(tokens, W["embed"])
    for i, w in enumerate(W["blocks"]):
        x = block(x, w, cos, sin, mask)
        if stop_after is not None and i == stop_after:
            return x, None
    logits = F.linear(F.layer_norm(x, (D,), *W["ln_f"], EPS), W["unembed"])
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))
    return x, loss


def logits_from(x, W, first_block, cos, sin, mask):
    for w in W["blocks"][first_block:]:
        x = block(x, w, cos, sin, mask)
    return F.linear(F.layer_norm(x, (D,), *W["ln_f"], EPS), W["unembed"])


def e2e_kl_step(tokens, W, layer):
    """Clean logits and resid_post of `layer`; the KL of the spliced pass and its gradient there."""
    ctx = tokens.shape[1]
    cos, sin = rotary_tables(ctx)
    mask = torch.ones(ctx, ctx, dtype=torch.bool).triu(1)
    with torch.no_grad():
        x = F.embedding(tokens, W["embed"])
        for w in W["blocks"][:layer + 1]:
            x = block(x, w, cos, sin, mask)
        clean = logits_from(x, W, layer + 1, cos, sin, mask).log_softmax(-1)
    x_hat = x.clone().requires_grad_(True)
    spliced = logits_from(x_hat, W, layer + 1, cos, sin, mask).log_softmax(-1)
    kl = F.kl_div(spliced.reshape(-1, VOCAB), clean.reshape(-1, VOCAB), log_target=True, reduction="batchmean")
    kl.backward()
    return x_hat.grad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    W = random_weights(gen)
    tokens = torch.randint(0, VOCAB, (a.batch, a.ctx), generator=gen)
    n = a.batch * a.ctx
    with torch.inference_mode():
        harvest = median_ms(lambda: forward(tokens, W, stop_after=a.layer), a.runs, warmup=1)
        full = median_ms(lambda: forward(tokens, W), a.runs, warmup=1)
    e2e = median_ms(lambda: e2e_kl_step(tokens, W, a.layer), a.runs, warmup=1)
    print(json.dumps({
        "bench": "lm", "impl": "torch", "preset": "pythia-70m", "layer": a.layer, "ctx": a.ctx,
        "batch": a.batch, "threads": a.threads,
        "harvest_tokens_per_s": round(n / (harvest / 1000)), "harvest_ms": round(harvest, 3),
        "full_tokens_per_s": round(n / (full / 1000)), "full_ms": round(full, 3),
        "e2e_kl_tokens_per_s": round(n / (e2e / 1000)), "e2e_kl_ms": round(e2e, 3),
    }))


if __name__ == "__main__":
    main()
