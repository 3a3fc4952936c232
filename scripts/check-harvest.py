#!/usr/bin/env python3
"""Checks `saekit harvest` stores against transformers' own forward on the stored contexts.

A store holds, shard by shard, the token contexts it ran (`tokens`) and the activations of
their positions at a hook (`activations`, less each context's first position with
--exclude-bos). This script builds a small GPT-NeoX with transformers (random weights, the
real GPT-NeoX-20B tokenizer from ../shared/data beside it), harvests two hooks at once from
the TinyStories text over several shards (float32, one store with --exclude-bos), reads each
store with `safetensors`, runs the stored contexts through the model transformers loads from
the same folder (float64), and compares every stored row with the hidden state it stands
for: the output of layer 0 (blocks.0.hook_resid_post) and the MLP's output in layer 1
(blocks.1.hook_mlp_out). It also checks that each context starts with BOS and that the
contexts are the text's tokens in order. It fails on any row further than 1e-4 (relative to
the largest value) from transformers'.

Needs a Python with torch, transformers and safetensors (python3 -m venv /tmp/hf &&
/tmp/hf/bin/pip install torch transformers safetensors), a built checkout (npm ci) and
../shared/data:
  /tmp/hf/bin/python scripts/check-harvest.py [SHARED_DATA_DIR]
Not part of `npm test`, which must not need Python.
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForCausalLM

from saekit_forward import TOLERANCE
from saekit_node import ROOT, saekit

CTX = 64
HOOKS = ["blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"]


def write_model(folder, data, gen):
    config = AutoConfig.for_model("gpt_neox", vocab_size=50304, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=2048, bos_token_id=0, eos_token_id=0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(noise * 0.2 if p.dim() >= 2 else (noise * 0.1 if name.endswith("bias") else 1 + 0.1 * noise))
    model.save_pretrained(folder)
    shutil.copy(os.path.join(data, "tokenizers", "gpt-neox-20b", "20B_tokenizer.json"), os.path.join(folder, "tokenizer.json"))
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64, attn_implementation="eager").eval()


def reference_rows(model, contexts):
    """blocks.0.hook_resid_post (layer 0's output) and blocks.1.hook_mlp_out (layer 1's MLP output) for each context."""
    got = {hook: [] for hook in HOOKS}
    layers = model.gpt_neox.layers
    handles = [layers[0].register_forward_hook(lambda _m, _a, out: got[HOOKS[0]].append((out[0] if isinstance(out, tuple) else out)[0])),
               layers[1].mlp.register_forward_hook(lambda _m, _a, out: got[HOOKS[1]].append(out[0]))]
    with torch.no_grad():
        for c in contexts:
            model(torch.tensor([c]))
    for h in handles:
        h.remove()
    return {hook: torch.stack(rows).numpy() for hook, rows in got.items()}


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")
    gen = torch.Generator().manual_seed(0)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    failed = False
    text = os.path.join(data, "tinystories", "tinystories_train_first2MiB.txt")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        model = write_model(model_dir, data, gen)
        for name, extra in (("float32", []), ("float32, --exclude-bos", ["--exclude-bos"])):
            out = os.path.join(tmp, name.replace(", ", "-").replace("--", ""))
            saekit("harvest", "--model", model_dir, "--dataset", text, "--hook", ",".join(HOOKS), "--tokens", "4000",
                   "--ctx", str(CTX), "--shard-tokens", "1000", "--out", out, *extra)
            for hook in HOOKS:
                store = os.path.join(out, hook)
                manifest = json.load(open(os.path.join(store, "manifest.json")))
                shards = [load_file(os.path.join(store, s["file"])) for s in manifest["shards"]]
                tokens = np.concatenate([s["tokens"] for s in shards])
                acts = np.concatenate([s["activations"] for s in shards]).astype(np.float64)
                want = reference_rows(model, tokens.tolist())[hook]
                per = manifest["rows_per_context"]
                want = want[:, CTX - per:].reshape(-1, want.shape[-1])
                rel = np.abs(acts - want).max() / np.abs(want).max() if acts.shape == want.shape else float("inf")
                starts = bool((tokens[:, 0] == 0).all())
                ok = rel <= TOLERANCE and starts and per == (CTX - 1 if extra else CTX)
                failed |= not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name} store at {hook}: {len(manifest['shards'])} shards, {acts.shape[0]} rows of "
                      f"{len(tokens)} contexts, every context from BOS: {starts}; max |saekit - transformers| / max = {rel:.2e}", flush=True)
        # The contexts are the text's tokens, in order: the first context after BOS is the first document's start.
        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        first_doc = open(text, encoding="utf-8").readline().strip()
        want_ids = tok.encode(first_doc, add_special_tokens=False).ids[:CTX - 1]
        got_ids = tokens[0, 1:1 + len(want_ids)].tolist()
        ok = got_ids == want_ids
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} the first context is BOS and the first document's first {len(want_ids)} tokens, as tokenizers encodes them")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
