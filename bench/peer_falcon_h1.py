#!/usr/bin/env python3
"""Peer reference: Hugging Face transformers' own FalconH1ForCausalLM on the CPU, at
Falcon-H1-0.5B's shapes (its config.json) with transformers' random initialisation, in
float32 with eager attention and its torch fallback for Mamba-2 (the chunked scan, what runs
without the mamba_ssm CUDA kernels): what a Python user gets on a laptop.

It is the side-by-side anchor for `saekit bench lm --preset falcon-h1-0.5b`, measuring the
same three things with the same tokens per forward (batch x ctx):
  harvest: the embedding and the layers up to --layer, stopping there (a forward hook on that
           layer ends the pass, as TransformerLens' stop_at_layer does);
  full:    the whole model, the logits and the mean next-token cross-entropy;
  e2e_kl:  the model's share of an end-to-end SAE training step (sparsify's loss_fn "kl"): a
           clean pass, a pass with --layer's output replaced by a leaf that requires grad (here
           the activation itself), the KL between the two next-token distributions and
           autograd's backward to the leaf; the weights frozen, as end-to-end training keeps them.
The first two run under torch.inference_mode().

Needs PyTorch and transformers (a virtual environment: pip install torch transformers; run
bench/compare.mjs with --python pointing at its python). Prints one JSON line like peer_lm.py's.

usage: peer_falcon_h1.py [--layer 0] [--ctx 128] [--batch 1] [--runs 5] [--threads 2]
"""
import argparse
import json

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM

from peer_timing import median_ms

# tiiuae/Falcon-H1-0.5B-Base's config.json (the fields beyond FalconH1Config's defaults).
FALCON_H1_0_5B = dict(
    vocab_size=32784, hidden_size=1024, intermediate_size=2048, num_hidden_layers=36, num_attention_heads=8,
    num_key_value_heads=2, head_dim=64, rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 1e11},
    max_position_embeddings=16384, tie_word_embeddings=False, bos_token_id=1, eos_token_id=11, pad_token_id=0,
    mamba_d_ssm=1536, mamba_n_heads=24, mamba_d_head=64, mamba_d_state=128, mamba_n_groups=1, mamba_d_conv=4,
    mamba_chunk_size=128, mamba_rms_norm=False, mamba_norm_before_gate=False, embedding_multiplier=5.656854249492381,
    lm_head_multiplier=0.0390625, attention_in_multiplier=1.0, attention_out_multiplier=0.9375,
    key_multiplier=0.39062499999999994, ssm_in_multiplier=1.25, ssm_out_multiplier=0.23570226039551587,
    mlp_multipliers=[0.8838834764831844, 0.5859375],
    ssm_multipliers=[0.3535533905932738, 0.25, 0.3535533905932738, 0.5, 0.3535533905932738],
)


class Stop(Exception):
    """Raised by the harvest's hook to end the pass after its layer."""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = AutoConfig.for_model("falcon_h1", **FALCON_H1_0_5B)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").float().eval()
    model.requires_grad_(False)
    layer = model.model.layers[a.layer]
    tokens = torch.randint(0, config.vocab_size, (a.batch, a.ctx), generator=torch.Generator().manual_seed(1))
    n = a.batch * a.ctx

    def harvest():
        seen = {}

        def stop(_module, _args, output):
            seen["x"] = output[0] if isinstance(output, tuple) else output
            raise Stop

        handle = layer.register_forward_hook(stop)
        try:
            with torch.inference_mode():
                model(tokens, use_cache=False)
        except Stop:
            pass
        finally:
            handle.remove()
        return seen["x"]

    def full():
        with torch.inference_mode():
            logits = model(tokens, use_cache=False).logits
            return F.cross_entropy(logits[:, :-1].reshape(-1, config.vocab_size), tokens[:, 1:].reshape(-1))

    def e2e_kl():
        captured = {}

        def keep(_module, _args, output):
            captured["x"] = (output[0] if isinstance(output, tuple) else output).detach()

        handle = layer.register_forward_hook(keep)
        with torch.no_grad():
            clean = model(tokens, use_cache=False).logits.log_softmax(-1)
        handle.remove()
        x_hat = captured["x"].clone().requires_grad_(True)

        def swap(_module, _args, output):
            return (x_hat, *output[1:]) if isinstance(output, tuple) else x_hat

        handle = layer.register_forward_hook(swap)
        try:
            spliced = model(tokens, use_cache=False).logits.log_softmax(-1)
        finally:
            handle.remove()
        kl = F.kl_div(spliced.reshape(-1, config.vocab_size), clean.reshape(-1, config.vocab_size), log_target=True, reduction="batchmean")
        kl.backward()
        return x_hat.grad

    harvest_ms = median_ms(harvest, a.runs, warmup=1)
    full_ms = median_ms(full, a.runs, warmup=1)
    e2e_ms = median_ms(e2e_kl, a.runs, warmup=1)
    print(json.dumps({
        "bench": "lm", "impl": f"transformers {__import__('transformers').__version__} (torch {torch.__version__})",
        "preset": "falcon-h1-0.5b", "layer": a.layer, "ctx": a.ctx, "batch": a.batch, "threads": a.threads,
        "harvest_tokens_per_s": round(n / (harvest_ms / 1000)), "harvest_ms": round(harvest_ms, 3),
        "full_tokens_per_s": round(n / (full_ms / 1000)), "full_ms": round(full_ms, 3),
        "e2e_kl_tokens_per_s": round(n / (e2e_ms / 1000)), "e2e_kl_ms": round(e2e_ms, 3),
    }))


if __name__ == "__main__":
    main()
