/**
 * The language-model forward pass on tiny random GPT-NeoX, GPT-2 and Llama checkpoints:
 * logits against an independent float64 re-implementation of Hugging Face's modeling code,
 * and the structural properties every hook-based analysis relies on.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RotaryStyle } from "../../src/core/kernels.js";
import { Rng } from "../../src/core/rng.js";
import { SafetensorsFile, writeSafetensors } from "../../src/core/safetensors.js";
import { Tensor } from "../../src/core/tensor.js";
import { TorchCheckpoint } from "../../src/core/torch-checkpoint.js";
import { type LmConfig, PRESETS, configFromHf, validateLmConfig } from "../../src/lm/config.js";
import { parseJson } from "../../src/core/json.js";
import { hfLanguageModel } from "../../src/lm/hf-model.js";
import { loadModel } from "../../src/lm/load.js";
import { openHfWeights } from "../../src/lm/weights.js";
import { hookNamesOf, LanguageModel, partsForHooks } from "../../src/lm/model.js";
import { randomModel } from "../../src/lm/random.js";
import { rotaryInverseFrequencies } from "../../src/lm/rope.js";
import { maxAbs, maxAbsDiff, tempDir } from "../helpers.js";
import {
  writeTinyGemma, writeTinyGemma3Multimodal, writeTinyGpt2, writeTinyGptJ, writeTinyGptNeo, writeTinyLlama, writeTinyMultimodal, writeTinyNeox, writeTinyPhi,
  writeTinyLfm2, writeTinyQwen35,
} from "./fixtures.js";
import { hfReferenceLogits } from "./hf-reference.js";

const dir = tempDir();

function randomTokens(seed: number, n: number, vocab: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(vocab));
}

/** max |a - b| / max |b| over two logit tables. */
function relativeError(a: Float32Array, b: Float64Array[]): number {
  let diff = 0;
  let scale = 0;
  b.forEach((row, t) => row.forEach((v, j) => {
    diff = Math.max(diff, Math.abs(a[t * row.length + j]! - v));
    scale = Math.max(scale, Math.abs(v));
  }));
  return diff / scale;
}

/** A tiny Ministral 3's config keys: YaRN from an original context of 16 positions, with the llama 4 query scaling past it. */
const MINISTRAL3 = {
  model_type: "ministral3", architectures: ["Ministral3ForCausalLM"], rope_theta: undefined, sliding_window: null,
  rope_parameters: {
    rope_type: "yarn", rope_theta: 100, factor: 4, original_max_position_embeddings: 16, beta_fast: 2, beta_slow: 0.25,
    mscale: 1, mscale_all_dim: 1, llama_4_scaling_beta: 0.1,
  },
};

const families: Array<[string, (d: string) => string]> = [
  ["gpt_neox (parallel residual)", (d) => writeTinyNeox(d, { parallelResidual: true })],
  ["gpt_neox (sequential residual)", (d) => writeTinyNeox(d, { parallelResidual: false, seed: 5, rotaryPct: 1 })],
  ["gpt2", (d) => writeTinyGpt2(d)],
  ["gpt_neo (global and local layers, unscaled attention)", (d) => writeTinyGptNeo(d)],
  ["gptj (one LayerNorm, interleaved rotary on part of each head, biased unembedding)", (d) => writeTinyGptJ(d, { extras: true })],
  ["gptj (every dimension rotated, n_inner)", (d) => writeTinyGptJ(d, { seed: 34, rotaryDim: 8, mlp: 40 })],
  ["phi (one LayerNorm, q/k/v biases, half of each head rotated, biased unembedding)", (d) => writeTinyPhi(d)],
  ["phi (grouped-query, 0.4 rotated: phi-2's share)", (d) => writeTinyPhi(d, { seed: 35, d: 40, heads: 4, kvHeads: 2, partialRotary: 0.4 })],
  ["llama (grouped-query attention)", (d) => writeTinyLlama(d)],
  ["llama (tied embeddings)", (d) => writeTinyLlama(d, { tied: true, kvHeads: 4, seed: 9 })],
  // Config variants: transformers 5 writes rope settings as one rope_parameters object.
  ["gpt_neox (transformers 5 rope_parameters, gelu_new)", (d) => writeTinyNeox(d, {
    seed: 11, config: { rotary_pct: undefined, rotary_emb_base: undefined, hidden_act: "gelu_new",
      rope_parameters: { rope_type: "default", rope_theta: 500, partial_rotary_factor: 0.5 } } })],
  ["gpt_neox (linear rope scaling)", (d) => writeTinyNeox(d, { seed: 12, config: { rope_scaling: { type: "linear", factor: 4 } } })],
  ["gpt2 (scale_attn_by_inverse_layer_idx, relu, n_inner)", (d) => writeTinyGpt2(d, {
    seed: 13, layers: 3, mlp: 40, config: { scale_attn_by_inverse_layer_idx: true, activation_function: "relu" } })],
  ["gpt2 (scale_attn_weights false)", (d) => writeTinyGpt2(d, { seed: 14, config: { scale_attn_weights: false } })],
  // Wavelengths 6.3, 20, 63, 199 against bands at 8 and 64: kept, blended, blended, slowed.
  ["llama (llama3 rope scaling)", (d) => writeTinyLlama(d, { seed: 15, heads: 4, d: 32, config: { rope_theta: 100,
    rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 8, original_max_position_embeddings: 64 } } })],
  // YaRN over pairs turning at wavelengths from 6.3 to 200 against an original context of 16:
  // the ramp between beta_fast 2 and beta_slow 0.25 blends pairs 1 and 2, keeps 0, slows 3.
  ["llama (yarn rope scaling, attention factor from the factor)", (d) => writeTinyLlama(d, { seed: 36, config: { rope_theta: 100,
    rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 16, beta_fast: 2, beta_slow: 0.25 } } })],
  ["llama (yarn, transformers 5 rope_parameters, truncate false, attention factor given)", (d) => writeTinyLlama(d, { seed: 37, config: {
    rope_theta: undefined, rope_parameters: { rope_type: "yarn", rope_theta: 100, factor: 3, original_max_position_embeddings: 16,
      beta_fast: 2, beta_slow: 0.25, truncate: false, attention_factor: 1.3 } } })],
  ["olmo3 (yarn on the full-attention layers, as OLMo-3-7B)", (d) => writeTinyLlama(d, { seed: 38, olmo2: true, olmo3: true, config: {
    rope_parameters: { full_attention: { rope_type: "yarn", rope_theta: 100, factor: 4, original_max_position_embeddings: 16, beta_fast: 2, beta_slow: 0.25 },
      sliding_attention: { rope_type: "default", rope_theta: 10000 } } } })],
  // Mixtures of experts: 4 experts, 2 per token, against the same routing written after each model's code.
  ["mixtral (top-2 of 4 experts, renormalised)", (d) => writeTinyLlama(d, { seed: 39, moe: { type: "mixtral", experts: 4, topK: 2, dExpert: 24 } })],
  ["qwen2_moe (a shared expert behind a sigmoid gate, q/k/v biases, a dense layer)", (d) => writeTinyLlama(d, { seed: 40, layers: 3,
    moe: { type: "qwen2_moe", experts: 4, topK: 2, dExpert: 16, dShared: 20, mlpOnly: [1] } })],
  ["qwen3_moe (q/k head norms, top-3 of 6 renormalised)", (d) => writeTinyLlama(d, { seed: 41, moe: { type: "qwen3_moe", experts: 6, topK: 3, dExpert: 16, norm: true } })],
  ["granitemoe (fused experts, Granite's multipliers)", (d) => writeTinyLlama(d, { seed: 45, moe: { type: "granitemoe", experts: 4, topK: 2, dExpert: 24 },
    config: { embedding_multiplier: 3, attention_multiplier: 0.3, residual_multiplier: 0.4, logits_scaling: 2.5 } })],
  ["olmoe (q/k norms over the projections, top-2 of 4 not renormalised)", (d) => writeTinyLlama(d, { seed: 42, moe: { type: "olmoe", experts: 4, topK: 2, dExpert: 24 } })],
  ["olmoe (q/k/v clamped by clip_qkv after the q/k norms)", (d) => writeTinyLlama(d, { seed: 43, moe: { type: "olmoe", experts: 4, topK: 2, dExpert: 24, clipQkv: 0.9 } })],
  ["llama (attention_bias and mlp_bias)", (d) => writeTinyLlama(d, { seed: 17, allBiases: true, config: { attention_bias: true, mlp_bias: true } })],
  ["qwen2 (q/k/v biases, head_dim != d / heads)", (d) => writeTinyLlama(d, { seed: 16, headDim: 12, qkvBias: true,
    config: { model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], use_sliding_window: false, sliding_window: 4 } })],
  ["qwen3 (per-head q/k RMSNorms, head_dim != d / heads)", (d) => writeTinyLlama(d, { seed: 18, headDim: 12, qkNorm: true, tied: true })],
  ["olmo (LayerNorms without weights, tied)", (d) => writeTinyLlama(d, { seed: 22, olmo: {}, tied: true })],
  ["olmo (q/k/v clamped by clip_qkv)", (d) => writeTinyLlama(d, { seed: 23, olmo: { clipQkv: 0.8 } })],
  ["qwen3_5_text (Gated DeltaNet layers around a gated attention layer, RMSNorms of 1 + w)", (d) => writeTinyQwen35(d, { seed: 48 })],
  ["qwen3_5_text (tied, two attention layers after two DeltaNets)", (d) => writeTinyQwen35(d, { seed: 49, tied: true,
    layers: ["linear_attention", "linear_attention", "full_attention", "full_attention"] })],
  ["lfm2 (short convolutions around an attention layer with q/k norms, its own tensor names)", (d) => writeTinyLfm2(d, { seed: 53 })],
  ["lfm2_moe (sigmoid-routed experts chosen with a bias, after a dense layer)", (d) => writeTinyLfm2(d, { seed: 54,
    moe: { experts: 4, topK: 2, dExpert: 16, dense: 1, scale: 1.5 } })],
  ["granitemoehybrid (Granite 4.0 attention-only: its multipliers, shared_mlp, no positions)", (d) => writeTinyLlama(d, { seed: 55, granite4: {} })],
  ["granitemoehybrid (rotary, a GraniteMoE mixture beside the shared MLP)", (d) => writeTinyLlama(d, { seed: 56,
    granite4: { rope: true, experts: { count: 4, topK: 2, width: 16 } } })],
  ["granitemoehybrid (Granite 4.0-H: Mamba-2 layers around attention)", (d) => writeTinyLlama(d, { seed: 57, layers: 3, granite4: { mamba: [0, 2] } })],
  ["falcon_h1 (Mamba-2 beside attention in every layer, muP multipliers, no Mamba norm)", (d) => writeTinyLlama(d, { seed: 59, falconH1: {} })],
  ["falcon_h1 (Mamba-2's RMSNorm per group before the gate)", (d) => writeTinyLlama(d, { seed: 60, falconH1: { norm: "before-gate" } })],
  ["falcon_h1 (Mamba-2's RMSNorm per group after the gate, tied)", (d) => writeTinyLlama(d, { seed: 61, falconH1: { norm: "after-gate" }, tied: true })],
  ["cohere (parallel block on one LayerNorm without a bias, interleaved rotary, logit_scale)", (d) => writeTinyLlama(d, { seed: 46, cohere: {} })],
  ["cohere2 (rotary only in the sliding-window layers)", (d) => writeTinyLlama(d, { seed: 47, cohere: { v2: true } })],
  ["cohere (use_qk_norm: a LayerNorm per head on q and k, as Command R+)", (d) => writeTinyLlama(d, { seed: 64, cohere: { qkNorm: true } })],
  ["olmo3 (OLMo 2's block, its sliding-window layers rotating at a base of their own)", (d) => writeTinyLlama(d, { seed: 28, olmo2: true, olmo3: true })],
  ["ministral (sliding-window and full layers, within the window)", (d) => writeTinyLlama(d, { seed: 30, config: {
    model_type: "ministral", architectures: ["MinistralForCausalLM"], sliding_window: 64, layer_types: ["sliding_attention", "full_attention"] } })],
  // Ministral 3: YaRN (attention factor from its mscales), queries scaled past the original 16 positions (so contexts stop there).
  ["ministral3 (yarn, within its original context)", (d) => writeTinyLlama(d, { seed: 46, config: MINISTRAL3 })],
  ["glm (q/k/v biases, fused gate_up_proj, half of each head rotated in interleaved pairs)", (d) => writeTinyLlama(d, { seed: 48, glm: {} })],
  ["glm4 (GLM's block with norms after attention and MLP, tied)", (d) => writeTinyLlama(d, { seed: 49, glm: { v4: true }, tied: true })],
  ["granite (multipliers on the embeddings, attention logits, block outputs and logits)", (d) => writeTinyLlama(d, { seed: 31, config: {
    model_type: "granite", architectures: ["GraniteForCausalLM"], embedding_multiplier: 3, attention_multiplier: 0.3, residual_multiplier: 0.4, logits_scaling: 2.5 } })],
  ["stablelm (LayerNorms with biases, q/k/v biases, a quarter of each head rotated)", (d) => writeTinyLlama(d, { seed: 32, stablelm: {} })],
  ["stablelm (parallel residual, attention and MLP reading one norm)", (d) => writeTinyLlama(d, { seed: 33, stablelm: { parallel: true } })],
  ["stablelm (qk_layernorm: a LayerNorm per head on q and k, as StableLM 2 12B)", (d) => writeTinyLlama(d, { seed: 63, stablelm: { parallel: true, qkLayernorm: true } })],
  ["smollm3 (a layer without rotary positions)", (d) => writeTinyLlama(d, { seed: 29, smollm3: { noRope: [1] } })],
  ["phi3 (fused qkv_proj and gate_up_proj)", (d) => writeTinyLlama(d, { seed: 24, phi3: {} })],
  ["phi3 (three quarters of each head rotated, tied: Phi-4-mini)", (d) => writeTinyLlama(d, { seed: 25, phi3: { partialRotary: 0.75 }, tied: true })],
  // LongRoPE: short factors per rotated pair, cos and sin scaled by sqrt(1 + ln 4 / ln 16); 13 tokens within the original 16.
  ["phi3 (longrope: Phi-3.5-mini)", (d) => writeTinyLlama(d, { seed: 26, phi3: { longrope: [1, 1.4, 2.2, 3.5] } })],
  ["phi3 (longrope, three quarters rotated)", (d) => writeTinyLlama(d, { seed: 27, phi3: { partialRotary: 0.75, longrope: [1, 2, 3] } })],
  ["olmo2 (norms after attention and MLP only, q/k norms over the projections, head_dim != d / heads)", (d) => writeTinyLlama(d, { seed: 19, headDim: 12, olmo2: true })],
  ["gemma (GeGLU, (1 + w) norms, scaled embeddings, head_dim != d / heads)", (d) => writeTinyGemma(d, { headDim: 12 })],
  ["gemma2 (post norms, soft caps, query_pre_attn_scalar)", (d) => writeTinyGemma(d, { gemma2: true, seed: 6 })],
  ["gemma3_text (q/k norms, local and global rotary bases, no soft caps)", (d) => writeTinyGemma(d, { gemma3: true, seed: 7 })],
  ["vaultgemma (Gemma 2 without the norms after attention and MLP)", (d) => writeTinyGemma(d, { vault: true, seed: 9 })],
  ["gemma3_text (transformers 5: rope_parameters per layer kind, linear scaling on global layers)", (d) => writeTinyGemma(d, { gemma3: true, seed: 8,
    config: { rope_theta: undefined, rope_local_base_freq: undefined, rope_scaling: undefined, rope_parameters: {
      full_attention: { rope_type: "linear", rope_theta: 50, factor: 4 }, sliding_attention: { rope_type: "default", rope_theta: 300 } } } })],
];

describe("forward pass against Hugging Face's modeling code", () => {
  for (const [label, write] of families) {
    it(`${label}: logits match to 1e-5 relative`, async () => {
      const path = write(join(dir, label.replace(/\W+/g, "-")));
      const { model } = await loadModel(path);
      const tokens = randomTokens(1, 13, model.cfg.vocabSize);
      const logits = model.forward(tokens, 1, 13).logits!;
      expect(relativeError(logits, hfReferenceLogits(path, [...tokens]))).toBeLessThan(1e-5);
    });
  }
});

describe("OLMoE's clip_qkv", () => {
  it("clamps q, k and v after the q/k norms: Hugging Face's order agrees, the clamp bites, OLMo's order (before the norms) differs", async () => {
    const path = writeTinyLlama(join(dir, "olmoe-clip-order"), { seed: 43, moe: { type: "olmoe", experts: 4, topK: 2, dExpert: 24, clipQkv: 0.9 } });
    const { model } = await loadModel(path);
    expect(model.cfg).toMatchObject({ clipQkv: 0.9, clipQkvAfterNorm: true });
    const tokens = randomTokens(1, 13, model.cfg.vocabSize);
    const reference = hfReferenceLogits(path, [...tokens]);
    const logits = (cfg: LmConfig) => new LanguageModel(cfg, model.weights).forward(tokens, 1, 13).logits!;
    expect(relativeError(logits(model.cfg), reference)).toBeLessThan(1e-5);
    const { clipQkv: _, clipQkvAfterNorm: __, ...unclipped } = model.cfg;
    expect(relativeError(logits(unclipped), reference)).toBeGreaterThan(1e-2);
    expect(relativeError(logits({ ...model.cfg, clipQkvAfterNorm: false }), reference)).toBeGreaterThan(1e-2);
  });
});

describe("structural properties", async () => {
  const neox = (await loadModel(writeTinyNeox(join(dir, "neox")))).model;
  const gpt2 = (await loadModel(writeTinyGpt2(join(dir, "gpt2")))).model;
  const gemma2 = (await loadModel(writeTinyGemma(join(dir, "gemma2"), { gemma2: true }))).model;
  // Qwen3.5: its Gated DeltaNets carry their state from token to token (the cache holds it).
  const qwen35 = (await loadModel(writeTinyQwen35(join(dir, "qwen35")))).model;
  // LFM2: its short convolutions carry their last inputs from token to token (the cache holds them).
  const lfm2 = (await loadModel(writeTinyLfm2(join(dir, "lfm2")))).model;
  // Granite 4.0-H: its Mamba-2 layers carry their convolution inputs and states (the cache holds them).
  const granite4h = (await loadModel(writeTinyLlama(join(dir, "granite4h"), { seed: 58, layers: 3, granite4: { mamba: [0, 2] } }))).model;
  // Falcon-H1: Mamba-2 beside attention in every layer (the cache holds the states and the keys and values).
  const falconH1 = (await loadModel(writeTinyLlama(join(dir, "falconh1"), { seed: 62, falconH1: { norm: "after-gate" } }))).model;
  const models: Array<[string, LanguageModel]> = [["gpt_neox", neox], ["gpt2", gpt2], ["gemma2", gemma2], ["qwen3_5_text", qwen35], ["lfm2", lfm2],
    ["granitemoehybrid", granite4h], ["falcon_h1", falconH1]];

  it("gemma2: final logits are soft-capped to (-3, 3) and the cap is reached", () => {
    const logits = gemma2.forward(randomTokens(4, 12, gemma2.cfg.vocabSize), 1, 12).logits!;
    const peak = Math.max(...logits.map(Math.abs));
    expect(peak).toBeLessThan(3);
    expect(peak).toBeGreaterThan(2.5);
  });

  for (const [name, model] of models) {
    it(`${name}: later tokens never change earlier outputs (causality)`, () => {
      const T = 12;
      const a = randomTokens(2, T, model.cfg.vocabSize);
      const b = a.slice();
      b[7] = (b[7]! + 1) % model.cfg.vocabSize;
      const la = model.forward(a, 1, T).logits!;
      const lb = model.forward(b, 1, T).logits!;
      const V = model.cfg.vocabSize;
      expect(Buffer.from(la.buffer, 0, 7 * V * 4).equals(Buffer.from(lb.buffer, 0, 7 * V * 4))).toBe(true);
      expect(la.subarray(7 * V).some((v, i) => v !== lb[7 * V + i])).toBe(true);
    });

    it(`${name}: a batch equals its rows run one by one`, () => {
      const B = 3, T = 10, V = model.cfg.vocabSize;
      const tokens = randomTokens(3, B * T, V);
      const batched = model.forward(tokens, B, T).logits!;
      for (let b = 0; b < B; b++) {
        const single = model.forward(tokens.subarray(b * T, (b + 1) * T), 1, T).logits!;
        let worst = 0;
        for (let i = 0; i < T * V; i++) worst = Math.max(worst, Math.abs(single[i]! - batched[b * T * V + i]!));
        expect(worst).toBeLessThan(1e-5);
      }
    });

    it(`${name}: decoding token by token with a key/value cache gives the full pass's logits`, () => {
      const B = 2, T = 10, V = model.cfg.vocabSize;
      const tokens = randomTokens(11, B * T, V);
      const full = model.forward(tokens, B, T).logits!;
      const cache = model.newCache(B, T);
      // A 3-token prompt, then one token at a time.
      const steps: Array<[number, number]> = [[0, 3], ...Array.from({ length: T - 3 }, (_, i) => [3 + i, 1] as [number, number])];
      for (const [t0, n] of steps) {
        const chunk = new Int32Array(B * n);
        for (let b = 0; b < B; b++) chunk.set(tokens.subarray(b * T + t0, b * T + t0 + n), b * n);
        const logits = model.forward(chunk, B, n, { cache }).logits!;
        for (let b = 0; b < B; b++) {
          for (let i = 0; i < n; i++) {
            const got = logits.subarray((b * n + i) * V, (b * n + i + 1) * V);
            const want = full.subarray((b * T + t0 + i) * V, (b * T + t0 + i + 1) * V);
            let worst = 0;
            for (let j = 0; j < V; j++) worst = Math.max(worst, Math.abs(got[j]! - want[j]!));
            expect(worst).toBeLessThan(1e-5);
          }
        }
      }
      expect(cache.length).toBe(T);
      expect(() => model.forward(tokens.subarray(0, B), B, 1, { cache })).toThrow(/cache holds 2 sequences of 10 positions/);
    });

    it(`${name}: stopping early after a hook gives the full run's activations there`, () => {
      const B = 2, T = 9;
      const tokens = randomTokens(4, B * T, model.cfg.vocabSize);
      for (const hook of ["hook_embed", "blocks.0.hook_attn_out", "blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"]) {
        let full: Float32Array | null = null;
        let early: Float32Array | null = null;
        model.forward(tokens, B, T, { hooks: { [hook]: (a) => { full = a.slice(); } } });
        const r = model.forward(tokens, B, T, { hooks: { [hook]: (a) => { early = a.slice(); } }, stopAt: hook });
        expect(r.stopped).toBe(true);
        expect(r.logits).toBeUndefined();
        expect(early).toEqual(full);
        expect(model.activationAt(tokens, B, T, hook).slice()).toEqual(full);
      }
    });

    it(`${name}: splicing the identity in at a hook reproduces the clean loss exactly`, () => {
      const B = 2, T = 11;
      const tokens = randomTokens(5, B * T, model.cfg.vocabSize);
      const clean = model.forward(tokens, B, T, { output: "final" }).final!;
      const spliced = model.forward(tokens, B, T, { output: "final", hooks: { "blocks.0.hook_resid_post": (a) => a.slice() } }).final!;
      const l1 = model.nextTokenLosses(tokens, B, T, clean);
      const l2 = model.nextTokenLosses(tokens, B, T, spliced);
      expect([...l2]).toEqual([...l1]);
      // ...while zero-ablating the same point changes it.
      const ablated = model.forward(tokens, B, T, { output: "final", hooks: { "blocks.0.hook_resid_post": (a) => { a.fill(0); } } }).final!;
      expect(model.nextTokenLosses(tokens, B, T, ablated).some((v, i) => v !== l1[i])).toBe(true);
    });
  }

  it("next-token losses are the cross-entropy of the next token, computed by hand", () => {
    const T = 6;
    const tokens = randomTokens(6, T, neox.cfg.vocabSize);
    const r = neox.forward(tokens, 1, T);
    const losses = neox.nextTokenLosses(tokens, 1, T, r.final!);
    expect(losses).toHaveLength(T - 1);
    const V = neox.cfg.vocabSize;
    for (let t = 0; t < T - 1; t++) {
      const row = r.logits!.subarray(t * V, (t + 1) * V);
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
      expect(losses[t]).toBeCloseTo(lse - row[tokens[t + 1]!]!, 4);
    }
  });

  it("parallel and sequential residual differ as the config says", async () => {
    const par = (await loadModel(writeTinyNeox(join(dir, "par"), { parallelResidual: true, seed: 7 }))).model;
    const seq = (await loadModel(writeTinyNeox(join(dir, "seq"), { parallelResidual: false, seed: 7 }))).model;
    expect(par.cfg.parallelResidual).toBe(true);
    expect(seq.cfg.parallelResidual).toBe(false);
    const tokens = randomTokens(8, 8, par.cfg.vocabSize);
    let pa: Float32Array | null = null, sa: Float32Array | null = null, pm: Float32Array | null = null, sm: Float32Array | null = null;
    par.forward(tokens, 1, 8, { hooks: { "blocks.0.hook_attn_out": (a) => { pa = a.slice(); }, "blocks.0.hook_mlp_out": (a) => { pm = a.slice(); } } });
    seq.forward(tokens, 1, 8, { hooks: { "blocks.0.hook_attn_out": (a) => { sa = a.slice(); }, "blocks.0.hook_mlp_out": (a) => { sm = a.slice(); } } });
    expect(pa).toEqual(sa); // same weights, same attention input
    expect(pm).not.toEqual(sm); // the MLP reads x (parallel) or x + attn (sequential)
  });

  it("ln1/ln2.hook_normalized are the norms of the attention's and the MLP's inputs, and feed them", async () => {
    for (const parallelResidual of [true, false]) {
      const m = (await loadModel(writeTinyNeox(join(dir, `norm-${parallelResidual}`), { parallelResidual, seed: 9 }))).model;
      const d = m.cfg.dModel, T = 6;
      const tokens = randomTokens(10, T, m.cfg.vocabSize);
      const got: Record<string, Float32Array> = {};
      const read = (name: string) => (a: Float32Array) => { got[name] = a.slice(); };
      const names = ["blocks.0.hook_resid_pre", "blocks.0.ln1.hook_normalized", "blocks.0.hook_attn_out", "blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out"];
      m.forward(tokens, 1, T, { output: "none", hooks: Object.fromEntries(names.map((n) => [n, read(n)])) });
      // LayerNorm by hand, eps 1e-5 as the fixture's config.
      const layerNorm = (x: Float32Array, w: Float32Array, b: Float32Array | null) => Float32Array.from(x, (_, i) => {
        const r = Math.floor(i / d), row = x.subarray(r * d, (r + 1) * d);
        const mean = row.reduce((a, v) => a + v, 0) / d;
        const vr = row.reduce((a, v) => a + (v - mean) ** 2, 0) / d;
        return ((x[i]! - mean) / Math.sqrt(vr + 1e-5)) * w[i % d]! + (b ? b[i % d]! : 0);
      });
      const blk = m.weights.blocks[0]!;
      const resid = got["blocks.0.hook_resid_pre"]!;
      const mlpIn = parallelResidual ? resid : Float32Array.from(resid, (v, i) => v + got["blocks.0.hook_attn_out"]![i]!);
      const close = (a: Float32Array, b: Float32Array) => a.every((v, i) => Math.abs(v - b[i]!) < 1e-4);
      expect(close(got["blocks.0.ln1.hook_normalized"]!, layerNorm(resid, blk.ln1!.w, blk.ln1!.b))).toBe(true);
      expect(close(got["blocks.0.ln2.hook_normalized"]!, layerNorm(mlpIn, blk.ln2!.w, blk.ln2!.b))).toBe(true);
      // Replacing the MLP's input changes the MLP's output.
      let changed: Float32Array | null = null;
      m.forward(tokens, 1, T, { output: "none", hooks: { "blocks.0.ln2.hook_normalized": (a) => { a.fill(0.5); }, "blocks.0.hook_mlp_out": (a) => { changed = a.slice(); } } });
      expect(close(changed!, got["blocks.0.hook_mlp_out"]!)).toBe(false);
    }
  });

  it("OLMo 2, with no norm before attention or MLP: ln1/ln2.hook_normalized are the streams they read, and feed them", async () => {
    const m = (await loadModel(writeTinyLlama(join(dir, "olmo2-hooks"), { seed: 21, olmo2: true }))).model;
    expect(m.cfg).toMatchObject({ preNorms: false, postNorms: true, qkNorm: "projection", normEps: 1e-6 });
    const T = 6;
    const tokens = randomTokens(10, T, m.cfg.vocabSize);
    const got: Record<string, Float32Array> = {};
    const names = ["blocks.1.hook_resid_pre", "blocks.1.ln1.hook_normalized", "blocks.1.hook_resid_mid", "blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out"];
    m.forward(tokens, 1, T, { output: "none", hooks: Object.fromEntries(names.map((n) => [n, (a: Float32Array) => { got[n] = a.slice(); }])) });
    expect(got["blocks.1.ln1.hook_normalized"]).toEqual(got["blocks.1.hook_resid_pre"]);
    expect(got["blocks.1.ln2.hook_normalized"]).toEqual(got["blocks.1.hook_resid_mid"]);
    let changed: Float32Array | null = null;
    m.forward(tokens, 1, T, { output: "none", hooks: { "blocks.1.ln2.hook_normalized": (a) => { a.fill(0.5); }, "blocks.1.hook_mlp_out": (a) => { changed = a.slice(); } } });
    expect(changed).not.toEqual(got["blocks.1.hook_mlp_out"]);
    // Olmo2Config's default eps when config.json leaves it out.
    const noEps = writeTinyLlama(join(dir, "olmo2-eps"), { seed: 21, olmo2: true, config: { rms_norm_eps: undefined } });
    expect((await loadModel(noEps)).model.cfg.normEps).toBe(1e-5);
  });

  it("attn.hook_z holds each head's output before the projection: hook_attn_out = z W_O^T + b_O", () => {
    for (const [name, model] of models) {
      const { nHeads: H, dHead: dh } = model.cfg;
      const T = 7;
      // The first layer with heads (Qwen3.5's first is a Gated DeltaNet, which has none; its heads are gated before the projection).
      const L = Number(/^blocks\.(\d+)\./.exec(model.hookNames().find((n) => n.endsWith(".attn.hook_z"))!)![1]);
      const [zHook, outHook] = [`blocks.${L}.attn.hook_z`, `blocks.${L}.hook_attn_out`];
      const tokens = randomTokens(12, T, model.cfg.vocabSize);
      const got: Record<string, Float32Array> = {};
      model.forward(tokens, 1, T, { output: "none", hooks: {
        [zHook]: (a) => { got.z = a.slice(); }, [outHook]: (a) => { got.out = a.slice(); },
      } });
      expect(model.hookWidth(zHook), name).toBe(H * dh);
      expect(got.z!.length, name).toBe(T * H * dh);
      const names = model.hookNames();
      expect(names.indexOf(zHook)).toBe(names.indexOf(outHook) - 1);
      // Gemma 2 normalises the projection's output; the others use it as is.
      if (model.weights.blocks[L]!.ln1Post) continue;
      const bo = model.weights.blocks[L]!.bo;
      const d = model.cfg.dModel;
      const projected = model.projectHookZ(L, got.z!, T);
      // Zeroing z leaves the rest of hook_attn_out: the output bias only, or, in Falcon-H1, the Mamba-2 beside the attention too.
      let rest: Float32Array | null = null;
      model.forward(tokens, 1, T, { output: "none", hooks: { [zHook]: (a) => { a.fill(0); }, [outHook]: (a) => { rest = a.slice(); } } });
      for (let i = 0; i < T * d; i++) expect(got.out![i]!, name).toBeCloseTo(projected[i]! + rest![i]!, 4);
      if (model.cfg.mamba?.parallel) expect(maxAbs(rest!), name).toBeGreaterThan(1e-2);
      else for (let i = 0; i < T * d; i++) expect(rest![i]).toBe(bo ? bo[i % d]! : 0);
    }
  });

  it("mlp.hook_post holds the MLP's hidden activations: hook_mlp_out = post W_out^T + b_out; the forward can stop there", () => {
    for (const [name, model] of models) {
      const T = 6;
      const tokens = randomTokens(13, T, model.cfg.vocabSize);
      const hook = "blocks.0.mlp.hook_post";
      const got: Record<string, Float32Array> = {};
      model.forward(tokens, 1, T, { output: "none", hooks: { [hook]: (a) => { got.post = a.slice(); }, "blocks.0.hook_mlp_out": (a) => { got.out = a.slice(); } } });
      expect(model.hookWidth(hook), name).toBe(model.cfg.dMlp);
      expect(got.post!.length, name).toBe(T * model.cfg.dMlp);
      let early: Float32Array | null = null;
      expect(model.forward(tokens, 1, T, { stopAt: hook, hooks: { [hook]: (a) => { early = a.slice(); } } }).stopped).toBe(true);
      expect(early, name).toEqual(got.post);
      const w = model.weights.blocks[0]!;
      if (w.ln2Post) continue; // Gemma 2 normalises the MLP's output
      const bias = w.bout ?? w.bdown;
      const d = model.cfg.dModel;
      const projected = model.projectToResidual(hook, got.post!, T);
      for (let i = 0; i < T * d; i++) expect(got.out![i]!, name).toBeCloseTo(projected[i]! + (bias ? bias[i % d]! : 0), 4);
    }
    const resid = new Float32Array(neox.cfg.dModel);
    expect(neox.projectToResidual("blocks.0.hook_resid_post", resid, 1)).toBe(resid);
  });

  it("resumes a pass at a block from the stream entering it, to the bit, hooks there included", () => {
    for (const [name, model] of models) {
      const L = model.cfg.nLayers, T = 5;
      const tokens = randomTokens(21, 2 * T, model.cfg.vocabSize);
      const streams: Record<string, Float32Array> = {};
      const keep = (h: string) => (a: Float32Array) => { streams[h] = a.slice(); };
      const full = model.forward(tokens, 2, T, { output: "final", hooks: { "blocks.1.hook_resid_pre": keep("pre1"), [`blocks.${L - 1}.hook_resid_post`]: keep("last") } }).final!;
      expect(model.forward(tokens, 2, T, { output: "final", resume: { layer: 1, resid: streams.pre1! } }).final, name).toEqual(full);
      expect(model.forward(tokens, 2, T, { output: "final", resume: { layer: L, resid: streams.last! } }).final, name).toEqual(full);
      // A hook in the resumed block runs as in a full pass.
      const zeroed = (a: Float32Array) => { a.fill(0); };
      const changed = model.forward(tokens, 2, T, { output: "final", hooks: { "blocks.1.hook_mlp_out": zeroed } }).final!;
      expect(model.forward(tokens, 2, T, { output: "final", resume: { layer: 1, resid: streams.pre1! }, hooks: { "blocks.1.hook_mlp_out": zeroed } }).final, name).toEqual(changed);
      expect(model.resumePoint("blocks.1.attn.hook_z")).toEqual({ layer: 1, residHook: "blocks.1.hook_resid_pre" });
      expect(model.resumePoint("ln_final.hook_normalized")).toEqual({ layer: L, residHook: `blocks.${L - 1}.hook_resid_post` });
      expect(model.resumePoint("hook_embed")).toBeNull();
    }
    expect(() => neox.forward(new Int32Array(4), 1, 4, { resume: { layer: 9, resid: new Float32Array(4 * neox.cfg.dModel) } })).toThrow(/cannot resume at layer 9/);
  });

  it("keeps its weight matrices as bfloat16 at about half the memory, computing what the rounded float32 weights do", async () => {
    // Every loader reads its matrices as bf16 (and transposes, regroups or stacks them so).
    for (const [name, write] of [["gpt2", writeTinyGpt2], ["neox", writeTinyNeox], ["llama", writeTinyLlama], ["gpt-neo", writeTinyGptNeo],
      ["gptj", writeTinyGptJ], ["phi", writeTinyPhi], ["qwen3_5", writeTinyQwen35], ["lfm2", writeTinyLfm2],
      // Falcon-H1's multipliers fold into float32 weights, which then round to bfloat16 once.
      ["falcon_h1", (d: string) => writeTinyLlama(d, { falconH1: { norm: "before-gate" } })]] as const) {
      const folder = join(dir, `bf16-${name}`);
      write(folder);
      const full = (await loadModel(folder)).model;
      const half = (await loadModel(folder, { weights: "bf16" })).model;
      const rounded = (await loadModel(folder)).model;
      rounded.storeWeightsAs("bf16");
      rounded.storeWeightsAs("f32"); // float32 again, holding the rounded values
      // (The first attention layer's: Qwen3.5's and LFM2's first layers have none.)
      const attention = half.weights.blocks.findIndex((b) => b.wqkv.length > 0);
      expect(half.weights.blocks[attention]!.wqkv).toBeInstanceOf(Uint16Array);
      expect(rounded.weights.blocks[attention]!.wqkv).toBeInstanceOf(Float32Array);
      expect(half.weightBytes()).toBeLessThan(0.56 * full.weightBytes());
      const T = 6;
      const tokens = randomTokens(31, 2 * T, full.cfg.vocabSize);
      const logits = half.forward(tokens, 2, T).logits!;
      expect(logits, name).toEqual(rounded.forward(tokens, 2, T).logits);
      const exact = full.forward(tokens, 2, T).logits!;
      // bf16's rounding, a few parts in a thousand per weight; LFM2's gates multiply two projections
      // of one input (B x, then C), doubling its share, and Qwen3.5's gated RMSNorms of a first
      // token's small outputs (o = delta (k . q) from an empty state) magnify it in these tiny models.
      const bound = { qwen3_5: 0.1, lfm2: 0.06 }[name as string] ?? 0.03;
      expect(maxAbsDiff(logits, exact), name).toBeLessThan(bound * maxAbs(exact));
      // A token at a time (the vector-matrix path) agrees too.
      expect(half.forward(tokens, 1, 1).logits, name).toEqual(rounded.forward(tokens, 1, 1).logits);
    }
  });

  it("hook points are named as TransformerLens names them, and unknown names are refused", () => {
    expect(neox.hookNames()).toContain("blocks.0.ln2.hook_normalized");
    expect(neox.hookNames()).toContain("blocks.1.hook_resid_post");
    expect(gpt2.hookNames()).toContain("hook_pos_embed");
    expect(neox.hookNames().at(-1)).toBe("ln_final.hook_normalized");
    // hook_resid_mid = resid_pre + attn_out, where the MLP reads it (not with a parallel residual).
    expect(neox.cfg.parallelResidual).toBe(true);
    expect(neox.hookNames()).not.toContain("blocks.0.hook_resid_mid");
    const got: Record<string, Float32Array> = {};
    const keep = (name: string) => (a: Float32Array) => { got[name] = a.slice(); };
    const tokens = randomTokens(6, 5, gpt2.cfg.vocabSize);
    const clean = gpt2.forward(tokens, 1, 5, { hooks: { "blocks.1.hook_resid_pre": keep("pre"), "blocks.1.hook_attn_out": keep("attn"), "blocks.1.hook_resid_mid": keep("mid") } }).logits!;
    for (let i = 0; i < got.mid!.length; i++) expect(got.mid![i]).toBeCloseTo(got.pre![i]! + got.attn![i]!, 5);
    // Replacing it is what the rest of the layer reads.
    const ablated = gpt2.forward(tokens, 1, 5, { hooks: { "blocks.1.hook_resid_mid": (a) => { a.fill(0); } } }).logits!;
    expect(ablated).not.toEqual(clean);
    expect(() => neox.forward(new Int32Array(4), 1, 4, { hooks: { "blocks.9.hook_resid_post": () => {} } })).toThrow(/no hook point "blocks.9.hook_resid_post"/);
    expect(() => neox.forward(Int32Array.from([1, 2, 99999]), 1, 3)).toThrow(/outside the vocabulary/);
  });
});

describe("loading checkpoints", () => {
  it("ignores the extra tensors HF checkpoints carry (rotary inv_freq, masked_bias, attn.bias, Falcon-H1's mup_vector)", async () => {
    await expect(loadModel(writeTinyNeox(join(dir, "neox-extras"), { extras: true }))).resolves.toBeDefined();
    await expect(loadModel(writeTinyGpt2(join(dir, "gpt2-extras"), { extras: true }))).resolves.toBeDefined();
    // A Falcon-H1 checkpoint that kept its mup_vector buffers: the config's multipliers rule, as in transformers.
    const falcon = writeTinyLlama(join(dir, "falcon-mup"), { seed: 65, falconH1: {} });
    const tokens = randomTokens(5, 9, 300);
    const want = (await loadModel(falcon)).model.forward(tokens, 1, 9).logits!;
    const st = SafetensorsFile.open(join(falcon, "model.safetensors"));
    const tensors = Object.fromEntries(st.names().map((n) => [n, st.read(n)]));
    for (const l of [0, 1]) tensors[`model.layers.${l}.mamba.mup_vector`] = new Tensor([1, 1, 3], Float32Array.of(9, 9, 9));
    writeSafetensors(join(falcon, "model.safetensors"), tensors);
    expect((await loadModel(falcon)).model.forward(tokens, 1, 9).logits).toEqual(want);
  });

  it("reads a PyTorch pytorch_model.bin (written by torch.save) like the same weights in safetensors", async () => {
    // test/fixtures/torch/gpt2: a tiny GPT2LMHeadModel state dict, with "transformer."
    // names, the bool attn.bias buffers and lm_head tied to wte (make_fixtures.py).
    const binDir = join(dir, "gpt2-bin");
    mkdirSync(binDir);
    for (const f of ["config.json", "pytorch_model.bin"]) copyFileSync(join(import.meta.dirname, "..", "fixtures", "torch", "gpt2", f), join(binDir, f));
    const ck = TorchCheckpoint.open(join(binDir, "pytorch_model.bin"));
    // Closed form of the script: tensor k holds sin(0.37 i + k) * 0.3 (wte is k = 0).
    const wte = ck.read("transformer.wte.weight").data;
    expect(maxAbsDiff(wte, Float32Array.from(wte, (_, i) => Math.sin(0.37 * i) * 0.3))).toBeLessThan(1e-7);
    const stDir = join(dir, "gpt2-st");
    mkdirSync(stDir);
    copyFileSync(join(binDir, "config.json"), join(stDir, "config.json"));
    const names = ck.names().filter((n) => !/\.attn\.bias$/.test(n) && n !== "lm_head.weight");
    writeSafetensors(join(stDir, "model.safetensors"), Object.fromEntries(names.map((n) => [n.replace(/^transformer\./, ""), ck.read(n)])));
    const { model } = await loadModel(binDir);
    const tokens = randomTokens(4, 11, model.cfg.vocabSize);
    expect(relativeError(model.forward(tokens, 1, 11).logits!, hfReferenceLogits(stDir, [...tokens]))).toBeLessThan(1e-5);
  });

  it("reads a sharded model.safetensors.index.json", async () => {
    const src = writeTinyNeox(join(dir, "to-shard"));
    const shardDir = writeTinyNeox(join(dir, "sharded"));
    const file = SafetensorsFile.open(join(src, "model.safetensors"));
    const names = file.names();
    const half = Math.ceil(names.length / 2);
    const map: Record<string, string> = {};
    for (const [i, part] of [names.slice(0, half), names.slice(half)].entries()) {
      const shard = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(shardDir, shard), Object.fromEntries(part.map((n) => [n, file.read(n)])));
      for (const n of part) map[n] = shard;
    }
    const { rmSync } = await import("node:fs");
    rmSync(join(shardDir, "model.safetensors"));
    writeFileSync(join(shardDir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: map }));
    const a = (await loadModel(src)).model;
    const b = (await loadModel(shardDir)).model;
    const tokens = randomTokens(9, 5, a.cfg.vocabSize);
    expect(b.forward(tokens, 1, 5).logits).toEqual(a.forward(tokens, 1, 5).logits);
  });

  it("names the missing tensor, the mis-shaped tensor and the bad config", async () => {
    const missing = writeTinyNeox(join(dir, "missing"));
    const file = SafetensorsFile.open(join(missing, "model.safetensors"));
    const keep = file.names().filter((n) => n !== "gpt_neox.layers.1.mlp.dense_4h_to_h.bias");
    writeSafetensors(join(missing, "model.safetensors"), Object.fromEntries(keep.map((n) => [n, file.read(n)])));
    await expect(loadModel(missing)).rejects.toThrow(/model.safetensors: 1 tensor missing or mis-shaped for this config.json:\n  missing tensor "gpt_neox.layers.1.mlp.dense_4h_to_h.bias" \(expected shape \[32\]\)$/);

    const wrong = writeTinyGpt2(join(dir, "wrong"));
    const cfgPath = join(wrong, "config.json");
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(readFileSync(cfgPath, "utf8")), n_embd: 40 }));
    // Every problem is listed at once, not just the first.
    const err: Error = await loadModel(wrong).then(() => new Error("loaded"), (e: Error) => e);
    expect(err.message).toMatch(/tensors missing or mis-shaped for this config.json/);
    expect(err.message).toMatch(/tensor "wte.weight" has shape \[300, 32\], expected \[300, 40\]/);
    expect(err.message).toMatch(/tensor "h.1.mlp.c_proj.bias" has shape \[32\], expected \[40\]/);

    // A weight the forward pass would silently leave out (Qwen3-style q_norm) is refused.
    const extra = writeTinyLlama(join(dir, "extra-weight"));
    const lf = SafetensorsFile.open(join(extra, "model.safetensors"));
    writeSafetensors(join(extra, "model.safetensors"), {
      ...Object.fromEntries(lf.names().map((n) => [n, lf.read(n)])),
      "model.layers.0.self_attn.q_norm.weight": { shape: [8], data: new Float32Array(8).fill(1) },
    });
    await expect(loadModel(extra)).rejects.toThrow(/model.safetensors: tensors this config.json does not use:\n  unexpected tensor "model.layers.0.self_attn.q_norm.weight": weights this architecture does not use/);
    writeSafetensors(join(extra, "model.safetensors"), {
      ...Object.fromEntries(lf.names().filter((n) => n !== "model.norm.weight").map((n) => [n, lf.read(n)])),
      "model.layers.0.self_attn.q_norm.weight": { shape: [8], data: new Float32Array(8).fill(1) },
    });
    await expect(loadModel(extra)).rejects.toThrow(
      /1 tensor missing or mis-shaped for this config.json, and tensors it does not use:\n  missing tensor "model.norm.weight" \(expected shape \[32\]\)\n  unexpected tensor "model.layers.0.self_attn.q_norm.weight"/);

    // A config that disagrees with its checkpoint everywhere stops early, allocating nothing absurd.
    const neoxCfg = JSON.parse(readFileSync(join(missing, "config.json"), "utf8"));
    const withConfig = async (change: Record<string, unknown>) => {
      const path = writeTinyNeox(join(dir, "config-variant"));
      writeFileSync(join(path, "config.json"), JSON.stringify({ ...neoxCfg, ...change }));
      return loadModel(path).then(() => "loaded", (e: Error) => e.message);
    };
    expect(await withConfig({ num_hidden_layers: 1e12 })).toMatch(/config.json: nLayers 1000000000000 is beyond any model saekit can run \(at most 4096\)/);
    expect(await withConfig({ num_hidden_layers: 4000 })).toMatch(/100 tensors missing or mis-shaped for this config.json \(stopped after 100: does config.json belong to this checkpoint\?\):\n  missing tensor "gpt_neox.layers.2.input_layernorm.weight"/);
    expect(await withConfig({ num_hidden_layers: 4000, intermediate_size: 1e5 })).toMatch(/config.json \(stopped: config.json asks for far more weights than the checkpoint holds\):\n  tensor "gpt_neox.layers.0.mlp.dense_h_to_4h.weight" has shape \[64, 32\], expected \[100000, 32\]$/);
    expect(await withConfig({ vocab_size: 1e7 })).toMatch(/1 tensor missing or mis-shaped for this config.json \(stopped: config.json asks for far more weights than the checkpoint holds\):\n  tensor "gpt_neox.embed_in.weight" has shape \[300, 32\], expected \[10000000, 32\]$/);
    expect(await withConfig({ use_parallel_residual: "yes" })).toMatch(/config.json: "use_parallel_residual" must be true or false, got "yes"/);
    expect(await withConfig({ layer_norm_eps: -1 })).toMatch(/config.json: the norm epsilon must be a non-negative number, got -1/);
    expect(await withConfig({ bos_token_id: "0" })).toMatch(/config.json: "bos_token_id" must be a token id \(or a list of them\), got "0"/);
    expect(await withConfig({ eos_token_id: [300, 1] })).toMatch(/config.json: eos_token_id 300 is outside the vocabulary \(300 tokens\)/);
    expect(await withConfig({ eos_token_id: [2, 1] })).toBe("loaded"); // a list, as Llama 3 writes: the first is the one

    const bad = writeTinyGpt2(join(dir, "bad"));
    writeFileSync(join(bad, "config.json"), JSON.stringify({ model_type: "t5" }));
    await expect(loadModel(bad)).rejects.toThrow(/model_type "t5" is not supported/);
    writeFileSync(join(bad, "config.json"), "{");
    await expect(loadModel(bad)).rejects.toThrow(/config.json: not valid JSON/);
    writeFileSync(join(bad, "config.json"), '{"vocab_size": Infinit}');
    await expect(loadModel(bad)).rejects.toThrow(/config.json: not valid JSON/);
    await expect(loadModel(join(dir, "nothing-here"))).rejects.toThrow(/no such model folder/);
  });
});

describe("loading only what running to some hooks needs", () => {
  const partial: Array<[string, (d: string) => string]> = [
    ["gpt_neox", (d) => writeTinyNeox(d)], ["gpt2", (d) => writeTinyGpt2(d, { layers: 3 })], ["gpt_neo", (d) => writeTinyGptNeo(d)],
    ["llama", (d) => writeTinyLlama(d)], ["gemma2", (d) => writeTinyGemma(d, { gemma2: true })], ["gptj", (d) => writeTinyGptJ(d)],
    ["phi", (d) => writeTinyPhi(d)],
  ];
  for (const [label, write] of partial) {
    it(`${label}: the first blocks give the whole model's activations to the bit, and passes beyond them are refused`, async () => {
      const path = write(join(dir, `parts-${label}`));
      const whole = (await loadModel(path)).model;
      const L = whole.cfg.nLayers;
      const early = (await loadModel(path, { hooks: ["blocks.0.hook_mlp_out", "blocks.0.hook_resid_post"] })).model;
      expect(early.parts).toEqual({ blocks: 1, finalNorm: false, unembed: false });
      expect(early.weightBytes()).toBeLessThan(whole.weightBytes() * 0.75);
      const tokens = randomTokens(21, 2 * 9, whole.cfg.vocabSize);
      for (const hook of ["hook_embed", "blocks.0.attn.hook_z", "blocks.0.hook_resid_post"]) {
        expect(early.activationAt(tokens, 2, 9, hook).slice()).toEqual(whole.activationAt(tokens, 2, 9, hook).slice());
      }
      const refused = new RegExp(`loaded for hooks only \\(blocks 0\\.\\.0 of ${L}, no unembedding\\): block 1 was not read`);
      expect(() => early.activationAt(tokens, 2, 9, "blocks.1.hook_resid_pre")).toThrow(refused);
      expect(() => early.forward(tokens, 2, 9)).toThrow(refused);
      expect(() => early.projectToResidual("blocks.1.attn.hook_z", new Float32Array(early.hookWidth("blocks.0.attn.hook_z")), 1)).toThrow(refused);

      // ln_final.hook_normalized needs every block and the final norm, still no unembedding.
      const last = (await loadModel(path, { hooks: ["blocks.*.hook_resid_post", "ln_final.hook_normalized"] })).model;
      expect(last.parts).toEqual({ blocks: L, finalNorm: true, unembed: false });
      expect(last.forward(tokens, 2, 9, { output: "final" }).final).toEqual(whole.forward(tokens, 2, 9, { output: "final" }).final);
      expect(() => last.forward(tokens, 2, 9)).toThrow(/every block, no unembedding\): the unembedding \(logits\) was not read/);
      expect(() => last.logits(new Float32Array(last.cfg.dModel), 1)).toThrow(/the unembedding \(logits\) was not read/);
    });
  }

  it("reads nothing of the blocks after the hooks: a problem there does not stop the load, one before it does", async () => {
    const path = writeTinyNeox(join(dir, "parts-missing"));
    const file = SafetensorsFile.open(join(path, "model.safetensors"));
    const tensors = new Map(file.names().map((n) => [n, file.read(n)]));
    const drop = (name: string) => {
      tensors.delete(name);
      writeSafetensors(join(path, "model.safetensors"), Object.fromEntries(tensors));
    };
    drop("gpt_neox.layers.1.mlp.dense_4h_to_h.bias");
    await expect(loadModel(path, { hooks: ["blocks.0.hook_resid_post"] })).resolves.toBeDefined();
    await expect(loadModel(path)).rejects.toThrow(/missing tensor "gpt_neox.layers.1.mlp.dense_4h_to_h.bias"/);
    drop("gpt_neox.layers.0.mlp.dense_4h_to_h.bias");
    await expect(loadModel(path, { hooks: ["blocks.0.hook_resid_post"] })).rejects.toThrow(/missing tensor "gpt_neox.layers.0.mlp.dense_4h_to_h.bias"/);
  });

  it("reports reading progress up to exactly the values it reads, loading whole or in part", async () => {
    for (const [path, hooks] of [[writeTinyNeox(join(dir, "progress-neox")), ["blocks.0.hook_resid_post"]],
      [writeTinyLlama(join(dir, "progress-llama"), { tied: true }), ["blocks.1.hook_mlp_out"]],
      [writeTinyGpt2(join(dir, "progress-gpt2"), { layers: 3 }), ["ln_final.hook_normalized"]]] as const) {
      for (const only of [undefined, hooks]) {
        const seen: Array<[number, number]> = [];
        const json = JSON.parse(readFileSync(join(path, "config.json"), "utf8"));
        const model = hfLanguageModel(json, path, openHfWeights(path), path, { hooks: only, progress: (done, total) => seen.push([done, total]) });
        const total = seen[0]![1];
        expect(seen.every(([done, t], i) => t === total && (i === 0 || done > seen[i - 1]![0])), path).toBe(true);
        expect(seen.at(-1)![0], path).toBe(total);
        // What was read: the weights the model holds (a tied unembedding once), norms and biases included.
        expect(total * 4, `${path} ${only}`).toBe(model.weightBytes());
      }
    }
  });

  it("partsForHooks: the block of the last hook, patterns expanded, an unknown name asks for everything", () => {
    const cfg = PRESETS["pythia-70m"]!; // 6 blocks
    expect(partsForHooks(cfg, ["hook_embed"])).toEqual({ blocks: 0, finalNorm: false, unembed: false });
    expect(partsForHooks(cfg, ["blocks.3.ln2.hook_normalized", "blocks.1.hook_attn_out"])).toEqual({ blocks: 4, finalNorm: false, unembed: false });
    expect(partsForHooks(cfg, ["blocks.*.hook_mlp_out"])).toEqual({ blocks: 6, finalNorm: false, unembed: false });
    expect(partsForHooks(cfg, ["ln_final.hook_normalized"])).toEqual({ blocks: 6, finalNorm: true, unembed: false });
    expect(partsForHooks(cfg, ["blocks.0.hook_resid_post", "blocks.9.hook_resid_post"])).toEqual({ blocks: 6, finalNorm: true, unembed: true });
  });
});

describe("config.json variants", () => {
  const llama = { model_type: "llama", vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_hidden_layers: 1, max_position_embeddings: 4096 };

  it("OLMo: LayerNorm eps 1e-5 whatever the config says, clip_qkv a positive number or null", () => {
    const olmo = { ...llama, model_type: "olmo", rms_norm_eps: 1e-3 };
    expect(configFromHf(olmo, "c")).toMatchObject({ norm: "layernorm", normEps: 1e-5 });
    expect(configFromHf(olmo, "c").clipQkv).toBeUndefined();
    expect(configFromHf({ ...olmo, clip_qkv: null }, "c").clipQkv).toBeUndefined();
    expect(configFromHf({ ...olmo, clip_qkv: 8 }, "c").clipQkv).toBe(8);
    expect(() => configFromHf({ ...olmo, clip_qkv: 0 }, "c")).toThrow(/c: "clip_qkv" must be a positive number or null, got 0/);
    expect(() => configFromHf({ ...olmo, clip_qkv: "8" }, "c")).toThrow(/"clip_qkv" must be a number/);
  });

  it("reads rope settings from transformers 4 and 5 layouts, with each class's defaults", () => {
    const neox = { model_type: "gpt_neox", vocab_size: 10, hidden_size: 64, intermediate_size: 16, num_attention_heads: 2, num_hidden_layers: 1 };
    // GPTNeoXConfig rotates a quarter of each head by default; Llama all of it.
    expect(configFromHf(neox, "c").rotaryDims).toBe(8);
    expect(configFromHf({ ...neox, rotary_pct: 0.5, rotary_emb_base: 500 }, "c").rope).toEqual({ theta: 500, partialFactor: 0.5, scaling: { type: "default" } });
    expect(configFromHf({ ...neox, rope_parameters: { rope_type: "default", rope_theta: 7, partial_rotary_factor: 1 } }, "c").rotaryDims).toBe(32);
    expect(configFromHf(llama, "c").rope).toEqual({ theta: 10000, partialFactor: 1, scaling: { type: "default" } });
    expect(configFromHf({ ...llama, rope_parameters: { rope_type: "linear", factor: 2, rope_theta: 1e6 } }, "c").rope)
      .toEqual({ theta: 1e6, partialFactor: 1, scaling: { type: "linear", factor: 2 } });
    // Dynamic NTK only differs past max_position_embeddings, which the forward refuses.
    expect(configFromHf({ ...llama, rope_scaling: { type: "dynamic", factor: 2 } }, "c").rope!.scaling).toEqual({ type: "default" });
  });

  it("OLMo 3's layer kinds and SmolLM3's NoPE layers are read per layer, and refused when they do not list every layer", () => {
    const olmo3 = { ...llama, model_type: "olmo3", num_hidden_layers: 2, sliding_window: 4096, layer_types: ["sliding_attention", "full_attention"],
      rope_parameters: { sliding_attention: { rope_type: "default", rope_theta: 1e4 }, full_attention: { rope_type: "default", rope_theta: 5e5 } } };
    const o = configFromHf(olmo3, "c");
    expect([o.rope!.theta, o.localRope!.theta, o.localLayers, o.qkNorm, o.preNorms]).toEqual([5e5, 1e4, [true, false], "projection", false]);
    expect(() => configFromHf({ ...olmo3, layer_types: ["full_attention"] }, "c")).toThrow(/c: "layer_types" has 1 entries for 2 layers/);
    const smol = { ...llama, model_type: "smollm3", num_hidden_layers: 4, no_rope_layers: [1, 1, 1, 0] };
    expect(configFromHf(smol, "c").noRope).toEqual([false, false, false, true]);
    expect(configFromHf({ ...smol, no_rope_layers: undefined }, "c").noRope).toBeUndefined();
    expect(() => configFromHf({ ...smol, no_rope_layers: [1, 0] }, "c")).toThrow(/c: "no_rope_layers" must list 0 or 1 for each of the 4 layers/);
  });

  it("StableLM: LayerNorms, a quarter of each head rotated unless the config says otherwise; qk_layernorm a LayerNorm per head", () => {
    const stablelm = { ...llama, model_type: "stablelm", hidden_size: 64, num_attention_heads: 2 };
    expect(configFromHf(stablelm, "c")).toMatchObject({ norm: "layernorm", normEps: 1e-5, rotaryDims: 8, parallelResidual: false });
    expect(configFromHf({ ...stablelm, use_parallel_residual: true, partial_rotary_factor: 0.5 }, "c")).toMatchObject({ rotaryDims: 16, parallelResidual: true });
    expect(configFromHf(stablelm, "c").qkNorm).toBeUndefined();
    expect(configFromHf({ ...stablelm, qk_layernorm: true }, "c").qkNorm).toBe("head-layernorm");
  });

  it("Cohere: a parallel block on LayerNorms without biases, interleaved rotary, a tied unembedding, logit_scale; Cohere 2 rotates only in its sliding-window layers", () => {
    const cohere = { ...llama, model_type: "cohere", num_hidden_layers: 8, tie_word_embeddings: undefined };
    expect(configFromHf(cohere, "c")).toMatchObject({
      norm: "layernorm", normEps: 1e-5, normBias: false, parallelResidual: true, rotaryStyle: RotaryStyle.Interleaved, tiedEmbeddings: true, logitScale: 0.0625,
    });
    expect(configFromHf(cohere, "c").noRope).toBeUndefined();
    expect(configFromHf({ ...cohere, logit_scale: 0.25 }, "c").logitScale).toBe(0.25);
    expect(() => configFromHf({ ...cohere, logit_scale: 0 }, "c")).toThrow(/logit_scale/);
    expect(configFromHf(cohere, "c").qkNorm).toBeUndefined();
    expect(configFromHf({ ...cohere, use_qk_norm: true }, "c").qkNorm).toBe("head-layernorm");
    // Cohere2Config: every fourth layer full attention (no positions) unless layer_types says otherwise; contexts held to the window.
    const cohere2 = { ...cohere, model_type: "cohere2", sliding_window: 32 };
    expect(configFromHf(cohere2, "c")).toMatchObject({ maxPositions: 32, noRope: [false, false, false, true, false, false, false, true] });
    expect(configFromHf({ ...cohere2, layer_types: ["full_attention", ...Array(7).fill("sliding_attention")] }, "c").noRope)
      .toEqual([true, false, false, false, false, false, false, false]);
  });

  it("mixtures of experts: each model's names and defaults, Qwen's dense layers, and what cannot run refused by name", () => {
    const moe = (type: string, extra: Record<string, unknown> = {}) => configFromHf({ ...llama, model_type: type, num_hidden_layers: 4, ...extra }, "c").moe;
    expect(moe("mixtral")).toEqual({ experts: 8, topK: 2, normTopK: true, dExpert: 16, dShared: 0, layers: [true, true, true, true] });
    // GraniteMoE softmaxes its topK logits: Mixtral's renormalised probabilities.
    expect(moe("granitemoe", { num_local_experts: 4 })).toMatchObject({ experts: 4, topK: 2, normTopK: true, dExpert: 16 });
    expect(moe("olmoe", { num_experts: 16, num_experts_per_tok: 4 })).toEqual({ experts: 16, topK: 4, normTopK: false, dExpert: 16, dShared: 0, layers: [true, true, true, true] });
    // Qwen: MoE in every decoder_sparse_step-th layer not in mlp_only_layers, the others dense.
    expect(moe("qwen2_moe", { decoder_sparse_step: 2, mlp_only_layers: [3] })).toEqual({
      experts: 60, topK: 4, normTopK: false, dExpert: 1408, dShared: 5632, layers: [false, true, false, false],
    });
    // transformers 5 writes Qwen3-MoE's expert count as num_local_experts.
    expect(moe("qwen3_moe", { num_local_experts: 32, norm_topk_prob: true, moe_intermediate_size: 24 })).toMatchObject({ experts: 32, topK: 8, normTopK: true, dExpert: 24 });
    expect(configFromHf({ ...llama, model_type: "qwen3_moe" }, "c").qkNorm).toBe("head");
    expect(configFromHf({ ...llama, model_type: "olmoe" }, "c")).toMatchObject({ qkNorm: "projection", normEps: 1e-5 });
    expect(() => moe("mixtral", { num_local_experts: 2, num_experts_per_tok: 3 })).toThrow(/c: num_experts_per_tok \(3\) must be between 1 and the 2 experts/);
    expect(() => moe("qwen2_moe", { mlp_only_layers: "1" })).toThrow(/c: "mlp_only_layers" must be a list of layer indices/);
    // OLMoE clamps after its q/k norms, OLMo straight after the projections.
    expect(configFromHf({ ...llama, model_type: "olmoe", clip_qkv: 8 }, "c")).toMatchObject({ clipQkv: 8, clipQkvAfterNorm: true });
    expect(configFromHf({ ...llama, model_type: "olmoe", clip_qkv: null }, "c").clipQkv).toBeUndefined();
    expect(() => moe("olmoe", { clip_qkv: -1 })).toThrow(/c: "clip_qkv" must be a positive number or null, got -1/);
    // Sizes past any model are refused before anything is allocated for them.
    expect(() => moe("mixtral", { num_local_experts: 1e6 })).toThrow(/c: 1000000 experts is beyond any model saekit can run/);
    expect(() => moe("qwen3_moe", { moe_intermediate_size: 0 })).toThrow(/c: expert width 0 must be a positive integer/);
  });

  it("GPT-J and Phi: their rotated share of each head and parallel blocks; a rotary over the whole width and Phi's q/k LayerNorms refused by name", () => {
    const gptj = { model_type: "gptj", vocab_size: 100, n_embd: 64, n_head: 4, n_layer: 2, n_positions: 128, rotary_dim: 8 };
    expect(configFromHf(gptj, "c")).toMatchObject({
      architecture: "gptj", dHead: 16, rotaryDims: 8, parallelResidual: true, activation: "gelu_new", dMlp: 256, maxPositions: 128,
    });
    // GPTJConfig's default: 64 rotated dimensions (GPT-J-6B's, of its 256-wide heads).
    expect(configFromHf({ ...gptj, n_embd: 1024, rotary_dim: undefined }, "c").rotaryDims).toBe(64);
    expect(() => configFromHf({ ...gptj, rotary_dim: null }, "c")).toThrow(/c: "rotary_dim" null \(rotary over the whole model width\) is not supported/);
    expect(() => configFromHf({ ...gptj, rotary_dim: 20 }, "c")).toThrow(/rotary dims 20 must be even and at most the head size 16/);
    const phi = { model_type: "phi", vocab_size: 100, hidden_size: 80, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 160 };
    expect(configFromHf(phi, "c")).toMatchObject({ architecture: "phi", dHead: 20, rotaryDims: 10, nKvHeads: 4, parallelResidual: true, normEps: 1e-5 });
    expect(configFromHf({ ...phi, partial_rotary_factor: 0.4 }, "c").rotaryDims).toBe(8);
    expect(() => configFromHf({ ...phi, qk_layernorm: true }, "c")).toThrow(/c: qk_layernorm \(a LayerNorm per head on q and k\) is not supported/);
  });

  it("Granite: its four multipliers, each 1 when absent, and a logits_scaling that must be positive", () => {
    const granite = { ...llama, model_type: "granite", embedding_multiplier: 12, attention_multiplier: 0.015625, residual_multiplier: 0.22, logits_scaling: 8 };
    expect(configFromHf(granite, "c")).toMatchObject({ embedScale: 12, attentionMultiplier: 0.015625, residualScale: 0.22, logitScale: 0.125 });
    expect(configFromHf({ ...llama, model_type: "granite" }, "c")).toMatchObject({ embedScale: 1, attentionMultiplier: 1, residualScale: 1, logitScale: 1 });
    expect(() => configFromHf({ ...granite, logits_scaling: 0 }, "c")).toThrow(/c: "logits_scaling" must be a positive number, got 0/);
  });

  it("LongRoPE (Phi-3): short factors, the attention factor given or from the context ratio, contexts held to the original one", () => {
    const phi3 = { ...llama, model_type: "phi3", hidden_size: 32, num_attention_heads: 4, max_position_embeddings: 4096, original_max_position_embeddings: 256 };
    const short = [1, 1.5, 2, 4];
    const cfg = configFromHf({ ...phi3, rope_scaling: { type: "longrope", short_factor: short, long_factor: short } }, "c");
    expect(cfg.rope!.scaling).toEqual({ type: "longrope", shortFactor: short, attentionFactor: Math.sqrt(1 + Math.log(16) / Math.log(256)), originalMaxPositions: 256 });
    expect(cfg.maxPositions).toBe(256);
    const given = configFromHf({ ...phi3, rope_parameters: { rope_type: "longrope", short_factor: short, long_factor: short, attention_factor: 1.25 } }, "c");
    expect(given.rope!.scaling).toMatchObject({ attentionFactor: 1.25 });
    // Frequencies: 1 / (short_i * base^(2i/d)).
    const inv = rotaryInverseFrequencies(cfg.rope!, 8);
    short.forEach((f, i) => expect(inv[i]).toBeCloseTo(1 / (f * 10000 ** ((2 * i) / 8)), 7));
    expect(() => configFromHf({ ...phi3, rope_scaling: { type: "longrope", short_factor: [1, 2], long_factor: [1, 2] } }, "c"))
      .toThrow(/c: rope_scaling.short_factor has 2 entries, the 8 rotated dimensions of a head need 4/);
    expect(() => configFromHf({ ...phi3, rope_scaling: { type: "longrope", short_factor: [1, -2, 1, 1] } }, "c"))
      .toThrow(/c: rope_scaling.short_factor must be a list of positive numbers/);
  });

  it("YaRN: its defaults, the attention factor given, from the factor or from DeepSeek's mscales, and frequencies blended across the ramp", () => {
    const base = { ...llama, hidden_size: 32, num_attention_heads: 4, max_position_embeddings: 1024 };
    const cfg = configFromHf({ ...base, rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 256 } }, "c");
    expect(cfg.rope!.scaling).toEqual({
      type: "yarn", factor: 4, attentionFactor: 0.1 * Math.log(4) + 1, betaFast: 32, betaSlow: 1, originalMaxPositions: 256, truncate: true,
    });
    // The whole extended context runs: YaRN's frequencies are the same at every position.
    expect(cfg.maxPositions).toBe(1024);
    // Pairs turning 32 and 1 times over 256 positions sit at pair indices 0.1 and 1.6, rounded out
    // to 0 and 2: pair 0 keeps its frequency, pair 1 is half kept, pairs 2 and 3 are slowed 4-fold.
    const inv = rotaryInverseFrequencies(cfg.rope!, 8);
    [1, 0.5 * 0.1 + 0.5 * 0.1 / 4, 0.01 / 4, 0.001 / 4].forEach((v, i) => expect(inv[i]).toBeCloseTo(v, 7));
    const yarn = (extra: Record<string, unknown>) => configFromHf({ ...base, rope_parameters: { rope_type: "yarn", rope_theta: 10000, ...extra } }, "c").rope!.scaling;
    // No factor: max_position_embeddings over the original context.
    expect(yarn({ original_max_position_embeddings: 128 })).toMatchObject({ factor: 8, attentionFactor: 0.1 * Math.log(8) + 1 });
    expect(yarn({ factor: 4, attention_factor: 1.5, beta_fast: 8, beta_slow: 2, truncate: false })).toMatchObject({ attentionFactor: 1.5, betaFast: 8, betaSlow: 2, truncate: false });
    const m = (s: number, k: number) => 0.1 * k * Math.log(s) + 1;
    expect(yarn({ factor: 40, mscale: 1, mscale_all_dim: 0.707 })).toMatchObject({ attentionFactor: m(40, 1) / m(40, 0.707) });
    expect(() => yarn({ factor: -2 })).toThrow(/c: rope_scaling.factor must be a positive number, got -2/);
    expect(() => yarn({ factor: 2, truncate: "no" })).toThrow(/c: rope_scaling.truncate must be true or false/);
  });

  it("Gemma 3 in transformers 5's layout: rope_parameters per layer kind, global and local read apart", () => {
    const gemma3 = { ...llama, model_type: "gemma3_text", hidden_size: 32, head_dim: 16, layer_types: ["sliding_attention"] };
    const perKind = { full_attention: { rope_type: "linear", rope_theta: 1e6, factor: 8 }, sliding_attention: { rope_type: "default", rope_theta: 1e4 } };
    const cfg = configFromHf({ ...gemma3, rope_parameters: perKind }, "c");
    expect(cfg.rope).toEqual({ theta: 1e6, partialFactor: 1, scaling: { type: "linear", factor: 8 } });
    expect(cfg.localRope).toEqual({ theta: 1e4, partialFactor: 1, scaling: { type: "default" } });
    // transformers 4's layout: the scaling is the global layers', the local ones turn unscaled at their own base.
    const v4 = configFromHf({ ...gemma3, rope_theta: 1e6, rope_scaling: { rope_type: "linear", factor: 8 }, rope_local_base_freq: 5e3 }, "c");
    expect([v4.rope, v4.localRope]).toEqual([cfg.rope, { theta: 5e3, partialFactor: 1, scaling: { type: "default" } }]);
    expect(() => configFromHf({ ...gemma3, rope_parameters: { sliding_attention: perKind.sliding_attention } }, "c"))
      .toThrow(/c: "rope_parameters" has settings for sliding_attention layers, none for full_attention/);
  });

  it("llama3 frequencies: short wavelengths kept, long ones slowed by the factor, the band between blended", () => {
    const spec = { theta: 100, partialFactor: 1, scaling: { type: "llama3" as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 8, originalMaxPositions: 64 } };
    const inv = rotaryInverseFrequencies(spec, 8);
    const base = [1, 100 ** -0.25, 100 ** -0.5, 100 ** -0.75];
    expect(inv[0]).toBeCloseTo(1, 7); // wavelength 2 pi < 64 / 8
    expect(inv[3]).toBeCloseTo(base[3]! / 8, 7); // wavelength 199 > 64
    // wavelength 19.9: smooth = (64 / 19.87 - 1) / 7
    const smooth = (64 / ((2 * Math.PI) / base[1]!) - 1) / 7;
    expect(inv[1]).toBeCloseTo((1 - smooth) * (base[1]! / 8) + smooth * base[1]!, 6);
  });

  it("multimodal Gemma 3 checkpoints: the language model under either prefix, the vision tower left out", async () => {
    const textOnly = writeTinyGemma(join(dir, "g3-text"), { gemma3: true, seed: 8 });
    const want = (await loadModel(textOnly)).model;
    const tokens = randomTokens(3, 9, want.cfg.vocabSize);
    const logits = want.forward(tokens, 1, 9).logits!;
    for (const prefix of ["language_model.model.", "model.language_model."]) {
      const { model } = await loadModel(writeTinyGemma3Multimodal(join(dir, `g3-mm-${prefix.replace(/\W/g, "")}`), textOnly, prefix));
      expect(model.cfg).toEqual(want.cfg);
      expect(model.forward(tokens, 1, 9).logits).toEqual(logits);
    }
    expect(() => configFromHf({ model_type: "gemma3" }, "c")).toThrow(/needs a "text_config" object/);
    // Unset text settings take Gemma3TextConfig's defaults.
    expect(configFromHf({ model_type: "gemma3", text_config: { hidden_size: 2560, num_hidden_layers: 34, intermediate_size: 10240 } }, "c"))
      .toMatchObject({ vocabSize: 262208, nHeads: 8, nKvHeads: 4, dHead: 256, queryPreAttnScalar: 256, maxPositions: 4096, bosTokenId: 2 });
  });

  it("Ministral 3: contexts held to its original one, its default rotary, and the language model of a Mistral 3 checkpoint", async () => {
    const textOnly = writeTinyLlama(join(dir, "ministral3"), { seed: 47, config: MINISTRAL3 });
    const want = (await loadModel(textOnly)).model;
    expect(want.cfg.maxPositions).toBe(16);
    expect(want.cfg.rope!.scaling).toMatchObject({ type: "yarn", factor: 4, attentionFactor: 1, originalMaxPositions: 16 });
    const tokens = randomTokens(5, 12, want.cfg.vocabSize);
    const logits = want.forward(tokens, 1, 12).logits!;
    const { model } = await loadModel(writeTinyMultimodal(join(dir, "mistral3"), textOnly, "model.language_model.", {
      architectures: ["Mistral3ForConditionalGeneration"], model_type: "mistral3", vision_config: { model_type: "pixtral" },
    }));
    expect(model.cfg).toEqual(want.cfg);
    expect(model.forward(tokens, 1, 12).logits).toEqual(logits);
    // Ministral3Config's own rotary when the config gives none: YaRN from 16k positions, factor 16.
    const bare = { ...llama, model_type: "ministral3", max_position_embeddings: 262144 };
    expect(configFromHf(bare, "c")).toMatchObject({ maxPositions: 16384, rope: { theta: 1e6, scaling: { type: "yarn", factor: 16, originalMaxPositions: 16384 } } });
    expect(() => configFromHf({ model_type: "mistral3" }, "c")).toThrow(/c: a mistral3 config needs a "text_config" object/);
  });

  it("Qwen2-VL, Qwen2.5-VL and Qwen3-VL: the language model on text, its M-RoPE the plain rotary, in either config layout", async () => {
    const qwen2 = writeTinyLlama(join(dir, "vl-qwen2"), { seed: 50, qkvBias: true, tied: true,
      config: { model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], use_sliding_window: false } });
    const qwen3 = writeTinyLlama(join(dir, "vl-qwen3"), { seed: 51, qkNorm: true });
    const tokens = randomTokens(6, 11, 300);
    for (const [name, textOnly, modelType, textType] of [["qwen2_5_vl", qwen2, "qwen2_5_vl", "qwen2_5_vl_text"], ["qwen3_vl", qwen3, "qwen3_vl", "qwen3_vl_text"]] as const) {
      const want = (await loadModel(textOnly)).model;
      const logits = want.forward(tokens, 1, 11).logits!;
      // transformers 5's layout: text_config with M-RoPE sections, weights under model.language_model., the vision tower under model.visual.
      const folder = writeTinyMultimodal(join(dir, `${name}-v5`), textOnly, "model.language_model.", { model_type: modelType, vision_config: { depth: 1 } }, [], "model.visual.");
      const cfgPath = join(folder, "config.json");
      const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
      cfg.text_config = { ...cfg.text_config, model_type: textType, rope_theta: undefined,
        rope_parameters: { rope_type: "default", rope_theta: 10000, mrope_section: [1, 1, 2], mrope_interleaved: modelType === "qwen3_vl" } };
      writeFileSync(cfgPath, JSON.stringify(cfg));
      const v5 = (await loadModel(folder)).model;
      expect(v5.cfg).toEqual(want.cfg);
      expect(v5.forward(tokens, 1, 11).logits, name).toEqual(logits);
    }
    // Qwen2.5-VL as first published: the text settings at the top level, "mrope" scaling, weights under model. and visual.
    const text = JSON.parse(readFileSync(join(qwen2, "config.json"), "utf8"));
    const folder = writeTinyMultimodal(join(dir, "qwen2_5_vl-v4"), qwen2, "model.", {}, [], "visual.");
    writeFileSync(join(folder, "config.json"), JSON.stringify({ ...text, model_type: "qwen2_5_vl", architectures: ["Qwen2_5_VLForConditionalGeneration"],
      rope_scaling: { type: "mrope", mrope_section: [1, 1, 2] }, vision_config: { depth: 1 } }));
    const v4 = (await loadModel(folder)).model;
    expect(v4.forward(tokens, 1, 11).logits).toEqual((await loadModel(qwen2)).model.forward(tokens, 1, 11).logits);
  });

  it("Granite 4.0 (granitemoehybrid): attention-only models run, with their shared MLP and positions as configured; Mamba-2 layers refused by name", () => {
    const base = { ...llama, model_type: "granitemoehybrid", num_hidden_layers: 2, layer_types: ["attention", "attention"], shared_intermediate_size: 24,
      num_local_experts: 0, embedding_multiplier: 12, attention_multiplier: 0.01, residual_multiplier: 0.2, logits_scaling: 8, position_embedding_type: "rope" };
    expect(configFromHf(base, "c")).toMatchObject({ dMlp: 24, embedScale: 12, attentionMultiplier: 0.01, residualScale: 0.2, logitScale: 0.125 });
    expect(configFromHf(base, "c").noRope).toBeUndefined();
    expect(configFromHf(base, "c").moe).toBeUndefined();
    expect(configFromHf({ ...base, position_embedding_type: null }, "c").noRope).toEqual([true, true]);
    expect(configFromHf({ ...base, num_local_experts: 4, num_experts_per_tok: 2, intermediate_size: 16 }, "c").moe)
      .toMatchObject({ experts: 4, topK: 2, normTopK: true, dExpert: 16, dShared: 24, ungatedShared: true });
    // Granite 4.0-H: Mamba-2 in its "mamba" layers (every layer when none are listed).
    const h = { ...base, hidden_size: 64, layer_types: ["mamba", "attention"], mamba_n_heads: 8, mamba_n_groups: 2, mamba_d_state: 16, mamba_expand: 2 };
    expect(configFromHf(h, "c").mamba).toEqual({ heads: 8, headDim: 16, groups: 2, dState: 16, convKernel: 4, gate: "gate-then-norm", normGroups: 1, layers: [true, false] });
    expect(configFromHf({ ...h, layer_types: undefined }, "c").mamba!.layers).toEqual([true, true]);
    expect(configFromHf(base, "c").mamba).toBeUndefined();
    expect(() => configFromHf({ ...h, mamba_n_heads: 6 }, "c")).toThrow(/c: 6 Mamba heads of .* do not make its 128 channels/);
    expect(() => configFromHf({ ...h, mamba_n_groups: 3 }, "c")).toThrow(/mamba_n_heads \(8\) must be a multiple of mamba_n_groups \(3\)/);
    expect(() => configFromHf({ ...h, mamba_proj_bias: true }, "c")).toThrow(/mamba_proj_bias \(biases on Mamba-2's projections\) is not supported/);
    expect(() => configFromHf({ ...h, time_step_limit: [0.001, 0.1] }, "c")).toThrow(/time_step_limit \[0.001,0.1\] \(dt clamped\) is not supported/);
    // The default (0, inf) as transformers 5 writes it.
    expect(configFromHf({ ...h, time_step_limit: [0, { __float__: "Infinity" }] }, "c").mamba).toBeDefined();
    expect(() => configFromHf({ ...h, layer_types: ["mamba", "rwkv"] }, "c")).toThrow(/layer type "rwkv" is not supported \(mamba, attention\)/);
  });

  it("reads config.json as Python's json module writes it: bare Infinity, -Infinity and NaN are numbers, in strings they stay words", () => {
    const j = parseJson('{"time_step_limit": [0.0, Infinity], "x": [-Infinity, NaN], "s": "NaN or Infinity", "t": "-Infinity"}', "c");
    expect(j.time_step_limit).toEqual([0, Infinity]);
    expect(j.x).toEqual([-Infinity, NaN]);
    expect([j.s, j.t]).toEqual(["NaN or Infinity", "-Infinity"]);
    // transformers 4's Mamba-2 default, as it saved it: (0, inf) clamps nothing; a finite limit still does and is refused.
    const base = { ...llama, model_type: "falcon_h1", hidden_size: 64, mamba_n_heads: 8, mamba_d_state: 16 };
    expect(configFromHf({ ...base, ...parseJson('{"time_step_limit": [0.0, Infinity]}', "c") }, "c").mamba).toBeDefined();
    expect(() => configFromHf({ ...base, time_step_limit: [0, 0.1] }, "c")).toThrow(/time_step_limit \[0,0.1\] \(dt clamped\) is not supported/);
    // Where a finite number is needed, an infinite one is refused by name.
    expect(() => configFromHf({ ...base, ...parseJson('{"rms_norm_eps": NaN}', "c") }, "c")).toThrow(/"rms_norm_eps" must be a number, got NaN/);
    expect(() => parseJson('{"a": Infinit}', "c")).toThrow(/c: not valid JSON/);
  });

  it("Falcon-H1: Mamba-2 beside attention in every layer, its gate and norm from mamba_rms_norm and mamba_norm_before_gate, its multipliers", async () => {
    const base = { ...llama, model_type: "falcon_h1", hidden_size: 64, num_hidden_layers: 2, mamba_n_heads: 8, mamba_d_state: 16, mamba_n_groups: 2 };
    const c = configFromHf(base, "c");
    // mamba_expand x hidden_size channels unless mamba_d_ssm says otherwise; FalconH1Config's defaults: no norm, and before the gate when there is one.
    expect(c.mamba).toEqual({ heads: 8, headDim: 16, groups: 2, dState: 16, convKernel: 4, gate: "gate", normGroups: 2, layers: [true, true], parallel: true });
    expect(configFromHf({ ...base, mamba_d_ssm: 96 }, "c").mamba).toMatchObject({ heads: 8, headDim: 12 });
    expect(configFromHf({ ...base, mamba_rms_norm: true }, "c").mamba!.gate).toBe("norm-then-gate");
    expect(configFromHf({ ...base, mamba_rms_norm: true, mamba_norm_before_gate: false }, "c").mamba!.gate).toBe("gate-then-norm");
    expect(c.falconH1).toEqual({ attentionIn: 1, key: 1, attentionOut: 1, ssmIn: 1, ssmOut: 1, ssm: [1, 1, 1, 1, 1], mlpGate: 1, mlpDown: 1 });
    expect(configFromHf({ ...base, embedding_multiplier: 5.5, lm_head_multiplier: 0.04, mlp_multipliers: [0.9, 0.6] }, "c"))
      .toMatchObject({ embedScale: 5.5, logitScale: 0.04, falconH1: { mlpGate: 0.9, mlpDown: 0.6 } });
    // Every layer has attention heads (attn.hook_z) as well as its Mamba-2.
    expect(hookNamesOf(c).filter((n) => n.endsWith("attn.hook_z"))).toEqual(["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]);
    expect(() => configFromHf({ ...base, ssm_multipliers: [1, 2] }, "c")).toThrow(/c: "ssm_multipliers" must be a list of 5 finite numbers, got \[1,2\]/);
    expect(() => configFromHf({ ...base, projectors_bias: true }, "c")).toThrow(/projectors_bias .* is not supported/);
    expect(() => configFromHf({ ...base, hidden_act: "gelu" }, "c")).toThrow(/hidden_act must be silu for falcon_h1/);
    expect(() => configFromHf({ ...base, mamba_d_state: 1e9 }, "c")).toThrow(/the Mamba state size 1000000000 must be a positive integer of at most/);
  });

  it("LFM2: convolution layers from layer_types or full_attn_idxs, Lfm2MLP's width, its names read as Llama's", () => {
    const base = { ...llama, model_type: "lfm2", num_hidden_layers: 4, hidden_size: 64, num_attention_heads: 4, norm_eps: 1e-5 };
    const c = configFromHf({ ...base, full_attn_idxs: [1, 3], block_ff_dim: 768, block_multiple_of: 256 }, "c");
    // 768 -> two thirds, 512, times the default multiplier 1.0 and rounded to 256: 512.
    expect(c).toMatchObject({ dMlp: 512, dHead: 16, qkNorm: "head", tiedEmbeddings: true, shortConv: { kernel: 3, layers: [true, false, true, false] }, rope: { theta: 1e6 } });
    expect(configFromHf({ ...base, block_ff_dim: 1000, block_multiple_of: 256, block_ffn_dim_multiplier: 1.5 }, "c").dMlp).toBe(1024); // 666 x 1.5 = 999 -> 1024
    expect(configFromHf({ ...base, block_ff_dim: 1000, block_ffn_dim_multiplier: null }, "c").dMlp).toBe(666);
    expect(configFromHf({ ...base, block_ff_dim: 1000, block_auto_adjust_ff_dim: false }, "c").dMlp).toBe(1000);
    // Lfm2Config with neither layer_types nor full_attn_idxs: every layer attention.
    expect(configFromHf(base, "c").shortConv!.layers).toEqual([false, false, false, false]);
    expect(configFromHf({ ...base, layer_types: ["conv", "conv", "full_attention", "conv"] }, "c").shortConv!.layers).toEqual([true, true, false, true]);
    expect(configFromHf({ ...base, tie_embedding: false }, "c").tiedEmbeddings).toBe(false);
    expect(() => configFromHf({ ...base, conv_bias: true }, "c")).toThrow(/c: conv_bias \(biases on LFM2's convolution blocks\) is not supported/);
    expect(() => configFromHf({ ...base, full_attn_idxs: [4] }, "c")).toThrow(/"full_attn_idxs" must list layer indices below 4/);
    expect(() => configFromHf({ ...base, layer_types: ["conv", "mamba", "conv", "conv"] }, "c")).toThrow(/layer type "mamba" is not supported \(conv, full_attention\)/);
    // LFM2-MoE: dense layers of intermediate_size as given, then sigmoid-routed experts chosen with a bias.
    const moe = configFromHf({ ...base, model_type: "lfm2_moe", layer_types: ["conv", "full_attention", "conv", "conv"], intermediate_size: 100 }, "c");
    expect(moe).toMatchObject({ dMlp: 100, shortConv: { layers: [true, false, true, true] } });
    expect(moe.moe).toEqual({ experts: 32, topK: 4, normTopK: true, dExpert: 1792, dShared: 0, layers: [false, false, true, true], scoring: "sigmoid", routedScale: 1, expertBias: true });
    expect(configFromHf({ ...base, model_type: "lfm2_moe", num_dense_layers: 1, use_expert_bias: false, norm_topk_prob: false, routed_scaling_factor: 2 }, "c").moe)
      .toMatchObject({ layers: [false, true, true, true], expertBias: false, normTopK: false, routedScale: 2 });
  });

  it("Qwen3.5: linear-attention layers from layer_types or full_attention_interval, their shape, and the multimodal checkpoints' language model", async () => {
    const base = { ...llama, model_type: "qwen3_5_text", num_hidden_layers: 8, head_dim: 16, linear_num_key_heads: 2, linear_num_value_heads: 4 };
    const c = configFromHf(base, "c");
    expect(c).toMatchObject({ qkNorm: "head", offsetNorms: true, attnOutputGate: true, rotaryDims: 4,
      linearAttention: { kHeads: 2, vHeads: 4, dk: 128, dv: 128, convKernel: 4, layers: [true, true, true, false, true, true, true, false] } });
    expect(configFromHf({ ...base, full_attention_interval: 2 }, "c").linearAttention!.layers).toEqual([true, false, true, false, true, false, true, false]);
    expect(() => configFromHf({ ...base, full_attention_interval: 0 }, "c")).toThrow(/c: "full_attention_interval" must be at least 1/);
    expect(() => configFromHf({ ...base, layer_types: ["linear_attention"] }, "c")).toThrow(/c: "layer_types" has 1 entries for 8 layers/);
    expect(() => configFromHf({ ...base, layer_types: Array(8).fill("sliding_attention") }, "c")).toThrow(/layer type "sliding_attention" is not supported \(linear_attention, full_attention\)/);
    expect(() => configFromHf({ ...base, linear_num_value_heads: 3 }, "c")).toThrow(/c: linear_num_value_heads \(3\) must be a multiple of linear_num_key_heads \(2\)/);
    // Qwen3_5ForConditionalGeneration: text_config, the language model under model.language_model., the vision tower beside.
    const textOnly = writeTinyQwen35(join(dir, "qwen35-text"), { seed: 52 });
    const folder = writeTinyMultimodal(join(dir, "qwen35-vl"), textOnly, "model.language_model.",
      { model_type: "qwen3_5", architectures: ["Qwen3_5ForConditionalGeneration"], vision_config: { depth: 1 }, tie_word_embeddings: false }, [], "model.visual.");
    const want = (await loadModel(textOnly)).model, got = (await loadModel(folder)).model;
    expect(got.cfg).toEqual(want.cfg);
    const tokens = randomTokens(7, 9, 300);
    expect(got.forward(tokens, 1, 9).logits).toEqual(want.forward(tokens, 1, 9).logits);
    // Checkpoints carry a multi-token prediction module (mtp.*), which transformers and saekit leave out.
    const withMtp = writeTinyQwen35(join(dir, "qwen35-mtp"), { seed: 52 });
    const file = join(withMtp, "model.safetensors"), weights = SafetensorsFile.open(file);
    writeSafetensors(file, {
      ...Object.fromEntries(weights.names().map((n) => [n, { shape: [...weights.shape(n)], data: weights.read(n).data }])),
      "mtp.fc.weight": { shape: [32, 64], data: new Float32Array(32 * 64) },
    }, { format: "pt" });
    expect((await loadModel(withMtp)).model.forward(tokens, 1, 9).logits).toEqual(want.forward(tokens, 1, 9).logits);
    // No heads' mix of values in a DeltaNet layer: attn.hook_z only in the attention layers.
    expect(want.hookNames().filter((n) => n.endsWith("attn.hook_z"))).toEqual(["blocks.1.attn.hook_z"]);
  });

  it("gemma3_text: local layers from layer_types or, in older configs, sliding_window_pattern", () => {
    const base = {
      model_type: "gemma3_text", vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_key_value_heads: 1,
      head_dim: 4, num_hidden_layers: 12, max_position_embeddings: 32768, sliding_window: 512, rope_theta: 1000000, rope_local_base_freq: 10000,
    };
    const old = configFromHf({ ...base, sliding_window_pattern: 6 }, "c");
    expect(old.localLayers!.flatMap((local, i) => (local ? [] : [i]))).toEqual([5, 11]);
    expect(old).toMatchObject({ maxPositions: 512, qkNorm: "head", attnSoftcap: 0, finalSoftcap: 0, rope: { theta: 1000000 }, localRope: { theta: 10000 } });
    const types = Array.from({ length: 12 }, (_, i) => (i === 0 ? "full_attention" : "sliding_attention"));
    expect(configFromHf({ ...base, layer_types: types }, "c").localLayers).toEqual(types.map((t) => t === "sliding_attention"));
    expect(() => configFromHf({ ...base, layer_types: ["chunked_attention"] }, "c")).toThrow(/"layer_types" has 1 entries for 12 layers/);
  });

  it("caps contexts at a sliding window and refuses what it cannot run, naming it", () => {
    const neo = { model_type: "gpt_neo", vocab_size: 10, hidden_size: 8, num_heads: 2, num_layers: 2, max_position_embeddings: 2048, window_size: 256 };
    expect(configFromHf({ ...neo, attention_types: [[["global", "local"], 1]] }, "c").maxPositions).toBe(256);
    expect(configFromHf({ ...neo, attention_types: [[["global"], 2]] }, "c").maxPositions).toBe(2048);
    expect(() => configFromHf({ ...neo, attention_types: [[["sparse"], 2]] }, "c")).toThrow(/attention type "sparse" is not supported/);
    expect(configFromHf({ ...llama, model_type: "mistral", sliding_window: 1024 }, "c").maxPositions).toBe(1024);
    expect(configFromHf({ ...llama, model_type: "mistral", sliding_window: null }, "c").maxPositions).toBe(4096);
    expect(configFromHf({ ...llama, model_type: "qwen2", sliding_window: 1024, use_sliding_window: false }, "c").maxPositions).toBe(4096);
    expect(() => configFromHf({ ...llama, rope_scaling: { rope_type: "ntk-by-parts", factor: 4 } }, "m/config.json")).toThrow(/m\/config.json: rope type "ntk-by-parts" is not supported \(default, linear, dynamic, llama3, longrope, yarn, mrope\)/);
    expect(() => configFromHf({ ...llama, rope_scaling: { rope_type: "llama3", factor: 8 } }, "c")).toThrow(/rope_scaling.low_freq_factor must be a positive number/);
    expect(() => configFromHf({ ...llama, hidden_act: "gelu" }, "c")).toThrow(/hidden_act must be silu/);
    expect(() => configFromHf({ ...llama, hidden_act: "quick_gelu" }, "c")).toThrow(/hidden_act "quick_gelu" is not supported/);
  });
});

describe("benchmark presets", () => {
  it("are valid configurations whose random models run (at a reduced width)", () => {
    for (const [name, cfg] of Object.entries(PRESETS)) {
      validateLmConfig(cfg, name);
      // Same architecture and options, small enough for a test.
      const small = {
        ...cfg, vocabSize: 300, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: cfg.nKvHeads === cfg.nHeads ? 4 : 2, dHead: 8, dMlp: 48,
        rotaryDims: cfg.rotaryDims ? Math.min(cfg.rotaryDims, 8) : 0, ...(cfg.embedScale ? { embedScale: Math.sqrt(32) } : {}),
        ...(cfg.mamba ? { mamba: { ...cfg.mamba, heads: 4, headDim: 8, dState: 6, layers: [true, true] } } : {}),
      };
      const model = randomModel(small, 1, 0.5);
      const logits = model.forward(randomTokens(2, 2 * 9, 300), 2, 9).logits!;
      expect(logits.every(Number.isFinite), name).toBe(true);
      if (cfg.finalSoftcap) expect(Math.max(...logits.map(Math.abs)), name).toBeLessThan(cfg.finalSoftcap);
    }
    expect(Object.keys(PRESETS)).toContain("gemma-2-2b");
    // Falcon-H1-0.5B's config.json, read as a checkpoint's would be: Mamba-2 beside attention in all 36 layers.
    expect(PRESETS["falcon-h1-0.5b"]).toMatchObject({
      nLayers: 36, dModel: 1024, dMlp: 2048, nHeads: 8, nKvHeads: 2, dHead: 64, vocabSize: 32784, logitScale: 0.0390625,
      mamba: { heads: 24, headDim: 64, dState: 128, groups: 1, gate: "gate", parallel: true }, falconH1: { ssmOut: 0.23570226039551587 },
    });
  });
});

describe("mixtures of experts", () => {
  it("have no mlp.hook_post in their MoE layers, keep expert matrices as bfloat16, and load only the blocks hooks need", async () => {
    const path = writeTinyLlama(join(dir, "moe-qwen2"), { seed: 43, layers: 3, moe: { type: "qwen2_moe", experts: 4, topK: 2, dExpert: 16, mlpOnly: [1] } });
    const { model } = await loadModel(path);
    const names = model.hookNames();
    expect(names).not.toContain("blocks.0.mlp.hook_post");
    expect(names).toContain("blocks.1.mlp.hook_post");
    expect(() => model.checkHook("blocks.2.mlp.hook_post")).toThrow(/has no hook point "blocks\.2\.mlp\.hook_post".*not in mixture-of-experts layers/);
    const tokens = randomTokens(44, 2 * 7, model.cfg.vocabSize);
    // hook_mlp_out is the mixture's output: what the block adds to the stream.
    const mid = model.activationAt(tokens, 2, 7, "blocks.0.hook_resid_mid").slice();
    const out = model.activationAt(tokens, 2, 7, "blocks.0.hook_mlp_out").slice();
    const post = model.activationAt(tokens, 2, 7, "blocks.0.hook_resid_post").slice();
    expect(maxAbsDiff(post, mid.map((v, i) => v + out[i]!))).toBeLessThan(1e-5 * maxAbs(post));

    const half = (await loadModel(path, { weights: "bf16" })).model;
    const rounded = (await loadModel(path)).model;
    rounded.storeWeightsAs("bf16");
    rounded.storeWeightsAs("f32");
    expect(half.weights.blocks[0]!.moe!.experts[3]!.wdown).toBeInstanceOf(Uint16Array);
    expect(half.weightBytes()).toBeLessThan(0.6 * model.weightBytes());
    expect(half.forward(tokens, 2, 7).logits).toEqual(rounded.forward(tokens, 2, 7).logits);

    const early = (await loadModel(path, { hooks: ["blocks.0.hook_mlp_out"] })).model;
    expect(early.parts).toEqual({ blocks: 1, finalNorm: false, unembed: false });
    expect(early.activationAt(tokens, 2, 7, "blocks.0.hook_mlp_out").slice()).toEqual(out);
  });
});
