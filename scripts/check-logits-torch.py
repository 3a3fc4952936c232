#!/usr/bin/env python3
"""Checks `saekit logits` against PyTorch re-implementations of Hugging Face's modeling code.

For GPT-NeoX (parallel and sequential residual, partial rotary), GPT-2, GPT-Neo, Llama
(rotate-half rotary, grouped-query attention, tied and untied classifier), Qwen2 (Llama's
block with q/k/v biases), OLMo (LayerNorms without weights, q/k/v clamped), OLMo 2 (norms
after attention and MLP only, q/k norms over the whole projections), Gemma 2 (soft-capped attention and logits, norms after attention
and MLP, (1 + w) RMSNorm) and Gemma 3 (q/k norms, a rotary base per layer kind) it writes
a small checkpoint with random weights as `save_pretrained` lays it out (config.json +
model.safetensors), runs `saekit logits` on a token sequence, and compares with the forward
written here in float64 after modeling_gpt_neox.py, modeling_gpt2.py, modeling_gpt_neo.py,
modeling_llama.py, modeling_olmo.py, modeling_olmo2.py, modeling_gemma2.py and modeling_gemma3.py (eager attention). The issues
ask for 1e-4 relative agreement; the largest difference over the logits, relative to their
largest magnitude, is printed per model, and the same for the residual stream at the hooks
SAEs read (blocks.0.hook_resid_pre and every blocks.{i}.hook_resid_post, through the
library's hooks); the script fails if either is above that.

Needs Debian's PyTorch (apt-get install -y python3-torch) and a built checkout (npm ci);
it is not part of `npm test`, which must not need Python.

  python3 scripts/check-logits-torch.py
"""
import json
import os
import struct
import sys
import tempfile

import torch
import torch.nn.functional as F

from saekit_forward import compare


def write_safetensors(path, tensors):
    """safetensors by hand (an 8-byte header length, the JSON header, the raw bytes)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def randn(gen, *shape, scale=0.2):
    return torch.randn(*shape, generator=gen, dtype=torch.float64) * scale


def layer_norm_params(gen, W, name, D):
    """A LayerNorm's weight (near 1) and bias (near 0) under `name`."""
    W[name + ".weight"] = 1 + randn(gen, D, scale=0.1)
    W[name + ".bias"] = randn(gen, D, scale=0.1)


def token_and_position_embeddings(gen, V, D, P):
    """GPT-2's and GPT-Neo's wte and wpe."""
    return {"transformer.wte.weight": randn(gen, V, D, scale=1.0), "transformer.wpe.weight": randn(gen, P, D, scale=0.5)}


def tied_head(W, x, eps):
    """GPT-2's and GPT-Neo's final LayerNorm and tied unembedding."""
    x = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return x @ W["transformer.wte.weight"].T


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, base):
    """Hugging Face's rotary embedding over all of x's last dimension: [heads, T, dim]."""
    dim, T = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def capped(v, cap):
    """Gemma 2's soft cap, cap * tanh(v / cap); None: v as it is."""
    return v if cap is None else torch.tanh(v / cap) * cap


def causal_attention(q, k, v, scale=None, softcap=None):
    """[heads, T, dh] each: softmax(capped(q k^T * scale), causal) v, heads merged to
    [T, heads * dh]. The scale defaults to 1 / sqrt(dh)."""
    T, dh = q.shape[-2], q.shape[-1]
    scores = capped(q @ k.transpose(-1, -2) * (dh ** -0.5 if scale is None else scale), softcap)
    scores = scores.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v
    return out.transpose(0, 1).reshape(T, -1)


# ---------------------------------------------------------------- GPT-NeoX (Pythia)
def neox(gen, parallel):
    V, D, H, L, Dff, eps, base, pct = 97, 64, 4, 2, 96, 1e-5, 10000, 0.25  # rotary on 4 of 16
    dh = D // H
    rot = int(dh * pct)
    W = {"gpt_neox.embed_in.weight": randn(gen, V, D, scale=1.0)}
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            layer_norm_params(gen, W, p + ln, D)
        W[p + "attention.query_key_value.weight"] = randn(gen, 3 * D, D)
        W[p + "attention.query_key_value.bias"] = randn(gen, 3 * D, scale=0.1)
        W[p + "attention.dense.weight"] = randn(gen, D, D)
        W[p + "attention.dense.bias"] = randn(gen, D, scale=0.1)
        W[p + "mlp.dense_h_to_4h.weight"] = randn(gen, Dff, D)
        W[p + "mlp.dense_h_to_4h.bias"] = randn(gen, Dff, scale=0.1)
        W[p + "mlp.dense_4h_to_h.weight"] = randn(gen, D, Dff)
        W[p + "mlp.dense_4h_to_h.bias"] = randn(gen, D, scale=0.1)
    layer_norm_params(gen, W, "gpt_neox.final_layer_norm", D)
    W["embed_out.weight"] = randn(gen, V, D)
    config = {
        "model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "vocab_size": V, "hidden_size": D,
        "num_attention_heads": H, "num_hidden_layers": L, "intermediate_size": Dff, "hidden_act": "gelu",
        "rotary_pct": pct, "rotary_emb_base": base, "max_position_embeddings": 64, "layer_norm_eps": eps,
        "use_parallel_residual": parallel, "tie_word_embeddings": False, "attention_bias": True,
    }

    def forward(tokens):
        x = W["gpt_neox.embed_in.weight"][tokens]
        stream = [x]
        for i in range(L):
            p = f"gpt_neox.layers.{i}."

            def attention(h):
                qkv = F.linear(h, W[p + "attention.query_key_value.weight"], W[p + "attention.query_key_value.bias"])
                qkv = qkv.view(len(tokens), H, 3 * dh).transpose(0, 1)  # per head: [q | k | v]
                q, k, v = qkv[..., :dh], qkv[..., dh:2 * dh], qkv[..., 2 * dh:]
                q = torch.cat((rope(q[..., :rot], base), q[..., rot:]), dim=-1)
                k = torch.cat((rope(k[..., :rot], base), k[..., rot:]), dim=-1)
                return F.linear(causal_attention(q, k, v), W[p + "attention.dense.weight"], W[p + "attention.dense.bias"])

            def mlp(h):
                up = F.gelu(F.linear(h, W[p + "mlp.dense_h_to_4h.weight"], W[p + "mlp.dense_h_to_4h.bias"]))
                return F.linear(up, W[p + "mlp.dense_4h_to_h.weight"], W[p + "mlp.dense_4h_to_h.bias"])

            ln1 = lambda h: layer_norm(h, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], eps)  # noqa: E731
            ln2 = lambda h: layer_norm(h, W[p + "post_attention_layernorm.weight"], W[p + "post_attention_layernorm.bias"], eps)  # noqa: E731
            if parallel:
                x = x + attention(ln1(x)) + mlp(ln2(x))
            else:
                x = x + attention(ln1(x))
                x = x + mlp(ln2(x))
            stream.append(x)
        x = layer_norm(x, W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"], eps)
        return x @ W["embed_out.weight"].T, stream

    return config, W, forward


# ---------------------------------------------------------------- GPT-2
def gpt2(gen):
    V, D, H, L, eps, P = 101, 40, 5, 2, 1e-5, 32
    dh = D // H
    W = token_and_position_embeddings(gen, V, D, P)
    for i in range(L):
        p = f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            layer_norm_params(gen, W, p + ln, D)
        # Conv1D: weight [in, out], y = x W + b.
        W[p + "attn.c_attn.weight"] = randn(gen, D, 3 * D)
        W[p + "attn.c_attn.bias"] = randn(gen, 3 * D, scale=0.1)
        W[p + "attn.c_proj.weight"] = randn(gen, D, D)
        W[p + "attn.c_proj.bias"] = randn(gen, D, scale=0.1)
        W[p + "mlp.c_fc.weight"] = randn(gen, D, 4 * D)
        W[p + "mlp.c_fc.bias"] = randn(gen, 4 * D, scale=0.1)
        W[p + "mlp.c_proj.weight"] = randn(gen, 4 * D, D)
        W[p + "mlp.c_proj.bias"] = randn(gen, D, scale=0.1)
    layer_norm_params(gen, W, "transformer.ln_f", D)
    config = {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": V, "n_embd": D, "n_head": H,
        "n_layer": L, "n_positions": P, "n_ctx": P, "layer_norm_epsilon": eps, "activation_function": "gelu_new",
        "tie_word_embeddings": True,
    }

    def forward(tokens):
        T = len(tokens)
        x = W["transformer.wte.weight"][tokens] + W["transformer.wpe.weight"][:T]
        stream = [x]
        for i in range(L):
            p = f"transformer.h.{i}."
            h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
            qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
            q, k, v = (t.view(T, H, dh).transpose(0, 1) for t in qkv.split(D, dim=-1))
            x = x + causal_attention(q, k, v) @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
            h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
            up = F.gelu(h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"], approximate="tanh")
            x = x + up @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
            stream.append(x)
        return tied_head(W, x, eps), stream

    return config, W, forward


# ---------------------------------------------------------------- GPT-Neo (the TinyStories models)
def gpt_neo(gen):
    V, D, H, L, eps, P = 79, 32, 4, 2, 1e-5, 48
    dh = D // H
    W = token_and_position_embeddings(gen, V, D, P)
    for i in range(L):
        p = f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            layer_norm_params(gen, W, p + ln, D)
        for proj in ("q_proj", "k_proj", "v_proj"):  # nn.Linear [out, in], no bias
            W[p + f"attn.attention.{proj}.weight"] = randn(gen, D, D)
        W[p + "attn.attention.out_proj.weight"] = randn(gen, D, D)
        W[p + "attn.attention.out_proj.bias"] = randn(gen, D, scale=0.1)
        W[p + "mlp.c_fc.weight"] = randn(gen, 4 * D, D)
        W[p + "mlp.c_fc.bias"] = randn(gen, 4 * D, scale=0.1)
        W[p + "mlp.c_proj.weight"] = randn(gen, D, 4 * D)
        W[p + "mlp.c_proj.bias"] = randn(gen, D, scale=0.1)
    layer_norm_params(gen, W, "transformer.ln_f", D)
    config = {
        "model_type": "gpt_neo", "architectures": ["GPTNeoForCausalLM"], "vocab_size": V, "hidden_size": D,
        "num_heads": H, "num_layers": L, "max_position_embeddings": P, "window_size": 256,
        "attention_types": [[["global", "local"], 1]], "activation_function": "gelu_new",
        "layer_norm_epsilon": eps, "intermediate_size": None, "tie_word_embeddings": True,
    }

    def forward(tokens):
        T = len(tokens)
        x = W["transformer.wte.weight"][tokens] + W["transformer.wpe.weight"][:T]
        stream = [x]
        for i in range(L):
            p = f"transformer.h.{i}."
            h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
            q, k, v = (F.linear(h, W[p + f"attn.attention.{n}.weight"]).view(T, H, dh).transpose(0, 1) for n in ("q_proj", "k_proj", "v_proj"))
            # modeling_gpt_neo does not divide the logits by sqrt(d_head).
            attn = causal_attention(q, k, v, scale=1.0)
            x = x + F.linear(attn, W[p + "attn.attention.out_proj.weight"], W[p + "attn.attention.out_proj.bias"])
            h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
            up = F.gelu(F.linear(h, W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"]), approximate="tanh")
            x = x + F.linear(up, W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"])
            stream.append(x)
        return tied_head(W, x, eps), stream

    return config, W, forward


# ---------------------------------------------------------------- Llama
def llama(gen, tied, model_type="llama"):
    """Llama, or Qwen2 (model_type "qwen2": the same block with biases on q, k and v)."""
    V, D, H, KV, L, Dff, eps, theta = 89, 64, 4, 2, 2, 112, 1e-6, 500000.0
    qkv_bias = model_type == "qwen2"
    dh = D // H
    W = {"model.embed_tokens.weight": randn(gen, V, D, scale=1.0)}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = 1 + randn(gen, D, scale=0.1)
        W[p + "post_attention_layernorm.weight"] = 1 + randn(gen, D, scale=0.1)
        W[p + "self_attn.q_proj.weight"] = randn(gen, H * dh, D)
        W[p + "self_attn.k_proj.weight"] = randn(gen, KV * dh, D)
        W[p + "self_attn.v_proj.weight"] = randn(gen, KV * dh, D)
        W[p + "self_attn.o_proj.weight"] = randn(gen, D, H * dh)
        if qkv_bias:
            for proj, n in (("q_proj", H), ("k_proj", KV), ("v_proj", KV)):
                W[p + f"self_attn.{proj}.bias"] = randn(gen, n * dh, scale=0.1)
        W[p + "mlp.gate_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.up_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.down_proj.weight"] = randn(gen, D, Dff)
    W["model.norm.weight"] = 1 + randn(gen, D, scale=0.1)
    if not tied:
        W["lm_head.weight"] = randn(gen, V, D)
    config = {
        "model_type": model_type, "vocab_size": V, "hidden_size": D,
        "intermediate_size": Dff, "num_attention_heads": H, "num_key_value_heads": KV, "num_hidden_layers": L,
        "rms_norm_eps": eps, "rope_theta": theta, "max_position_embeddings": 64, "hidden_act": "silu",
        "tie_word_embeddings": tied, "attention_bias": False, "mlp_bias": False,
    }

    def rms_norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def forward(tokens):
        T = len(tokens)
        x = W["model.embed_tokens.weight"][tokens]
        stream = [x]
        for i in range(L):
            p = f"model.layers.{i}."
            h = rms_norm(x, W[p + "input_layernorm.weight"])
            q, k, v = (F.linear(h, W[p + f"self_attn.{proj}.weight"], W.get(p + f"self_attn.{proj}.bias")).view(T, n, dh).transpose(0, 1)
                       for proj, n in (("q_proj", H), ("k_proj", KV), ("v_proj", KV)))
            q, k = rope(q, theta), rope(k, theta)
            k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)  # repeat_kv
            x = x + F.linear(causal_attention(q, k, v), W[p + "self_attn.o_proj.weight"])
            h = rms_norm(x, W[p + "post_attention_layernorm.weight"])
            up = F.silu(F.linear(h, W[p + "mlp.gate_proj.weight"])) * F.linear(h, W[p + "mlp.up_proj.weight"])
            x = x + F.linear(up, W[p + "mlp.down_proj.weight"])
            stream.append(x)
        x = rms_norm(x, W["model.norm.weight"])
        return x @ (W["model.embed_tokens.weight"] if tied else W["lm_head.weight"]).T, stream

    return config, W, forward


# ---------------------------------------------------------------- OLMo
def olmo(gen):
    """The first OLMo: Llama's weights without any norm weights (OlmoLayerNorm: F.layer_norm
    with no weight or bias, eps 1e-5), q, k and v clamped to +-clip_qkv."""
    V, D, H, L, Dff, theta, clip = 87, 64, 4, 2, 112, 10000.0, 1.0
    dh = D // H
    W = {"model.embed_tokens.weight": randn(gen, V, D, scale=1.0)}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "self_attn.q_proj.weight"] = randn(gen, D, D)
        W[p + "self_attn.k_proj.weight"] = randn(gen, D, D)
        W[p + "self_attn.v_proj.weight"] = randn(gen, D, D)
        W[p + "self_attn.o_proj.weight"] = randn(gen, D, D)
        W[p + "mlp.gate_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.up_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.down_proj.weight"] = randn(gen, D, Dff)
    config = {
        "model_type": "olmo", "architectures": ["OlmoForCausalLM"], "vocab_size": V, "hidden_size": D,
        "intermediate_size": Dff, "num_attention_heads": H, "num_key_value_heads": H, "num_hidden_layers": L,
        "rope_theta": theta, "max_position_embeddings": 64, "hidden_act": "silu", "tie_word_embeddings": True,
        "attention_bias": False, "clip_qkv": clip,
    }

    def norm(x):
        return F.layer_norm(x, (D,), None, None, eps=1e-5)

    def forward(tokens):
        T = len(tokens)
        x = W["model.embed_tokens.weight"][tokens]
        stream = [x]
        for i in range(L):
            p = f"model.layers.{i}."
            h = norm(x)
            q, k, v = (F.linear(h, W[p + f"self_attn.{proj}.weight"]).clamp(-clip, clip).view(T, H, dh).transpose(0, 1)
                       for proj in ("q_proj", "k_proj", "v_proj"))
            q, k = rope(q, theta), rope(k, theta)
            x = x + F.linear(causal_attention(q, k, v), W[p + "self_attn.o_proj.weight"])
            h = norm(x)
            x = x + F.linear(F.silu(F.linear(h, W[p + "mlp.gate_proj.weight"])) * F.linear(h, W[p + "mlp.up_proj.weight"]), W[p + "mlp.down_proj.weight"])
            stream.append(x)
        return norm(x) @ W["model.embed_tokens.weight"].T, stream

    return config, W, forward


# ---------------------------------------------------------------- OLMo 2
def olmo2(gen):
    """OLMo 2: Llama's weights without input_layernorm; RMSNorms over the whole q and k
    projections, and on the attention and MLP outputs before each residual add."""
    V, D, H, KV, L, Dff, eps, theta = 91, 64, 4, 2, 2, 112, 1e-6, 500000.0
    dh = 20  # a head_dim of its own: H * dh != D
    W = {"model.embed_tokens.weight": randn(gen, V, D, scale=1.0)}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "self_attn.q_proj.weight"] = randn(gen, H * dh, D)
        W[p + "self_attn.k_proj.weight"] = randn(gen, KV * dh, D)
        W[p + "self_attn.v_proj.weight"] = randn(gen, KV * dh, D)
        W[p + "self_attn.o_proj.weight"] = randn(gen, D, H * dh)
        W[p + "self_attn.q_norm.weight"] = 1 + randn(gen, H * dh, scale=0.1)
        W[p + "self_attn.k_norm.weight"] = 1 + randn(gen, KV * dh, scale=0.1)
        W[p + "post_attention_layernorm.weight"] = 1 + randn(gen, D, scale=0.1)
        W[p + "post_feedforward_layernorm.weight"] = 1 + randn(gen, D, scale=0.1)
        W[p + "mlp.gate_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.up_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.down_proj.weight"] = randn(gen, D, Dff)
    W["model.norm.weight"] = 1 + randn(gen, D, scale=0.1)
    W["lm_head.weight"] = randn(gen, V, D)
    config = {
        "model_type": "olmo2", "architectures": ["Olmo2ForCausalLM"], "vocab_size": V, "hidden_size": D,
        "intermediate_size": Dff, "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": dh,
        "num_hidden_layers": L, "rms_norm_eps": eps, "rope_theta": theta, "max_position_embeddings": 64,
        "hidden_act": "silu", "tie_word_embeddings": False, "attention_bias": False,
    }

    def rms_norm(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def forward(tokens):
        T = len(tokens)
        x = W["model.embed_tokens.weight"][tokens]
        stream = [x]
        for i in range(L):
            p = f"model.layers.{i}."
            q = rms_norm(F.linear(x, W[p + "self_attn.q_proj.weight"]), W[p + "self_attn.q_norm.weight"])
            k = rms_norm(F.linear(x, W[p + "self_attn.k_proj.weight"]), W[p + "self_attn.k_norm.weight"])
            v = F.linear(x, W[p + "self_attn.v_proj.weight"])
            q, k, v = (t.view(T, n, dh).transpose(0, 1) for t, n in ((q, H), (k, KV), (v, KV)))
            q, k = rope(q, theta), rope(k, theta)
            k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)  # repeat_kv
            attn = F.linear(causal_attention(q, k, v), W[p + "self_attn.o_proj.weight"])
            x = x + rms_norm(attn, W[p + "post_attention_layernorm.weight"])
            up = F.silu(F.linear(x, W[p + "mlp.gate_proj.weight"])) * F.linear(x, W[p + "mlp.up_proj.weight"])
            x = x + rms_norm(F.linear(up, W[p + "mlp.down_proj.weight"]), W[p + "post_feedforward_layernorm.weight"])
            stream.append(x)
        x = rms_norm(x, W["model.norm.weight"])
        return x @ W["lm_head.weight"].T, stream

    return config, W, forward


# ---------------------------------------------------------------- Gemma 2 and 3
def gemma(gen, version):
    """Gemma 2 (soft-capped attention and logits), or Gemma 3's text model (q/k RMSNorms per
    head, no soft caps, a rotary base of their own for the sliding-window layers)."""
    V, D, H, KV, L, Dff, dh, eps = 83, 48, 4, 2, 2, 96, 16, 1e-6
    gemma3 = version == 3
    theta, local_theta = (1_000_000.0, 10000.0) if gemma3 else (10000.0, 10000.0)
    # Small caps, so tanh bends the values; Gemma 3 has none.
    query_scalar, attn_cap, final_cap = 24.0, (None if gemma3 else 2.0), (None if gemma3 else 3.0)
    layer_types = ["sliding_attention", "full_attention"]  # the first layer local, the second global
    W = {"model.embed_tokens.weight": randn(gen, V, D, scale=1.0)}
    norms = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")
    for i in range(L):
        p = f"model.layers.{i}."
        for n in norms:
            W[p + n + ".weight"] = randn(gen, D, scale=0.1)  # Gemma scales by (1 + w)
        if gemma3:
            W[p + "self_attn.q_norm.weight"] = randn(gen, dh, scale=0.1)
            W[p + "self_attn.k_norm.weight"] = randn(gen, dh, scale=0.1)
        W[p + "self_attn.q_proj.weight"] = randn(gen, H * dh, D)
        W[p + "self_attn.k_proj.weight"] = randn(gen, KV * dh, D)
        W[p + "self_attn.v_proj.weight"] = randn(gen, KV * dh, D)
        W[p + "self_attn.o_proj.weight"] = randn(gen, D, H * dh)
        W[p + "mlp.gate_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.up_proj.weight"] = randn(gen, Dff, D)
        W[p + "mlp.down_proj.weight"] = randn(gen, D, Dff)
    W["model.norm.weight"] = randn(gen, D, scale=0.1)
    config = {
        "model_type": "gemma3_text" if gemma3 else "gemma2", "vocab_size": V, "hidden_size": D,
        "intermediate_size": Dff, "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": dh,
        "num_hidden_layers": L, "rms_norm_eps": eps, "rope_theta": theta, "max_position_embeddings": 64,
        "sliding_window": 64, "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": query_scalar,
        "attn_logit_softcapping": attn_cap, "final_logit_softcapping": final_cap, "tie_word_embeddings": True,
        "attention_bias": False,
        **({"rope_local_base_freq": local_theta, "layer_types": layer_types, "rope_scaling": None} if gemma3 else {}),
    }

    def rms_norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + w)

    def forward(tokens):
        T = len(tokens)
        # The embedding scale is a float32 tensor in modeling_gemma2 and modeling_gemma3.
        x = W["model.embed_tokens.weight"][tokens] * torch.tensor(D ** 0.5, dtype=torch.float32).item()
        stream = [x]
        for i in range(L):
            p = f"model.layers.{i}."
            h = rms_norm(x, W[p + "input_layernorm.weight"])
            q = F.linear(h, W[p + "self_attn.q_proj.weight"]).view(T, H, dh).transpose(0, 1)
            k = F.linear(h, W[p + "self_attn.k_proj.weight"]).view(T, KV, dh).transpose(0, 1)
            v = F.linear(h, W[p + "self_attn.v_proj.weight"]).view(T, KV, dh).transpose(0, 1)
            if gemma3:
                q, k = rms_norm(q, W[p + "self_attn.q_norm.weight"]), rms_norm(k, W[p + "self_attn.k_norm.weight"])
            base = local_theta if gemma3 and layer_types[i] == "sliding_attention" else theta
            q, k = rope(q, base), rope(k, base)
            k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)
            attn = causal_attention(q, k, v, scale=query_scalar ** -0.5, softcap=attn_cap)
            x = x + rms_norm(F.linear(attn, W[p + "self_attn.o_proj.weight"]), W[p + "post_attention_layernorm.weight"])
            h = rms_norm(x, W[p + "pre_feedforward_layernorm.weight"])
            up = F.gelu(F.linear(h, W[p + "mlp.gate_proj.weight"]), approximate="tanh") * F.linear(h, W[p + "mlp.up_proj.weight"])
            x = x + rms_norm(F.linear(up, W[p + "mlp.down_proj.weight"]), W[p + "post_feedforward_layernorm.weight"])
            stream.append(x)
        logits = rms_norm(x, W["model.norm.weight"]) @ W["model.embed_tokens.weight"].T
        return capped(logits, final_cap), stream

    return config, W, forward


def main():
    gen = torch.Generator().manual_seed(0)
    models = {
        "gpt_neox (parallel residual)": neox(gen, True),
        "gpt_neox (sequential residual)": neox(gen, False),
        "gpt2": gpt2(gen),
        "gpt_neo (global and local layers)": gpt_neo(gen),
        "llama (untied, grouped-query)": llama(gen, False),
        "llama (tied)": llama(gen, True),
        "qwen2 (q/k/v biases)": llama(gen, True, "qwen2"),
        "olmo (weightless LayerNorms, clip_qkv)": olmo(gen),
        "olmo2 (norms after attention and MLP, q/k norms over the projections)": olmo2(gen),
        "gemma2 (soft caps, post norms, head_dim of its own)": gemma(gen, 2),
        "gemma3 (q/k norms, local and global rotary bases)": gemma(gen, 3),
    }
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (config, weights, forward)) in enumerate(models.items()):
            folder = os.path.join(tmp, f"model{i}")
            os.makedirs(folder)
            with open(os.path.join(folder, "config.json"), "w") as f:
                json.dump(config, f)
            write_safetensors(os.path.join(folder, "model.safetensors"), weights)
            # The weights saekit reads are the float32 roundings: the reference starts from them.
            for key in weights:
                weights[key] = weights[key].float().double()
            vocab = config["vocab_size"]
            tokens = [int(t) for t in torch.randint(0, vocab, (24,), generator=gen)]
            want, stream = forward(torch.tensor(tokens))
            ok, summary = compare(folder, tokens, want, stream)
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {summary}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
