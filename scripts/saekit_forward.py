"""What the check scripts ask saekit for: `saekit logits` on a token sequence, and the
residual stream at the hooks SAEs read (blocks.0.hook_resid_pre and every
blocks.{i}.hook_resid_post) through the library's hooks; and how they compare with a
reference forward. Imported by check-logits-torch.py and check-transformers.py; needs torch
and a built checkout (npm ci).
"""
import json
import os
import struct

import torch

from saekit_node import run_js, saekit
# The issues ask for logits within 1e-4 of the reference, relative to its largest magnitude.
TOLERANCE = 1e-4


def read_logits(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n])["logits"]
    start, end = meta["data_offsets"]
    values = torch.frombuffer(bytearray(raw[8 + n + start:8 + n + end]), dtype=torch.float32)
    return values.reshape(meta["shape"]).double()


def saekit_logits(folder, tokens):
    out = os.path.join(folder, "logits.safetensors")
    saekit("logits", "--model", folder, "--tokens", ",".join(map(str, tokens)), "--out", out)
    return read_logits(out)


# Activations at hooks through the library's hooks, as JSON: the residual stream at every
# block boundary, or the hooks named.
HOOKS_JS = """
const [root, folder, tokensJson, namesJson] = process.argv.slice(1);
const { loadModel } = await import(root + "/dist/lm/load.js");
const { model } = await loadModel(folder);
const tokens = Int32Array.from(JSON.parse(tokensJson));
const names = JSON.parse(namesJson) ?? ["blocks.0.hook_resid_pre", ...Array.from({ length: model.cfg.nLayers }, (_, i) => `blocks.${i}.hook_resid_post`)];
const got = {};
model.forward(tokens, 1, tokens.length, { output: "none", hooks: Object.fromEntries(names.map((n) => [n, (a) => { got[n] = Array.from(a); }])) });
console.log(JSON.stringify(got));
"""


def saekit_hooks(folder, tokens, names=None):
    """The activations [T, width] at `names` (default: the residual stream into block 0 and out of every block)."""
    got = json.loads(run_js(HOOKS_JS, folder, json.dumps(tokens), json.dumps(names)))
    return {name: torch.tensor(v, dtype=torch.float64) for name, v in got.items()}


def worst_relative(got, want):
    """The largest difference over a list of activation pairs, relative to each reference's largest magnitude."""
    return max(((g.view(w.shape) - w).abs().max() / w.abs().max()).item() for g, w in zip(got, want))


def compare(folder, tokens, want_logits, want_stream):
    """saekit's logits and residual stream for `tokens` against the reference's: the logits'
    shape agreement, and the largest difference relative to the largest reference magnitude
    over the logits and over the hooks (want_stream: the stream into block 0, then out of
    each block)."""
    got = saekit_logits(folder, tokens)
    same_shape = list(got.shape) == list(want_logits.shape)
    rel = ((got - want_logits).abs().max() / want_logits.abs().max()).item() if same_shape else float("inf")
    hooks = saekit_hooks(folder, tokens)
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{b}.hook_resid_post" for b in range(len(want_stream) - 1)]
    worst = worst_relative([hooks[n] for n in names], want_stream)
    ok = same_shape and rel <= TOLERANCE and worst <= TOLERANCE
    return ok, f"logits {list(got.shape)}, max |saekit - ref| / max |ref| = {rel:.2e}; residual stream at {len(names)} hooks: {worst:.2e}"
