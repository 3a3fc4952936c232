#!/usr/bin/env python3
"""Checks `saekit logits` and the residual-stream hooks against Hugging Face transformers itself.

check-logits-torch.py compares saekit with forwards written here after transformers'
modeling code; this script runs the real thing. For every model family saekit reads it
builds a small transformers model from a config (AutoModelForCausalLM.from_config, eager
attention), gives it random weights of a useful size, saves it with save_pretrained (so
config.json and model.safetensors are exactly what transformers writes, rope_parameters and
all; also in bfloat16 and float16, sharded), and compares saekit's logits and its residual
stream at blocks.0.hook_resid_pre and every blocks.{i}.hook_resid_post with the forward of
the model transformers loads back from that folder, in float64 (the inputs of
each decoder layer and the output of the last, read by forward hooks), and every block's
hook_attn_out and hook_mlp_out with what its attention and MLP add to the stream (after the
norms that follow them in Gemma 2 and 3, OLMo 2 and 3 and GLM-4) and its attn.hook_z with the input
of the attention's output projection; the logits as generation computes them, through
the KV cache one token at a time; and saekit's splice backward (what end-to-end SAE
training runs: the CE or KL loss with an activation spliced in at a hook, and its gradient in
that activation) against autograd through the same model, at blocks.0.hook_resid_post (CE),
blocks.0.hook_mlp_out (KL) and blocks.1.hook_attn_out (CE). The issues ask for
1e-4 relative agreement; the script fails if any model is further off, or fails to load.

Needs a Python with torch and transformers, e.g. a virtual environment:
  python3 -m venv /tmp/hf && /tmp/hf/bin/pip install torch transformers
  /tmp/hf/bin/python scripts/check-transformers.py [WORD ...]
(words pick the models whose names hold one of them, e.g. `olmo`) and a built checkout (npm ci). Not part of `npm test`, which must not need Python.
"""
import json
import re
import sys
import tempfile

import torch
import torch.nn.functional as F
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

from saekit_forward import TOLERANCE, compare, saekit_hooks, worst_relative
from saekit_node import run_js

# Small shapes every family shares: 2 layers, d = 32, 4 heads, a vocabulary of 96 tokens.
# Token ids inside that vocabulary (the classes' defaults name ids of the full-size models').
IDS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
SMALL = dict(IDS, vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64)
LLAMA_LIKE = dict(SMALL, num_key_value_heads=2)
# Qwen3.5: two Gated DeltaNet layers (2 key heads, 4 value heads), attention, another DeltaNet;
# M-RoPE sections (plain rotary on text) on a quarter of each head.
QWEN35 = dict(LLAMA_LIKE, num_hidden_layers=4, head_dim=16, layer_types=["linear_attention", "linear_attention", "full_attention", "linear_attention"],
              linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8, linear_value_head_dim=6, linear_conv_kernel_dim=4,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25, "mrope_section": [1, 1, 0],
                               "mrope_interleaved": True})
# Falcon-H1: Mamba-2 (6 heads of 8 over mamba_d_ssm = 48 channels, 2 groups, a state of 6) beside
# attention in each layer, and every muP multiplier away from 1.
FALCON_H1 = dict(LLAMA_LIKE, head_dim=8, mamba_d_ssm=48, mamba_n_heads=6, mamba_d_head=8, mamba_n_groups=2, mamba_d_state=6, mamba_d_conv=4,
                 mamba_chunk_size=4, mamba_rms_norm=False, embedding_multiplier=2.5, lm_head_multiplier=0.6, attention_in_multiplier=1.3,
                 key_multiplier=0.7, attention_out_multiplier=0.8, ssm_in_multiplier=1.2, ssm_out_multiplier=0.9,
                 ssm_multipliers=[0.6, 1.4, 0.8, 1.25, 0.7], mlp_multipliers=[1.5, 0.75], rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
# A vision tower just big enough to build (saekit leaves it out).
VISION = dict(depth=1, hidden_size=16, num_heads=2, intermediate_size=32, out_hidden_size=32)

# (name, model_type, config fields beyond the class's defaults[, how it is saved])
MODELS = [
    ("gpt_neox (parallel residual, a quarter of each head rotated)", "gpt_neox", dict(SMALL, use_parallel_residual=True)),
    ("gpt_neox (sequential residual, rotary_pct 0.5)", "gpt_neox",
     dict(SMALL, use_parallel_residual=False, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})),
    ("gpt2", "gpt2", dict(IDS, vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=64)),
    ("gpt_neo (global and local layers)", "gpt_neo",
     dict(IDS, vocab_size=96, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, max_position_embeddings=64,
          attention_types=[[["global", "local"], 1]], window_size=64)),
    # GPT-J: one LayerNorm for attention and MLP side by side, interleaved rotary on part of each head, biased lm_head.
    ("gptj (a quarter of each head rotated in interleaved pairs)", "gptj",
     dict(IDS, vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=64, rotary_dim=4, n_inner=64)),
    # Phi (phi-1, phi-1_5, phi-2): GPT-J's block with q/k/v and output biases, rotate-half rotary on part of each head.
    ("phi (grouped-query, 0.4 of each head rotated as phi-2)", "phi", dict(LLAMA_LIKE, hidden_size=40, partial_rotary_factor=0.4)),
    ("llama (untied, grouped-query)", "llama", dict(LLAMA_LIKE, tie_word_embeddings=False)),
    ("llama (tied, llama3 rope scaling)", "llama",
     dict(LLAMA_LIKE, tie_word_embeddings=True, rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
          "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
    # YaRN: within a 16-token original context the ramp between beta_fast and beta_slow blends the middle pairs.
    ("llama (yarn rope scaling)", "llama",
     dict(LLAMA_LIKE, rope_parameters={"rope_type": "yarn", "rope_theta": 100.0, "factor": 4.0, "original_max_position_embeddings": 16,
                                       "beta_fast": 2.0, "beta_slow": 0.25})),
    ("qwen3 (yarn, attention factor from mscale and mscale_all_dim, not truncated)", "qwen3",
     dict(LLAMA_LIKE, head_dim=16, rope_parameters={"rope_type": "yarn", "rope_theta": 100.0, "factor": 8.0, "original_max_position_embeddings": 16,
                                                    "beta_fast": 4.0, "beta_slow": 0.5, "mscale": 1.5, "mscale_all_dim": 0.5, "truncate": False})),
    ("mistral", "mistral", dict(LLAMA_LIKE, sliding_window=64)),
    # Ministral 3: YaRN, and queries scaled past its original context (32 here), which saekit keeps contexts to.
    ("ministral3 (yarn, llama 4 query scaling beyond the original context)", "ministral3",
     dict(LLAMA_LIKE, head_dim=8, rope_parameters={"rope_type": "yarn", "rope_theta": 100.0, "factor": 2.0, "original_max_position_embeddings": 32,
                                                   "beta_fast": 2.0, "beta_slow": 0.25, "mscale": 1.0, "mscale_all_dim": 1.0,
                                                   "llama_4_scaling_beta": 0.1})),
    ("ministral (sliding-window and full layers)", "ministral",
     dict(LLAMA_LIKE, head_dim=8, sliding_window=64, layer_types=["sliding_attention", "full_attention"])),
    ("qwen2 (q/k/v biases)", "qwen2", dict(LLAMA_LIKE, tie_word_embeddings=True)),
    ("qwen3 (q/k head norms, head_dim of its own)", "qwen3", dict(LLAMA_LIKE, head_dim=16, tie_word_embeddings=False)),
    ("olmo (weightless LayerNorms, clip_qkv)", "olmo", dict(LLAMA_LIKE, clip_qkv=0.5)),
    ("olmo2 (norms after attention and MLP, q/k norms over the projections)", "olmo2", dict(LLAMA_LIKE)),
    ("phi3 (fused qkv_proj and gate_up_proj, sliding window)", "phi3", dict(LLAMA_LIKE, sliding_window=64)),
    ("phi3 (three quarters of each head rotated, tied, as Phi-4-mini)", "phi3",
     dict(LLAMA_LIKE, tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75})),
    # LongRoPE (Phi-3-mini-128k, Phi-3.5-mini, Phi-4-mini): short factors per rotated pair, and
    # cos and sin scaled by sqrt(1 + ln(max / original) / ln(original)), here sqrt(1 + ln 8 / ln 64).
    ("phi3 (longrope, as Phi-3.5-mini)", "phi3",
     dict(LLAMA_LIKE, max_position_embeddings=512, original_max_position_embeddings=64,
          rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": [1.0, 1.3, 1.9, 2.8],
                           "long_factor": [1.5, 2.5, 4.0, 9.0]})),
    ("phi3 (longrope with three quarters of each head rotated, tied, as Phi-4-mini)", "phi3",
     dict(LLAMA_LIKE, tie_word_embeddings=True, max_position_embeddings=512, original_max_position_embeddings=64,
          rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
                           "short_factor": [1.0, 1.7, 3.1], "long_factor": [2.0, 3.0, 8.0]})),
    ("olmo3 (OLMo 2's block, sliding-window layers with a rotary of their own)", "olmo3",
     dict(LLAMA_LIKE, sliding_window=64, layer_types=["sliding_attention", "full_attention"],
          rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                           "full_attention": {"rope_type": "default", "rope_theta": 500.0}})),
    ("olmo3 (yarn on its full-attention layers, as OLMo-3-7B)", "olmo3",
     dict(LLAMA_LIKE, sliding_window=64, layer_types=["sliding_attention", "full_attention"],
          rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                           "full_attention": {"rope_type": "yarn", "rope_theta": 100.0, "factor": 4.0,
                                              "original_max_position_embeddings": 16, "beta_fast": 2.0, "beta_slow": 0.25}})),
    ("smollm3 (no rotary in its NoPE layers)", "smollm3", dict(LLAMA_LIKE, no_rope_layers=[1, 0])),
    # GLM and GLM-4: q/k/v biases, fused gate_up_proj, half of each head rotated in interleaved pairs; GLM-4's post norms.
    ("glm (interleaved rotary on half of each head, q/k/v biases)", "glm", dict(LLAMA_LIKE, head_dim=8)),
    ("glm4 (norms after attention and MLP)", "glm4", dict(LLAMA_LIKE, head_dim=8)),
    ("granite (multipliers on the embeddings, attention logits, block outputs and logits)", "granite",
     dict(LLAMA_LIKE, embedding_multiplier=3.0, attention_multiplier=0.3, residual_multiplier=0.4, logits_scaling=2.5)),
    ("stablelm (LayerNorms with biases, q/k/v biases, a quarter of each head rotated)", "stablelm", dict(LLAMA_LIKE, use_qkv_bias=True)),
    ("stablelm (parallel residual, attention and MLP reading one norm)", "stablelm", dict(LLAMA_LIKE, use_parallel_residual=True)),
    ("stablelm (qk_layernorm: a LayerNorm per head on q and k, as StableLM 2 12B)", "stablelm",
     dict(LLAMA_LIKE, use_parallel_residual=True, qk_layernorm=True)),
    ("cohere (parallel block, LayerNorms without biases, interleaved rotary, logit_scale)", "cohere", dict(LLAMA_LIKE, logit_scale=0.5)),
    ("cohere (use_qk_norm: a LayerNorm per head on q and k, as Command R+)", "cohere", dict(LLAMA_LIKE, logit_scale=0.5, use_qk_norm=True)),
    ("cohere2 (rotary only in its sliding-window layers)", "cohere2",
     dict(LLAMA_LIKE, logit_scale=0.5, sliding_window=64, layer_types=["sliding_attention", "full_attention"])),
    # Mixtures of experts: each model's routing, and its gradient through the router in the splice backward.
    ("mixtral (top-2 of 4 experts)", "mixtral", dict(LLAMA_LIKE, num_local_experts=4, num_experts_per_tok=2, intermediate_size=24)),
    ("qwen2_moe (shared expert behind a sigmoid gate, a dense layer)", "qwen2_moe",
     dict(LLAMA_LIKE, num_hidden_layers=3, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
          shared_expert_intermediate_size=20, mlp_only_layers=[1])),
    ("qwen3_moe (q/k head norms, top-3 of 6 renormalised)", "qwen3_moe",
     dict(LLAMA_LIKE, head_dim=16, num_experts=6, num_experts_per_tok=3, moe_intermediate_size=16, norm_topk_prob=True)),
    ("olmoe (q/k norms over the projections, top-2 of 4)", "olmoe", dict(LLAMA_LIKE, num_experts=4, num_experts_per_tok=2, intermediate_size=24)),
    ("olmoe (clip_qkv after the q/k norms)", "olmoe", dict(LLAMA_LIKE, num_experts=4, num_experts_per_tok=2, intermediate_size=24, clip_qkv=1.0)),
    ("granitemoe (fused experts, Granite's multipliers)", "granitemoe",
     dict(LLAMA_LIKE, num_local_experts=4, num_experts_per_tok=2, intermediate_size=24, embedding_multiplier=3.0,
          attention_multiplier=0.3, residual_multiplier=0.4, logits_scaling=2.5)),
    ("gemma", "gemma", dict(LLAMA_LIKE, head_dim=8)),
    ("gemma2 (soft caps, post norms)", "gemma2",
     dict(LLAMA_LIKE, head_dim=16, query_pre_attn_scalar=12, sliding_window=64, attn_logit_softcapping=2.0, final_logit_softcapping=3.0)),
    ("vaultgemma (Gemma 2's soft caps without its post norms)", "vaultgemma",
     dict(LLAMA_LIKE, head_dim=16, query_pre_attn_scalar=12, sliding_window=64, attn_logit_softcapping=2.0, final_logit_softcapping=3.0)),
    ("gemma3_text (q/k norms, a rotary base per layer kind, linear scaling on global layers)", "gemma3_text",
     dict(LLAMA_LIKE, head_dim=16, query_pre_attn_scalar=16, sliding_window=64, layer_types=["sliding_attention", "full_attention"],
          rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                           "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0, "factor": 8.0}})),
    ("granitemoehybrid (Granite 4.0 attention-only: its multipliers, shared MLP, no positions)", "granitemoehybrid",
     dict(LLAMA_LIKE, layer_types=["attention", "attention"], num_local_experts=0, shared_intermediate_size=48,
          position_embedding_type=None, mamba_n_heads=8, embedding_multiplier=3.0, attention_multiplier=0.3,
          residual_multiplier=0.4, logits_scaling=2.5)),
    ("granitemoehybrid (rotary, a GraniteMoE mixture beside the shared MLP)", "granitemoehybrid",
     dict(LLAMA_LIKE, layer_types=["attention", "attention"], num_local_experts=4, num_experts_per_tok=2, intermediate_size=16,
          mamba_n_heads=8, shared_intermediate_size=24, position_embedding_type="rope", embedding_multiplier=3.0, attention_multiplier=0.3,
          residual_multiplier=0.4, logits_scaling=2.5)),
    ("granitemoehybrid (Granite 4.0-H: Mamba-2 layers around attention, experts)", "granitemoehybrid",
     dict(LLAMA_LIKE, num_hidden_layers=3, layer_types=["mamba", "attention", "mamba"], num_local_experts=4, num_experts_per_tok=2,
          intermediate_size=16, shared_intermediate_size=24, position_embedding_type=None, mamba_n_heads=8, mamba_n_groups=2,
          mamba_d_state=6, mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=4, embedding_multiplier=3.0, attention_multiplier=0.3,
          residual_multiplier=0.4, logits_scaling=2.5)),
    ("falcon_h1 (Mamba-2 beside attention in every layer, muP multipliers, no Mamba norm)", "falcon_h1", FALCON_H1),
    ("falcon_h1 (Mamba-2's RMSNorm per group before the gate)", "falcon_h1", dict(FALCON_H1, mamba_rms_norm=True, mamba_norm_before_gate=True)),
    ("falcon_h1 (Mamba-2's RMSNorm per group after the gate, tied)", "falcon_h1",
     dict(FALCON_H1, mamba_rms_norm=True, mamba_norm_before_gate=False, tie_word_embeddings=True)),
    ("lfm2 (short convolutions and attention with q/k norms)", "lfm2",
     dict(SMALL, num_hidden_layers=3, num_key_value_heads=2, full_attn_idxs=[1], block_ff_dim=96, block_multiple_of=16, conv_L_cache=3,
          rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    ("lfm2_moe (sigmoid-routed experts chosen with a bias, after a dense layer)", "lfm2_moe",
     dict(SMALL, num_hidden_layers=3, num_key_value_heads=2, layer_types=["conv", "full_attention", "conv"], intermediate_size=48,
          moe_intermediate_size=16, num_experts=4, num_experts_per_tok=2, num_dense_layers=1, routed_scaling_factor=1.5,
          rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    ("qwen3_5_text (Gated DeltaNet layers and gated attention)", "qwen3_5_text", QWEN35),
    ("qwen3_5 (the language model of a vision-language checkpoint)", "qwen3_5",
     dict(text_config=dict(QWEN35, tie_word_embeddings=True), vision_config=VISION), dict(model_class="Qwen3_5ForConditionalGeneration")),
    # Qwen-VL's language models, on text: M-RoPE turns every section by one position there.
    ("qwen2_5_vl (the language model of a vision-language checkpoint)", "qwen2_5_vl",
     dict(text_config=dict(LLAMA_LIKE, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]}),
          vision_config=VISION), dict(model_class="Qwen2_5_VLForConditionalGeneration")),
    ("qwen3_vl (q/k head norms, interleaved M-RoPE)", "qwen3_vl",
     dict(text_config=dict(LLAMA_LIKE, head_dim=8, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2],
                                                                      "mrope_interleaved": True}),
          vision_config=VISION), dict(model_class="Qwen3VLForConditionalGeneration")),
    # How checkpoints on the hub come: weights in bfloat16, and sharded behind model.safetensors.index.json.
    ("llama, saved in bfloat16 and sharded", "llama", dict(LLAMA_LIKE, tie_word_embeddings=False),
     dict(dtype=torch.bfloat16, max_shard_size="40KB")),
    ("gpt_neox, saved in float16 and sharded", "gpt_neox", dict(SMALL, use_parallel_residual=True),
     dict(dtype=torch.float16, max_shard_size="40KB")),
]


def randomize(model, gen):
    """Weights at a size where mistakes show: matrices ~ N(0, 0.2^2), norm weights near 1 (or
    near 0 where the model adds 1), biases (LFM2-MoE's expert_bias buffer too) ~ N(0, 0.1^2).
    transformers' own init (std 0.02) would leave every block close to the identity."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if p.dim() >= 2:
                p.copy_(noise * 0.2)
            elif name.endswith("bias"):
                p.copy_(noise * 0.1)
            else:
                p.copy_(p.double() + noise * 0.1)
        # LFM2-MoE's expert_bias is a buffer (learned outside the optimizer): random too, so that it moves the choice of experts.
        for name, b in model.named_buffers():
            if name.endswith("expert_bias"):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=torch.float64) * 0.1)


def decoder_layers(model):
    base = model.base_model
    base = getattr(base, "language_model", base)  # a vision-language model's text decoder
    for attr in ("layers", "h"):
        if hasattr(base, attr):
            return getattr(base, attr)
    raise RuntimeError(f"no decoder layers found on {type(base).__name__}")


# The modules whose outputs a block adds to the residual stream (TransformerLens' hook_attn_out
# and hook_mlp_out): where norms follow attention and MLP (Gemma 2 and 3, OLMo 2 and 3, GLM-4) those
# norms' outputs, else the attention's and the MLP's own.
POST_NORMED = {"gemma2", "gemma3_text", "olmo2", "olmo3", "glm4"}
ATTENTION = {"gpt2": "attn", "gpt_neo": "attn", "gpt_neox": "attention", "gptj": "attn"}
# The attention's output projection, whose input is TransformerLens' attn.hook_z (the heads' outputs, concatenated).
OUTPUT_PROJECTION = {"gpt2": "attn.c_proj", "gpt_neo": "attn.attention.out_proj", "gpt_neox": "attention.dense", "gptj": "attn.out_proj",
                     "phi": "self_attn.dense", "lfm2": "self_attn.out_proj", "lfm2_moe": "self_attn.out_proj"}


def residual_multiplier(model):
    """Granite scales each block's attention and MLP outputs by this before adding them to the
    stream (hook_attn_out and hook_mlp_out are what is added); 1 elsewhere."""
    return model.config.residual_multiplier if model.config.model_type in ("granite", "granitemoe", "granitemoehybrid") else 1.0


def contribution_modules(model_type):
    if model_type == "falcon_h1":
        return "self_attn", "feed_forward"
    if model_type in ("lfm2", "lfm2_moe"):
        return "self_attn", "feed_forward"
    if model_type == "glm4":
        return "post_self_attn_layernorm", "post_mlp_layernorm"
    if model_type in POST_NORMED:
        return "post_attention_layernorm", "post_feedforward_layernorm"
    # Granite 4.0's MLP output is shared_mlp's, plus block_sparse_moe's where it has experts (MIXED_WITH).
    if model_type == "granitemoehybrid":
        return "self_attn", "shared_mlp"
    return ATTENTION.get(model_type, "self_attn"), "block_sparse_moe" if model_type == "granitemoe" else "mlp"


# A module whose output adds to the MLP module's (contribution_modules) in the same sum.
MIXED_WITH = {"granitemoehybrid": "block_sparse_moe"}


def reference(model, tokens, model_type):
    """The logits, the residual stream into each decoder layer and out of the last, and, layer
    by layer, the attention's and the MLP's outputs as added to the stream and the heads'
    outputs (the output projection's input), in float64."""
    stream, attn_out, mlp_out, z, mixed = [], [], [], [], []
    layers = decoder_layers(model)
    first = lambda output: output[0] if isinstance(output, tuple) else output
    handles = [layer.register_forward_pre_hook(
        lambda _m, args, kwargs: stream.append((args[0] if args else kwargs["hidden_states"])[0].clone()), with_kwargs=True)
        for layer in layers]
    handles.append(layers[-1].register_forward_hook(lambda _m, _args, output: stream.append(first(output)[0].clone())))
    attn_name, mlp_name = contribution_modules(model_type)
    # Falcon-H1 adds Mamba-2 and attention, each times a multiplier the layer applies: hook_attn_out
    # is what they add to the stream, the MLP's input stream less the layer's.
    parallel = model_type == "falcon_h1"
    mlp_in = []
    for layer in layers:
        if parallel:
            handles.append(layer.pre_ff_layernorm.register_forward_pre_hook(lambda _m, args: mlp_in.append(args[0][0].clone())))
        # Qwen3.5's Gated DeltaNets and LFM2's short convolutions in attention's place, without heads (no attn.hook_z).
        mixer = headless_mixer(layer)
        linear = mixer is not None
        if not parallel:
            handles.append(getattr(layer, mixer or attn_name).register_forward_hook(
                lambda _m, _a, output: attn_out.append(first(output)[0].clone())))
        handles.append(getattr(layer, mlp_name).register_forward_hook(lambda _m, _a, output: mlp_out.append(first(output)[0].clone())))
        extra = getattr(layer, MIXED_WITH.get(model_type, ""), None)
        if extra is not None:
            handles.append(extra.register_forward_hook(lambda _m, _a, output: mixed.append(first(output)[0].clone())))
        if not linear:
            handles.append(layer.get_submodule(OUTPUT_PROJECTION.get(model_type, "self_attn.o_proj")).register_forward_pre_hook(
                lambda _m, args: z.append(args[0][0].clone())))
    try:
        with torch.no_grad():
            logits = model(torch.tensor([tokens])).logits[0]
    finally:
        for h in handles:
            h.remove()
    scale = residual_multiplier(model)
    if parallel:
        attn_out = [after - before for after, before in zip(mlp_in, stream)]
    if mixed:
        mlp_out = [a + b for a, b in zip(mlp_out, mixed)]
    return logits, stream, [a * scale for a in attn_out + mlp_out] + z


# The end-to-end loss (sparsify's "ce" / "kl") with an activation spliced in at a hook, and its
# gradient in that activation, from saekit's SpliceBackward (the hand-written backward that
# end-to-end SAE training runs): the clean activation plus the noise given is what is spliced.
SPLICE_JS = """
const [root, folder, argsJson] = process.argv.slice(1);
const { loadModel } = await import(root + "/dist/lm/load.js");
const { SpliceBackward } = await import(root + "/dist/lm/splice-backward.js");
const { model } = await loadModel(folder);
const a = JSON.parse(argsJson);
const tokens = Int32Array.from(a.tokens);
const sb = new SpliceBackward(model, a.hook, a.loss);
const clean = sb.clean(tokens, 1, tokens.length);
const xHat = Float32Array.from(clean.x, (v, i) => v + a.noise[i]);
const r = sb.lossAndGrad(tokens, 1, tokens.length, clean, xHat);
console.log(JSON.stringify({ loss: r.loss, xHat: Array.from(xHat), grad: Array.from(r.grad) }));
"""

# The logits of a sequence fed through the KV cache as generation feeds it: the first half at
# once, then one token at a time (saekit generate's path), for the positions from the first
# half's last on.
CACHED_JS = """
const [root, folder, tokensJson] = process.argv.slice(1);
const { loadModel } = await import(root + "/dist/lm/load.js");
const { model } = await loadModel(folder);
const tokens = JSON.parse(tokensJson);
const half = tokens.length >> 1;
const cache = model.newCache(1, tokens.length);
const V = model.cfg.vocabSize;
const rows = [];
const first = model.forward(Int32Array.from(tokens.slice(0, half)), 1, half, { cache }).logits;
rows.push(Array.from(first.subarray((half - 1) * V)));
for (let t = half; t < tokens.length; t++) rows.push(Array.from(model.forward(Int32Array.of(tokens[t]), 1, 1, { cache }).logits));
console.log(JSON.stringify(rows));
"""

# Where the gradient is checked: a residual stream, an MLP's output, a (later) attention's output; CE and KL.
SPLICES = [("blocks.0.hook_resid_post", "ce"), ("blocks.0.hook_mlp_out", "kl"), ("blocks.1.hook_attn_out", "ce")]


def splice_module(model, model_type, hook):
    """The module whose output is `hook`'s activation, as a forward hook replaces it."""
    layer, kind = re.match(r"blocks\.(\d+)\.hook_(\w+)", hook).groups()
    block = decoder_layers(model)[int(layer)]
    if kind == "resid_post":
        return block
    attn, mlp = contribution_modules(model_type)
    return getattr(block, (headless_mixer(block) or attn) if kind == "attn_out" else mlp)


def headless_mixer(layer):
    """The token mixer of a layer without attention heads, by name: Qwen3.5's Gated DeltaNet
    (linear_attn), LFM2's short convolution (conv), Granite 4.0-H's Mamba-2 (mamba); None in a
    layer with attention (Falcon-H1's run Mamba-2 beside it)."""
    if getattr(layer, "self_attn", None) is not None:
        return None
    return next((name for name in ("linear_attn", "conv", "mamba") if getattr(layer, name, None) is not None), None)


def autograd_splice(model, model_type, tokens, hook, loss, x_hat):
    """The loss with x_hat [T, d] in place of `hook`'s activation, and its gradient, by autograd
    through transformers' forward: CE over the positions that predict a next token, or
    KL(clean || spliced) over every position."""
    x_hat = x_hat.clone().requires_grad_(True)
    ids = torch.tensor([tokens])
    with torch.no_grad():
        clean = model(ids).logits[0]

    # A block output's activation is what is added to the stream: Granite's module output times its multiplier.
    value_in = x_hat if hook.endswith("resid_post") else x_hat / residual_multiplier(model)

    def swap(_module, _args, output):
        return (value_in[None], *output[1:]) if isinstance(output, tuple) else value_in[None]
    handles = [splice_module(model, model_type, hook).register_forward_hook(swap)]
    # Falcon-H1: the spliced value stands for the sum of Mamba-2's output (times its multiplier) and the attention's, which gives 0.
    if model_type == "falcon_h1" and hook.endswith("attn_out"):
        block = decoder_layers(model)[int(hook.split(".")[1])]
        handles[0].remove()
        mamba_value = x_hat[None] / model.config.ssm_out_multiplier
        handles = [block.mamba.register_forward_hook(lambda _m, _a, _output: mamba_value),
                   block.self_attn.register_forward_hook(lambda _m, _a, output: (torch.zeros_like(output[0]), *output[1:]))]
    # Where the MLP's output is two modules' sum, the spliced value stands for the whole: the other gives 0.
    extra = getattr(decoder_layers(model)[int(hook.split(".")[1])], MIXED_WITH.get(model_type, ""), None)
    if hook.endswith("mlp_out") and extra is not None:
        handles.append(extra.register_forward_hook(lambda _m, _a, output: torch.zeros_like(output)))
    try:
        logits = model(ids).logits[0]
    finally:
        for h in handles:
            h.remove()
    if loss == "ce":
        value = F.cross_entropy(logits[:-1], ids[0, 1:])
    else:
        value = F.kl_div(F.log_softmax(logits, -1), F.log_softmax(clean, -1), log_target=True, reduction="none").sum(-1).mean()
    value.backward()
    return value.item(), x_hat.grad


def check_splice_gradients(folder, model, model_type, tokens, gen):
    """saekit's spliced loss and its gradient against autograd's, at each of SPLICES: the largest
    relative differences over the losses and the gradients."""
    d = model.config.get_text_config().hidden_size
    worst_loss = worst_grad = 0.0
    for hook, loss in SPLICES:
        noise = (torch.randn(len(tokens), d, generator=gen, dtype=torch.float64) * 0.3).tolist()
        r = json.loads(run_js(SPLICE_JS, folder, json.dumps({"tokens": tokens, "hook": hook, "loss": loss, "noise": [v for row in noise for v in row]})))
        x_hat = torch.tensor(r["xHat"], dtype=torch.float64).view(len(tokens), d)
        value, grad = autograd_splice(model, model_type, tokens, hook, loss, x_hat)
        worst_loss = max(worst_loss, abs(r["loss"] - value) / abs(value))
        got = torch.tensor(r["grad"], dtype=torch.float64).view_as(grad)
        worst_grad = max(worst_grad, ((got - grad).abs().max() / grad.abs().max()).item())
    return worst_loss, worst_grad


def main():
    # transformers initialises some weights (Qwen3.5's A_log, say) from the global generator before randomize
    # adds its noise: seeded too, so that a run is repeatable.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model_type, fields, *saving) in enumerate(MODELS):
            # Arguments pick the models whose names hold any of them (none: all).
            if sys.argv[1:] and not any(word in name for word in sys.argv[1:]):
                continue
            save = saving[0] if saving else {}
            # Vision-language models are no AutoModelForCausalLM: their own class builds and loads them.
            auto = getattr(transformers, save["model_class"]) if "model_class" in save else AutoModelForCausalLM
            config = AutoConfig.for_model(model_type, **fields)
            config._attn_implementation = "eager"
            model = (auto(config) if "model_class" in save else auto.from_config(config, attn_implementation="eager")).float().eval()
            randomize(model, gen)
            folder = f"{tmp}/model{i}"
            model.to(save.get("dtype", torch.float32)).save_pretrained(folder, max_shard_size=save.get("max_shard_size", "5GB"))
            # The reference is what transformers loads from the folder saekit reads, run in float64
            # (loaded, not cast: a cast would round the rotary frequencies to the saved dtype too).
            model = auto.from_pretrained(folder, dtype=torch.float64, attn_implementation="eager").eval()
            # The experts' grouped matrix products take no float64: their plain loop (eager) does.
            model.config._experts_implementation = "eager"
            tokens = [int(t) for t in torch.randint(0, model.config.get_text_config().vocab_size, (24,), generator=gen)]
            want, stream, parts_want = reference(model, tokens, model_type)
            try:
                ok, summary = compare(folder, tokens, want, stream)
                # The blocks' attention and MLP outputs and the heads' outputs, which attn_out, mlp_out and attention SAEs read.
                layers = len(stream) - 1
                headed = [i for i, layer in enumerate(decoder_layers(model)) if headless_mixer(layer) is None]
                names = [f"blocks.{i}.{hook}" for hook in ("hook_attn_out", "hook_mlp_out") for i in range(layers)]
                names += [f"blocks.{i}.attn.hook_z" for i in headed]
                hooks = saekit_hooks(folder, tokens, names)
                parts = worst_relative([hooks[n] for n in names], parts_want)
                ok = ok and parts <= TOLERANCE
                summary += f"; hook_attn_out, hook_mlp_out and attn.hook_z: {parts:.2e}"
                # Generation's path, the KV cache, against the full forward's logits.
                cached = json.loads(run_js(CACHED_JS, folder, json.dumps(tokens)))
                half = len(tokens) // 2
                ref = want[half - 1:]
                cache_diff = ((torch.tensor(cached, dtype=torch.float64) - ref).abs().max() / ref.abs().max()).item()
                ok = ok and cache_diff <= TOLERANCE
                summary += f"; through the KV cache {cache_diff:.1e}"
                # The splice backward (end-to-end training) against autograd.
                loss_diff, grad_diff = check_splice_gradients(folder, model, model_type, tokens, gen)
                ok = ok and loss_diff <= TOLERANCE and grad_diff <= TOLERANCE
                summary += f"; spliced losses {loss_diff:.1e}, their gradients {grad_diff:.1e}"
            except Exception as e:  # a load or run failure is a failed check, reported with the others
                ok, summary = False, f"saekit failed: {str(getattr(e, 'stderr', '') or e).strip().splitlines()[-1:]}"
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {summary}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
