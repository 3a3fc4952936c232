/**
 * The gradient of a model's loss with respect to an activation spliced in at a hook
 * (splice-backward.ts), checked against the model's own forward pass: the loss equals what
 * the forward gives with the activation swapped in by a hook, recomputed in float64 from
 * the logits, and the gradient's projection on random directions equals central finite
 * differences of that loss. Every supported layout: GPT-NeoX (parallel residual, partial
 * rotary, LayerNorm, exact GELU), GPT-2 (sequential, learned positions, tanh GELU), Llama
 * (RMSNorm, SwiGLU, grouped-query attention, rotate-half rotary) with and without biases,
 * Qwen 3 (per-head q/k norms), Gemma (GeGLU), Gemma 2 (soft-capped attention and output
 * logits, norms after attention and MLP), Gemma 3 (those norms, q/k norms, local layers
 * with their own rotary) and GPT-Neo (unscaled attention, local layers), at residual-stream
 * and block-output hooks (mid-block ones too), for both losses.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { loadModel } from "../../src/lm/load.js";
import type { LanguageModel } from "../../src/lm/model.js";
import { SpliceBackward, type SpliceLossKind } from "../../src/lm/splice-backward.js";
import { randn, tempDir } from "../helpers.js";
import { writeTinyGemma, writeTinyGpt2, writeTinyGptJ, writeTinyGptNeo, writeTinyLlama, writeTinyNeox, writeTinyLfm2, writeTinyPhi, writeTinyQwen35 } from "./fixtures.js";

/** log softmax of a row, in float64. */
function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}

/** Each block's output stream after `hook`'s block, with `act` swapped in (or clean). */
function laterStreams(model: LanguageModel, tokens: Int32Array, batch: number, seq: number, hook: string, act: Float32Array | null): { logits: Float32Array; streams: Float32Array[] } {
  const first = Number(/^blocks\.(\d+)\./.exec(hook)![1]) + (hook.endsWith("resid_pre") ? 0 : 1);
  const streams: Float32Array[] = [];
  const hooks: Record<string, (a: Float32Array) => Float32Array | void> = act ? { [hook]: () => act } : {};
  for (let l = first; l < model.cfg.nLayers; l++) hooks[`blocks.${l}.hook_resid_post`] = (a) => { streams.push(a.slice()); };
  return { logits: model.forward(tokens, batch, seq, { hooks }).logits!, streams };
}

/**
 * The loss with `act` swapped in at `hook` by the forward pass's own hook, in float64 from
 * the logits, plus `downstream` / blocks times the blocks' mean squared distances from clean.
 */
function lossBySwap(model: LanguageModel, tokens: Int32Array, batch: number, seq: number, hook: string, act: Float32Array | null, loss: SpliceLossKind,
  clean: Float32Array, downstream = 0, cleanStreams: Float32Array[] = []): number {
  const V = model.cfg.vocabSize;
  const { logits, streams } = laterStreams(model, tokens, batch, seq, hook, act);
  let ds = 0;
  streams.forEach((s, l) => {
    for (let i = 0; i < s.length; i++) ds += (s[i]! - cleanStreams[l]![i]!) ** 2;
  });
  ds *= downstream / Math.max(1, streams.length) / (batch * seq);
  let total = 0;
  let count = 0;
  for (let r = 0; r < batch * seq; r++) {
    const lq = logSoftmax(logits.subarray(r * V, (r + 1) * V));
    if (loss === "ce") {
      if (r % seq === seq - 1) continue;
      total -= lq[tokens[r + 1]!]!;
    } else {
      const lp = logSoftmax(clean.subarray(r * V, (r + 1) * V));
      for (let v = 0; v < V; v++) total += Math.exp(lp[v]!) * (lp[v]! - lq[v]!);
    }
    count++;
  }
  return total / count + ds;
}

const dir = tempDir();
const models = {
  neox: () => writeTinyNeox(join(dir, "neox"), { seed: 2 }),
  gpt2: () => writeTinyGpt2(join(dir, "gpt2"), { seed: 4 }),
  llama: () => writeTinyLlama(join(dir, "llama"), { seed: 6 }),
  "llama+biases": () => writeTinyLlama(join(dir, "llama-b"), { seed: 7, allBiases: true }),
  qwen3: () => writeTinyLlama(join(dir, "qwen3"), { seed: 8, qkNorm: true }),
  gemma: () => writeTinyGemma(join(dir, "gemma"), { seed: 9 }),
  gemma3: () => writeTinyGemma(join(dir, "gemma3"), { seed: 10, gemma3: true }),
  gemma2: () => writeTinyGemma(join(dir, "gemma2"), { seed: 12, gemma2: true }),
  vaultgemma: () => writeTinyGemma(join(dir, "vaultgemma"), { seed: 16, vault: true }),
  gptneo: () => writeTinyGptNeo(join(dir, "gptneo"), { seed: 13 }),
  gptj: () => writeTinyGptJ(join(dir, "gptj"), { seed: 23 }),
  phi: () => writeTinyPhi(join(dir, "phi"), { seed: 24, kvHeads: 2 }),
  glm4: () => writeTinyLlama(join(dir, "glm4"), { seed: 29, glm: { v4: true } }),
  mixtral: () => writeTinyLlama(join(dir, "mixtral"), { seed: 25, moe: { type: "mixtral", experts: 4, topK: 2, dExpert: 24 } }),
  qwen2moe: () => writeTinyLlama(join(dir, "qwen2moe"), { seed: 26, layers: 3, moe: { type: "qwen2_moe", experts: 4, topK: 2, dExpert: 16, dShared: 20, mlpOnly: [1] } }),
  olmoe: () => writeTinyLlama(join(dir, "olmoe"), { seed: 27, moe: { type: "olmoe", experts: 5, topK: 2, dExpert: 16 } }),
  qwen35: () => writeTinyQwen35(join(dir, "qwen35"), { seed: 34, layers: ["linear_attention", "full_attention", "linear_attention"] }),
  lfm2: () => writeTinyLfm2(join(dir, "lfm2"), { seed: 35 }),
  granite4: () => writeTinyLlama(join(dir, "granite4"), { seed: 37, granite4: { experts: { count: 4, topK: 2, width: 16 } } }),
  granite4h: () => writeTinyLlama(join(dir, "granite4h"), { seed: 38, layers: 3, granite4: { mamba: [0, 2] } }),
  stablelmqk: () => writeTinyLlama(join(dir, "stablelmqk"), { seed: 40, stablelm: { qkLayernorm: true } }),
  cohereqk: () => writeTinyLlama(join(dir, "cohereqk"), { seed: 41, cohere: { qkNorm: true } }),
  falconh1: () => writeTinyLlama(join(dir, "falconh1"), { seed: 39, falconH1: { norm: "before-gate" } }),
  lfm2moe: () => writeTinyLfm2(join(dir, "lfm2moe"), { seed: 36, moe: { experts: 4, topK: 2, dExpert: 16, dense: 1, scale: 1.5 } }),
  olmoeclip: () => writeTinyLlama(join(dir, "olmoeclip"), { seed: 31, moe: { type: "olmoe", experts: 4, topK: 2, dExpert: 16, clipQkv: 0.9 } }),
  granitemoe: () => writeTinyLlama(join(dir, "granitemoe"), { seed: 28, moe: { type: "granitemoe", experts: 4, topK: 2, dExpert: 16 },
    config: { embedding_multiplier: 3, attention_multiplier: 0.3, residual_multiplier: 0.4, logits_scaling: 2.5 } }),
  olmo2: () => writeTinyLlama(join(dir, "olmo2"), { seed: 14, olmo2: true }),
  olmo: () => writeTinyLlama(join(dir, "olmo"), { seed: 17, olmo: { clipQkv: 2 } }),
  phi3: () => writeTinyLlama(join(dir, "phi3"), { seed: 18, phi3: { partialRotary: 0.75, longrope: [1, 2, 3] } }),
  smollm3: () => writeTinyLlama(join(dir, "smollm3"), { seed: 19, smollm3: { noRope: [1] } }),
  olmo3: () => writeTinyLlama(join(dir, "olmo3"), { seed: 20, olmo2: true, olmo3: true }),
  stablelm: () => writeTinyLlama(join(dir, "stablelm"), { seed: 22, stablelm: { parallel: true } }),
  cohere2: () => writeTinyLlama(join(dir, "cohere2"), { seed: 33, cohere: { v2: true } }),
  granite: () => writeTinyLlama(join(dir, "granite"), { seed: 21, config: {
    model_type: "granite", embedding_multiplier: 3, attention_multiplier: 0.3, residual_multiplier: 0.4, logits_scaling: 2.5 } }),
};
/** Model, hook, loss, downstream coefficient, and the finite-difference step where not 2e-3. */
const cases: Array<[keyof typeof models, string, SpliceLossKind, number, number?]> = [
  ["neox", "blocks.0.hook_resid_post", "ce", 0],
  ["neox", "blocks.1.hook_attn_out", "kl", 0],
  ["neox", "blocks.0.hook_mlp_out", "ce", 0],
  ["neox", "blocks.0.hook_resid_pre", "kl", 0.05],
  ["gpt2", "blocks.0.hook_resid_pre", "ce", 0],
  ["gpt2", "blocks.1.hook_mlp_out", "kl", 0],
  ["gpt2", "blocks.0.hook_resid_post", "ce", 0.1],
  ["llama", "blocks.0.hook_resid_post", "kl", 0],
  ["llama", "blocks.1.hook_resid_post", "ce", 0],
  ["llama+biases", "blocks.1.hook_resid_pre", "ce", 0],
  ["llama+biases", "blocks.0.hook_mlp_out", "kl", 0.2],
  // Mid-block in sequential blocks: the attention's output, which the block's own MLP reads.
  ["gpt2", "blocks.0.hook_attn_out", "ce", 0],
  ["llama", "blocks.1.hook_attn_out", "ce", 0],
  ["llama+biases", "blocks.0.hook_attn_out", "kl", 0.1],
  // Per-head q/k norms (Qwen 3); Gemma's GeGLU; Gemma 3's norms after attention and MLP, q/k norms and local layers.
  ["qwen3", "blocks.0.hook_resid_post", "kl", 0],
  ["gemma", "blocks.0.hook_mlp_out", "ce", 0],
  ["gemma3", "blocks.0.hook_resid_pre", "kl", 0.1],
  ["gemma3", "blocks.1.hook_attn_out", "ce", 0],
  ["gemma3", "blocks.0.hook_mlp_out", "kl", 0],
  // Gemma 2: soft caps on the attention logits and the output logits (tight in the fixture: 2 and 3).
  ["gemma2", "blocks.0.hook_resid_post", "ce", 0],
  ["gemma2", "blocks.0.hook_attn_out", "kl", 0.1],
  // VaultGemma: Gemma 2's soft caps and query scale, no norms after attention and MLP.
  ["vaultgemma", "blocks.0.hook_resid_pre", "kl", 0],
  ["vaultgemma", "blocks.0.hook_attn_out", "ce", 0],
  // GPT-Neo: unscaled attention, local layers held to their window.
  ["gptneo", "blocks.0.hook_resid_post", "kl", 0],
  ["gptneo", "blocks.0.hook_attn_out", "ce", 0.1],
  // OLMo 2: no norms before attention and MLP, norms after them, q/k norms over each projection.
  ["olmo2", "blocks.0.hook_resid_pre", "ce", 0],
  ["olmo2", "blocks.0.hook_attn_out", "kl", 0.1],
  ["olmo2", "blocks.1.hook_resid_pre", "kl", 0],
  // The first OLMo: LayerNorms without weights, q/k/v clamped (clip_qkv 2 bites on about a quarter
  // of them). A step of 2e-3 moves some values across the clamp's corners, where finite
  // differences mean nothing; 2e-4 moves none here, and float32 still resolves the difference.
  ["olmo", "blocks.0.hook_resid_pre", "ce", 0, 2e-4],
  ["olmo", "blocks.0.hook_attn_out", "kl", 0, 2e-4],
  // Phi-3 with LongRoPE: fused projections, part of each head rotated, the rotated part scaled.
  ["phi3", "blocks.0.hook_resid_pre", "ce", 0],
  ["phi3", "blocks.0.hook_attn_out", "kl", 0.1],
  // SmolLM3's layer 1 without rotary positions; OLMo 3's layer 1 rotating at a base of its own.
  ["smollm3", "blocks.0.hook_resid_post", "ce", 0],
  ["olmo3", "blocks.0.hook_resid_pre", "kl", 0],
  // Granite's multipliers on each block's outputs and on the logits.
  ["granite", "blocks.0.hook_resid_post", "ce", 0],
  ["granite", "blocks.1.hook_attn_out", "kl", 0],
  // StableLM's parallel blocks: one LayerNorm (with a bias) read by attention and MLP.
  ["stablelm", "blocks.0.hook_resid_pre", "ce", 0],
  ["stablelm", "blocks.0.hook_attn_out", "kl", 0],
  // Cohere 2: the same parallel block (no norm biases), interleaved rotary in layer 0 only, logit_scale.
  ["cohere2", "blocks.0.hook_resid_pre", "ce", 0],
  ["cohere2", "blocks.0.hook_mlp_out", "kl", 0],
  // GPT-J and Phi: the same parallel block, interleaved (GPT-J) or rotate-half rotary on part of
  // each head, and an unembedding with a bias.
  ["gptj", "blocks.0.hook_resid_post", "ce", 0],
  ["gptj", "blocks.0.hook_mlp_out", "kl", 0.1],
  ["phi", "blocks.0.hook_resid_pre", "kl", 0],
  ["phi", "blocks.1.hook_attn_out", "ce", 0],
  // GLM-4: interleaved rotary on half of each head, q/k/v biases, fused gate_up_proj, norms after attention and MLP.
  ["glm4", "blocks.0.hook_resid_pre", "ce", 0],
  ["glm4", "blocks.0.hook_attn_out", "kl", 0.1],
  // Mixtures of experts: each expert's backward on its tokens, and the routing weights' own
  // gradient through the softmax to the router (renormalised over the chosen experts in
  // Mixtral and GraniteMoE, over all of them in OLMoE and Qwen2-MoE, with its shared expert's gate).
  // The choice of experts is piecewise constant: a step of 2e-3 from the first block's input
  // moves a token across a routing boundary here, where finite differences mean nothing; 2e-4 moves none.
  ["mixtral", "blocks.0.hook_resid_pre", "ce", 0, 2e-4],
  ["mixtral", "blocks.1.hook_attn_out", "kl", 0],
  ["qwen2moe", "blocks.0.hook_resid_post", "kl", 0.1],
  ["qwen2moe", "blocks.0.hook_attn_out", "ce", 0],
  ["olmoe", "blocks.0.hook_resid_pre", "kl", 0],
  // Qwen3.5: back through Gated DeltaNets (the delta rule through time, the L2 norms, the gates,
  // the convolution) and attention with gated heads and q/k norms of 1 + w. From the first block's
  // input, the gated RMSNorm of a first token's small output (o = delta (k . q) from an empty
  // state) turns steeply: a step of 2e-4 already bends the difference quotient; 5e-5 does not.
  ["qwen35", "blocks.0.hook_resid_pre", "ce", 0, 5e-5],
  ["qwen35", "blocks.0.hook_mlp_out", "kl", 0.1],
  ["qwen35", "blocks.1.hook_resid_pre", "kl", 0],
  // LFM2: back through its gated short convolutions (and an attention layer with q/k norms between).
  // Their gates multiply two projections of the same input, whose curvature bends a difference
  // quotient of step 2e-3 by a little over the tolerance here; 5e-4 does not.
  ["lfm2", "blocks.0.hook_resid_pre", "kl", 0, 5e-4],
  ["lfm2", "blocks.0.hook_attn_out", "ce", 0.1],
  // Granite 4.0: its multipliers, no positions, a GraniteMoE mixture plus the ungated shared MLP.
  ["granite4", "blocks.0.hook_resid_pre", "kl", 0, 2e-4],
  ["granite4", "blocks.1.hook_attn_out", "ce", 0],
  // Granite 4.0-H: back through Mamba-2 (the scan through time, dt's softplus and decay, the skip, the gated norm, the convolution).
  ["granite4h", "blocks.0.hook_resid_pre", "ce", 0, 2e-4],
  ["granite4h", "blocks.1.hook_mlp_out", "kl", 0.1],
  // StableLM's and Cohere's LayerNorm per query and key head, each with weights of its own.
  ["stablelmqk", "blocks.0.hook_resid_pre", "ce", 0],
  ["cohereqk", "blocks.0.hook_mlp_out", "kl", 0],
  // Falcon-H1: back through Mamba-2 (its norm per group before the gate) and attention side by side, its multipliers folded in.
  ["falconh1", "blocks.0.hook_resid_pre", "kl", 0, 2e-4],
  ["falconh1", "blocks.0.hook_attn_out", "ce", 0.1],
  // LFM2-MoE: the experts' weights through their sigmoid scores, renormalised and scaled (the choice, biased, is piecewise constant).
  ["lfm2moe", "blocks.0.hook_resid_pre", "ce", 0, 2e-4],
  ["lfm2moe", "blocks.1.hook_attn_out", "kl", 0],
  // OLMoE with clip_qkv: the clamp after the q/k norms, so the norms' backward sees only the
  // entries it let through (the step as small as OLMo's, for the same corners and routing).
  ["olmoeclip", "blocks.0.hook_resid_pre", "ce", 0, 2e-4],
  ["granitemoe", "blocks.0.hook_mlp_out", "ce", 0],
];

describe("the gradient of the loss through the layers after a spliced activation", () => {
  it.each(cases)("%s at %s (%s, downstream %s): the loss is the forward's, the gradient its finite differences", async (name, hook, loss, downstream, step) => {
    const model = (await loadModel(models[name]())).model;
    const rng = new Rng(11);
    const batch = 2;
    const seq = 7;
    const tokens = Int32Array.from({ length: batch * seq }, () => Math.floor(rng.uniform() * model.cfg.vocabSize));
    const sb = new SpliceBackward(model, hook, loss, downstream);
    const clean = sb.clean(tokens, batch, seq);
    // The clean activation, as the hook sees it.
    let seen: Float32Array | null = null;
    const cleanLogits = model.forward(tokens, batch, seq, { hooks: { [hook]: (a) => { seen = a.slice(); } } }).logits!;
    expect(clean.x).toEqual(seen);
    const cleanStreams = laterStreams(model, tokens, batch, seq, hook, null).streams;
    if (downstream > 0) expect(clean.downstream).toEqual(cleanStreams);
    const swapLoss = (act: Float32Array) => lossBySwap(model, tokens, batch, seq, hook, act, loss, cleanLogits, downstream, cleanStreams);
    // An imperfect reconstruction, so the spliced distribution differs from the clean one.
    const noise = randn(rng, clean.x.length, 0.3);
    const xHat = clean.x.map((v, i) => v + noise[i]!);
    const { loss: value, terms, grad } = sb.lossAndGrad(tokens, batch, seq, clean, xHat);
    const want = swapLoss(xHat);
    expect(Math.abs(value - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
    expect(Object.keys(terms)).toEqual([loss === "ce" ? "ce_loss" : "kl_loss", ...(downstream > 0 ? ["downstream_mse"] : [])]);
    if (downstream > 0) expect(terms.downstream_mse).toBeGreaterThan(1e-4);
    if (loss === "kl") expect(value).toBeGreaterThan(1e-4);

    // Directional derivatives: (L(xHat + e u) - L(xHat - e u)) / 2e = grad . u.
    for (let trial = 0; trial < 3; trial++) {
      const u = randn(rng, xHat.length);
      let gu = 0;
      let gg = 0;
      for (let i = 0; i < u.length; i++) {
        gu += grad[i]! * u[i]!;
        gg += grad[i]! ** 2;
      }
      const eps = step ?? 2e-3;
      const plus = swapLoss(xHat.map((v, i) => v + eps * u[i]!));
      const minus = swapLoss(xHat.map((v, i) => v - eps * u[i]!));
      const numeric = (plus - minus) / (2 * eps);
      // Against the scale of the gradient (|grad| |u| / sqrt(n) is a typical projection).
      const typical = Math.sqrt(gg);
      expect(Math.abs(numeric - gu), `trial ${trial}: numeric ${numeric}, analytic ${gu}`).toBeLessThan(2e-3 * typical + 1e-6);
    }
    // The last position's activation moves only its own prediction; under CE, which it does not make, nothing.
    const d = model.cfg.dModel;
    if (loss === "ce" && hook.endsWith("resid_post") && hook.startsWith(`blocks.${model.cfg.nLayers - 1}`)) {
      expect(grad.subarray((seq - 1) * d, seq * d).every((v) => v === 0)).toBe(true);
    }
    // Causality: no position's activation reaches earlier positions' losses; position 0's gradient is nonzero.
    expect(grad.subarray(0, d).some((v) => v !== 0)).toBe(true);
  });

  it("keeps position t's gradient to the losses at t and after: the last position's is zero under CE at the last block", async () => {
    const model = (await loadModel(models.neox())).model;
    const last = `blocks.${model.cfg.nLayers - 1}.hook_resid_post`;
    const sb = new SpliceBackward(model, last, "ce");
    const tokens = Int32Array.from({ length: 6 }, (_, i) => (i * 37) % model.cfg.vocabSize);
    const clean = sb.clean(tokens, 1, 6);
    const { grad } = sb.lossAndGrad(tokens, 1, 6, clean, clean.x);
    const d = model.cfg.dModel;
    expect(grad.subarray(5 * d).every((v) => v === 0)).toBe(true);
    expect(grad.subarray(4 * d, 5 * d).some((v) => v !== 0)).toBe(true);
  });

  it("gives the same gradient on bfloat16 weights as on float32 weights of the same rounded values", async () => {
    const tokens = Int32Array.from({ length: 12 }, (_, i) => (i * 53) % 300);
    const grads = await Promise.all(["f32", "bf16"].map(async (dtype) => {
      const model = (await loadModel(models.llama())).model;
      model.storeWeightsAs("bf16");
      if (dtype === "f32") model.storeWeightsAs("f32"); // the rounded values, as float32
      const sb = new SpliceBackward(model, "blocks.0.hook_resid_post", "kl");
      const clean = sb.clean(tokens, 2, 6);
      return sb.lossAndGrad(tokens, 2, 6, clean, clean.x.map((v, i) => v + 0.1 * Math.sin(i))).grad;
    }));
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < grads[0]!.length; i++) {
      diff = Math.max(diff, Math.abs(grads[0]![i]! - grads[1]![i]!));
      scale = Math.max(scale, Math.abs(grads[0]![i]!));
    }
    expect(scale).toBeGreaterThan(0);
    expect(diff).toBeLessThan(1e-5 * scale);
  });

  it("refuses hooks it cannot splice at, and a downstream term with no blocks after the hook", async () => {
    const neox = (await loadModel(models.neox())).model;
    expect(() => new SpliceBackward(neox, "blocks.0.ln1.hook_normalized", "ce")).toThrow(/residual stream .* not blocks\.0\.ln1\.hook_normalized/);
    const gpt2 = (await loadModel(models.gpt2())).model;
    expect(() => new SpliceBackward(gpt2, "blocks.0.mlp.hook_post", "ce")).toThrow(/\(hook_attn_out, hook_mlp_out\), not blocks\.0\.mlp\.hook_post/);
    expect(() => new SpliceBackward(neox, `blocks.${neox.cfg.nLayers - 1}.hook_resid_post`, "kl", 0.1)).toThrow(/compares the blocks after .* has none/);
  });
});
