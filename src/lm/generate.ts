/**
 * Text generation with a key/value cache: greedy (temperature 0, ties to the lowest id,
 * as llama2.c's argmax) or sampled at a temperature from a seeded stream. sampleContexts
 * builds a token dataset from the model itself ("sampled:N"), for models without a tokenizer.
 */
import { Rng } from "../core/rng.js";
import { rowStats } from "../sae/input-norm.js";
import { decoderMatrix, type Sae } from "../sae/sae.js";
import type { HookFn, LanguageModel } from "./model.js";

export interface GenerateOptions {
  maxNew: number;
  /** 0: greedy. */
  temperature?: number;
  seed?: number;
  /** Generation stops after emitting one of these. */
  stopTokens?: number[];
  /** Hooks run on every forward pass (the prompt's and each new token's): steering, ablations. */
  hooks?: Record<string, HookFn>;
}

/** Picks the next token from a logits row. */
export function pickToken(logits: Float32Array, temperature: number, rng: Rng): number {
  let best = 0;
  for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
  if (temperature <= 0) return best;
  // Sample from softmax(logits / T): exp relative to the max keeps it finite.
  const mx = logits[best]!;
  let sum = 0;
  const p = new Float64Array(logits.length);
  for (let j = 0; j < logits.length; j++) sum += p[j] = Math.exp((logits[j]! - mx) / temperature);
  let u = rng.uniform() * sum;
  for (let j = 0; j < p.length; j++) {
    u -= p[j]!;
    if (u <= 0) return j;
  }
  return p.length - 1;
}

/** Continues `prompt` (token ids, BOS included if wanted) and returns the new tokens. */
export function generate(model: LanguageModel, prompt: number[], o: GenerateOptions): number[] {
  if (prompt.length === 0) throw new Error("generate: the prompt needs at least one token (e.g. BOS)");
  const room = model.cfg.maxPositions - prompt.length;
  const maxNew = Math.max(0, Math.min(o.maxNew, room));
  const cache = model.newCache(1, prompt.length + maxNew);
  const rng = new Rng(o.seed ?? 0);
  const stop = new Set(o.stopTokens ?? []);
  const V = model.cfg.vocabSize;
  const hooks = o.hooks ?? {};
  let logits = model.forward(Int32Array.from(prompt), 1, prompt.length, { cache, hooks }).logits!;
  let last = logits.subarray((prompt.length - 1) * V);
  const out: number[] = [];
  for (let i = 0; i < maxNew; i++) {
    const next = pickToken(last, o.temperature ?? 0, rng);
    out.push(next);
    if (stop.has(next) || i === maxNew - 1) break;
    logits = model.forward(Int32Array.of(next), 1, 1, { cache, hooks }).logits!;
    last = logits;
  }
  return out;
}

/**
 * `count` contexts of `ctx` tokens sampled from the model (BOS, then ctx - 1 tokens at the
 * temperature), `batch` sequences at a time; a pure function of the seed.
 */
export async function* sampleContexts(model: LanguageModel, count: number, ctx: number, bos: number,
  o: { seed?: number; temperature?: number; batch?: number } = {}): AsyncGenerator<Int32Array> {
  const V = model.cfg.vocabSize;
  const batchSize = o.batch ?? 64;
  for (let start = 0; start < count; start += batchSize) {
    const B = Math.min(batchSize, count - start);
    // One stream per sequence, so a context does not depend on the batch it ran in.
    const rngs = Array.from({ length: B }, (_, b) => new Rng((o.seed ?? 0) * 1_000_003 + start + b));
    const seqs = Array.from({ length: B }, () => new Int32Array(ctx));
    for (const s of seqs) s[0] = bos;
    const cache = model.newCache(B, ctx);
    let step = Int32Array.from({ length: B }, () => bos);
    for (let t = 1; t < ctx; t++) {
      const logits = model.forward(step, B, 1, { cache }).logits!;
      step = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const tok = pickToken(logits.subarray(b * V, (b + 1) * V), o.temperature ?? 1, rngs[b]!);
        seqs[b]![t] = tok;
        step[b] = tok;
      }
    }
    for (const s of seqs) yield s;
  }
}

/**
 * A hook that steers the model with SAE latents: it adds scale x W_dec[latent] (the
 * latent's decoder direction) to the activation at every position, for each (latent,
 * scale) given, as Neuronpedia's steering does.
 */
export function steeringHook(W_dec: Float32Array, d: number, steers: Array<{ latent: number; scale: number }>): HookFn {
  const add = new Float32Array(d);
  for (const { latent, scale } of steers) {
    if (!Number.isInteger(latent) || latent < 0 || (latent + 1) * d > W_dec.length) throw new RangeError(`latent ${latent} is outside the SAE's ${W_dec.length / d} latents`);
    for (let c = 0; c < d; c++) add[c]! += scale * W_dec[latent * d + c]!;
  }
  return (act) => {
    for (let i = 0; i < act.length; i++) act[i]! += add[i % d]!;
  };
}

/**
 * A hook that clamps SAE latents: at every position it encodes the activation, and for each
 * (latent, value) given moves the activation by (value - f) x W_dec[latent], where f is what
 * the latent was — so the SAE would now read `value` there (0 ablates the latent), and the
 * rest of the activation, the SAE's error included, is kept (times the token's scale for an
 * SAE that normalises its input, which decodes at that scale). Anthropic's clamping ("Scaling
 * Monosemanticity"), SAELens' interventions on hook_sae_acts_post.
 */
export function clampingHook(sae: Sae, clamps: Array<{ latent: number; value: number }>): HookFn {
  const d = sae.cfg.d_in;
  const W_dec = decoderMatrix(sae, "clamping");
  for (const { latent } of clamps) {
    if (!Number.isInteger(latent) || latent < 0 || latent >= sae.cfg.d_sae) throw new RangeError(`latent ${latent} is outside the SAE's ${sae.cfg.d_sae} latents`);
  }
  const mode = sae.cfg.input_normalization;
  return (act) => {
    const rows = act.length / d;
    const code = sae.encode(act, rows);
    // An SAE that normalises each token decodes at the token's own scale.
    const scale = mode === "none" ? null : rowStats(mode, act, rows, d).scale;
    for (let r = 0; r < rows; r++) {
      for (const { latent, value } of clamps) {
        let f = 0;
        for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) if (code.idx[e] === latent) f = code.val[e]!;
        const by = (value - f) * (scale ? scale[r]! : 1);
        if (by === 0) continue;
        for (let c = 0; c < d; c++) act[r * d + c]! += by * W_dec[latent * d + c]!;
      }
    }
  };
}
