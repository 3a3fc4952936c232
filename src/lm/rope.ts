/**
 * Rotary position embeddings: which frequencies each pair of dimensions turns at, read from
 * a Hugging Face config the way its modeling code reads it. Configs written by transformers
 * 4.x carry `rope_theta` (GPT-NeoX: `rotary_emb_base`, `rotary_pct`) and an optional
 * `rope_scaling`; transformers 5 folds them all into one `rope_parameters` object.
 *
 * Frequencies are computed in float32, step by step as PyTorch does
 * (inv_freq = 1 / base ** (arange(0, dim, 2).float() / dim)), so that the angles, and
 * therefore the logits, agree with Hugging Face's to float rounding.
 */

/** How the base frequencies are rescaled for longer contexts (HF `rope_type`). */
export type RopeScaling =
  | { type: "default" }
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  /**
   * Phi-3 / Phi-3.5 / Phi-4-mini (LongRoPE): within the original context each rotated pair's
   * frequency is divided by its short factor, and cos and sin are scaled by attentionFactor
   * (past it the long factors would take over: saekit stays within it).
   */
  | { type: "longrope"; shortFactor: number[]; attentionFactor: number; originalMaxPositions: number }
  /**
   * YaRN (OLMo 3, Qwen's long-context settings, DeepSeek): pairs that turn fast within the
   * original context keep their frequency, slow ones are divided by `factor`, and a linear
   * ramp between the pairs making betaFast and betaSlow turns there blends the two; cos and
   * sin are scaled by attentionFactor. The same at every position, so the whole extended
   * context runs.
   */
  | { type: "yarn"; factor: number; attentionFactor: number; betaFast: number; betaSlow: number; originalMaxPositions: number; truncate: boolean };

export interface RopeSpec {
  theta: number;
  /** Share of each head's dimensions that rotate (GPT-NeoX's rotary_pct). */
  partialFactor: number;
  scaling: RopeScaling;
}

type Json = Record<string, unknown>;

function positiveNumber(v: unknown, what: string, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new Error(`${path}: ${what} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The rotary settings of a config.json. `defaults` are the model class's own defaults
 * (they differ: GPT-NeoX rotates a quarter of each head, Llama all of it).
 */
export function ropeFromHf(json: Json, path: string, defaults: { theta: number; partialFactor: number; thetaKeys: string[]; partialKeys: string[] },
  layerType: LayerType = "full_attention"): RopeSpec {
  const params = ropeParameters(json, path, layerType);
  // v4's rope_scaling is the global layers' (Gemma 3's local layers were never scaled).
  const scaling = ((layerType === "full_attention" ? json.rope_scaling ?? params : params) ?? null) as Json | null;
  if (scaling !== null && typeof scaling !== "object") throw new Error(`${path}: "rope_scaling" must be an object`);
  const pick = (keys: string[], fallback: number, what: string): number => {
    for (const src of [params, json]) {
      for (const k of keys) if (src && src[k] !== undefined && src[k] !== null) return positiveNumber(src[k], `"${what}"`, path);
    }
    return fallback;
  };
  const theta = pick(["rope_theta", ...defaults.thetaKeys], defaults.theta, "rope_theta");
  const partialFactor = pick(["partial_rotary_factor", ...defaults.partialKeys], defaults.partialFactor, "partial_rotary_factor");
  if (partialFactor > 1) throw new Error(`${path}: partial_rotary_factor must be at most 1, got ${partialFactor}`);
  return { theta, partialFactor, scaling: scalingFromHf(scaling, path, json) };
}

/** The attention kinds transformers (v5) may give rotary settings of their own. */
export type LayerType = "full_attention" | "sliding_attention";
const LAYER_TYPES: readonly string[] = ["full_attention", "sliding_attention"];

/**
 * config.json's "rope_parameters" for layers of `layerType`: transformers v5 writes one
 * object for all layers, or, where the kinds of layer differ (Gemma 3's local and global
 * layers), one per kind: {"full_attention": {...}, "sliding_attention": {...}}.
 */
function ropeParameters(json: Json, path: string, layerType: LayerType): Json | null {
  const params = json.rope_parameters ?? null;
  if (params === null) return null;
  if (typeof params !== "object" || Array.isArray(params)) throw new Error(`${path}: "rope_parameters" must be an object`);
  const kinds = Object.keys(params).filter((k) => LAYER_TYPES.includes(k));
  if (kinds.length === 0) return params as Json;
  const own = (params as Json)[layerType];
  if (typeof own !== "object" || own === null) throw new Error(`${path}: "rope_parameters" has settings for ${kinds.join(", ")} layers, none for ${layerType}`);
  return own as Json;
}

/** Whether config.json gives `layerType` layers rotary settings of their own (Gemma 3's local layers in transformers v5). */
export function hasRopeParametersFor(json: Json, layerType: LayerType): boolean {
  const params = json.rope_parameters;
  return typeof params === "object" && params !== null && layerType in params;
}

function scalingFromHf(s: Json | null, path: string, json: Json): RopeScaling {
  const type = s ? String(s.rope_type ?? s.type ?? "default") : "default";
  const num = (key: string) => positiveNumber(s![key], `rope_scaling.${key}`, path);
  switch (type) {
    case "default":
    // Qwen-VL's M-RoPE: time, height and width sections turned by one position each, which for
    // text (all saekit runs through these models) is the same position: the plain rotary.
    case "mrope":
      return { type: "default" };
    // Dynamic NTK scaling only changes the frequencies for positions past
    // max_position_embeddings, which saekit never runs (the forward refuses them).
    case "dynamic":
      num("factor");
      return { type: "default" };
    case "linear":
      return { type: "linear", factor: num("factor") };
    case "llama3": {
      const r: RopeScaling = {
        type: "llama3", factor: num("factor"), lowFreqFactor: num("low_freq_factor"),
        highFreqFactor: num("high_freq_factor"), originalMaxPositions: num("original_max_position_embeddings"),
      };
      if (r.highFreqFactor <= r.lowFreqFactor) throw new Error(`${path}: rope_scaling.high_freq_factor must exceed low_freq_factor`);
      return r;
    }
    case "longrope":
      return longRopeFromHf(s!, path, json);
    case "yarn":
      return yarnFromHf(s!, path, json);
    default:
      throw new Error(`${path}: rope type "${type}" is not supported (default, linear, dynamic, llama3, longrope, yarn, mrope)`);
  }
}

/**
 * LongRoPE's settings as transformers reads them: the short factors, and the attention factor
 * (given, or sqrt(1 + ln(s) / ln(original)) for s = max_position_embeddings / the original
 * context, the config's original_max_position_embeddings, as Phi-3's configs give them).
 */
function longRopeFromHf(s: Json, path: string, json: Json): RopeScaling {
  const short = s.short_factor;
  if (!Array.isArray(short) || short.length === 0 || short.some((v) => typeof v !== "number" || !(v > 0) || !Number.isFinite(v))) {
    throw new Error(`${path}: rope_scaling.short_factor must be a list of positive numbers`);
  }
  const rootOriginal = json.original_max_position_embeddings;
  const original = positiveNumber(rootOriginal ?? s.original_max_position_embeddings ?? json.max_position_embeddings, "original_max_position_embeddings", path);
  const factor = rootOriginal !== undefined && rootOriginal !== null
    ? positiveNumber(json.max_position_embeddings, "max_position_embeddings", path) / original
    : positiveNumber(s.factor, "rope_scaling.factor", path);
  const given = s.attention_factor;
  const attentionFactor = given !== undefined && given !== null ? positiveNumber(given, "rope_scaling.attention_factor", path)
    : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
  return { type: "longrope", shortFactor: short as number[], attentionFactor, originalMaxPositions: original };
}

/**
 * YaRN's settings as transformers 5 reads them: the original context from the config's top
 * level (where Phi-3-style configs keep it), the scaling's own, or max_position_embeddings;
 * factor, or where absent max_position_embeddings over the original context; the attention
 * factor given, or 0.1 ln(factor) + 1 (with DeepSeek's mscale and mscale_all_dim, the ratio of
 * two such terms); beta_fast 32 and beta_slow 1 unless set (a 0 counts as unset, as there).
 * (transformers 4.x took factor as that ratio whenever the scaling named the original context.)
 */
function yarnFromHf(s: Json, path: string, json: Json): RopeScaling {
  const maxPositions = positiveNumber(json.max_position_embeddings, "max_position_embeddings", path);
  const original = positiveNumber(json.original_max_position_embeddings ?? s.original_max_position_embeddings ?? maxPositions,
    "original_max_position_embeddings", path);
  const factor = s.factor === undefined || s.factor === null ? maxPositions / original : positiveNumber(s.factor, "rope_scaling.factor", path);
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const optional = (key: string, fallback: number) => (s[key] ? positiveNumber(s[key], `rope_scaling.${key}`, path) : fallback);
  let attentionFactor: number;
  if (s.attention_factor !== undefined && s.attention_factor !== null) {
    attentionFactor = positiveNumber(s.attention_factor, "rope_scaling.attention_factor", path);
  } else if (s.mscale && s.mscale_all_dim) {
    attentionFactor = mscale(factor, optional("mscale", 1)) / mscale(factor, optional("mscale_all_dim", 1));
  } else {
    attentionFactor = mscale(factor);
  }
  if (s.truncate !== undefined && s.truncate !== null && typeof s.truncate !== "boolean") throw new Error(`${path}: rope_scaling.truncate must be true or false`);
  return {
    type: "yarn", factor, attentionFactor, betaFast: optional("beta_fast", 32), betaSlow: optional("beta_slow", 1),
    originalMaxPositions: original, truncate: s.truncate !== false,
  };
}

/** How much the rotary scales the rotated dimensions of q and k (cos and sin times it): LongRoPE's and YaRN's attention factor, else 1. */
export function rotaryAmplitude(spec: RopeSpec | null | undefined): number {
  const s = spec?.scaling;
  return s?.type === "longrope" || s?.type === "yarn" ? Math.fround(s.attentionFactor) : 1;
}

/** Rotated dimensions of a head of `headDim` (int(head_dim * partial_rotary_factor), as HF). */
export function rotaryDimsOf(spec: RopeSpec, headDim: number): number {
  return Math.floor(headDim * spec.partialFactor);
}

/** The inverse frequency of each rotated pair, [rotaryDims / 2], in float32. */
export function rotaryInverseFrequencies(spec: RopeSpec, rotaryDims: number): Float32Array {
  const f = Math.fround;
  const half = rotaryDims / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(spec.theta ** f((2 * i) / rotaryDims)));
  const s = spec.scaling;
  if (s.type === "longrope") {
    if (s.shortFactor.length !== half) throw new Error(`longrope: ${s.shortFactor.length} short factors for ${half} rotated pairs`);
    // 1 / (short_factor * base^(2i/d)), as transformers computes it in float32.
    for (let i = 0; i < half; i++) inv[i] = f(1 / f(f(s.shortFactor[i]!) * f(spec.theta ** f((2 * i) / rotaryDims))));
  } else if (s.type === "linear") {
    for (let i = 0; i < half; i++) inv[i] = f(inv[i]! / s.factor);
  } else if (s.type === "yarn") {
    yarnFrequencies(inv, s, spec.theta, rotaryDims);
  } else if (s.type === "llama3") {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band in
    // between blends the two.
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const freq = inv[i]!;
      const wavelen = f((2 * Math.PI) / freq);
      if (wavelen > lowWavelen) {
        inv[i] = f(freq / s.factor);
      } else if (wavelen >= highWavelen) {
        const smooth = f((s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor));
        inv[i] = f(f((1 - smooth) * f(freq / s.factor)) + f(smooth * freq));
      }
    }
  }
  return inv;
}

/**
 * YaRN's frequencies in place of the plain ones in `inv`, in float32 as transformers computes
 * them: pair i turns at inv_i (extrapolated) or inv_i / factor (interpolated), blended by a
 * ramp over the pairs between those that turn betaFast and betaSlow times within the original
 * context (the bounds rounded outward unless truncate is off).
 */
function yarnFrequencies(inv: Float32Array, s: Extract<RopeScaling, { type: "yarn" }>, base: number, dims: number): void {
  const f = Math.fround;
  // The pair index at which a pair turns `rotations` times over the original context.
  const pairTurning = (rotations: number) => (dims * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let low = pairTurning(s.betaFast);
  let high = pairTurning(s.betaSlow);
  if (s.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dims - 1);
  if (low === high) high += 0.001;
  for (let i = 0; i < inv.length; i++) {
    const posFreq = f(base ** f((2 * i) / dims));
    const extrapolated = f(1 / posFreq);
    const interpolated = f(1 / f(f(s.factor) * posFreq));
    const ramp = f(Math.min(1, Math.max(0, f(f(i - f(low)) / f(high - low)))));
    const keep = f(1 - ramp);
    inv[i] = f(f(interpolated * f(1 - keep)) + f(extrapolated * keep));
  }
}
