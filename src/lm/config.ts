/**
 * One configuration type for every decoder-only transformer saekit runs (GPT-NeoX/Pythia,
 * GPT-2, GPT-J, Phi, Llama and its relatives, Gemma), read from a Hugging Face config.json. The forward pass (model.ts) is
 * written once against this description; what differs between families is data here and
 * the weight layout conversion in gpt-neox.ts, gpt2.ts and llama.ts.
 */
import { RotaryStyle } from "../core/kernels.js";
import type { DeltaNetShape } from "./gated-deltanet.js";
import type { FalconH1Multipliers } from "./falcon-h1.js";
import type { MambaGate, MambaShape } from "./mamba2.js";
import { hasRopeParametersFor, type RopeSpec, ropeFromHf, rotaryDimsOf } from "./rope.js";

export type LmArchitecture = "gpt_neox" | "gpt2" | "gpt_neo" | "gptj" | "phi" | "llama" | "gemma";

export interface LmConfig {
  architecture: LmArchitecture;
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads (grouped-query attention); = nHeads for multi-head attention. */
  nKvHeads: number;
  dHead: number;
  dMlp: number;
  /** Longest context the positional scheme supports. */
  maxPositions: number;
  norm: "layernorm" | "rmsnorm";
  normEps: number;
  /**
   * MLP: act(x W_in + b) W_out (standard) or (act(x W_gate) * x W_up) W_down (swiglu, the
   * gated MLP: SiLU for Llama, tanh GELU for Gemma's GeGLU).
   */
  mlp: "standard" | "swiglu";
  /** The MLP's activation: exact GELU ("gelu"), tanh GELU ("gelu_new"), ReLU or SiLU. */
  activation: "gelu" | "gelu_new" | "relu" | "silu";
  positional: "learned" | "rotary";
  /** Rotary frequencies (null for learned positions). */
  rope: RopeSpec | null;
  rotaryDims: number;
  rotaryStyle: RotaryStyle;
  /**
   * Attention logits are q.k / sqrt(dHead), further divided by (layer + 1) when
   * scaleAttnByLayer (GPT-2's scale_attn_by_inverse_layer_idx); GPT-2's
   * scale_attn_weights = false drops the 1 / sqrt(dHead).
   */
  scaleAttnByHeadDim: boolean;
  scaleAttnByLayer: boolean;
  /** x + attn(ln1(x)) + mlp(ln2(x)) (GPT-NeoX) instead of two sequential residual steps. */
  parallelResidual: boolean;
  /** The unembedding is the token embedding (GPT-2, small Llamas). */
  tiedEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** Gemma: token embeddings are multiplied by this (sqrt(dModel), rounded to float32); Granite: by embedding_multiplier. */
  embedScale?: number;
  /** Granite: the attention logits are scaled by this (attention_multiplier) instead of dHead^-1/2. */
  attentionMultiplier?: number;
  /** Granite: each block's attention and MLP outputs are scaled by this (residual_multiplier) before the residual add. */
  residualScale?: number;
  /** The logits are multiplied by this: Granite's 1 / logits_scaling, Cohere's logit_scale. */
  logitScale?: number;
  /** Gemma 2: attention and final logits capped at +-cap as cap * tanh(x / cap) (0: none). */
  attnSoftcap?: number;
  finalSoftcap?: number;
  /** Gemma 2, OLMo 2: attention and MLP outputs pass through their own RMSNorm before the residual add. */
  postNorms?: boolean;
  /**
   * false: OLMo 2, whose blocks have no norm before attention and MLP (only the post norms):
   * both read the residual stream as it is, which their ln1 / ln2 hooks then show. Absent: true.
   */
  preNorms?: boolean;
  /** Gemma 2: attention logits are scaled by queryPreAttnScalar^-1/2 instead of dHead^-1/2. */
  queryPreAttnScalar?: number;
  /**
   * Query and key norms before the rotary: "head" (Qwen 3, Gemma 3) RMS-norms each head with
   * weights [dHead] shared by the heads; "projection" (OLMo 2) RMS-norms all the query heads
   * together, and all the key heads, with weights as wide as each projection; "head-layernorm"
   * (StableLM's qk_layernorm, Cohere's use_qk_norm) LayerNorms each head without a bias, each
   * head with weights of its own.
   */
  qkNorm?: "head" | "projection" | "head-layernorm";
  /**
   * Qwen3.5: which layers run a Gated DeltaNet (linear attention, gated-deltanet.ts) in place of
   * attention, and its shape.
   */
  linearAttention?: DeltaNetShape & { layers: boolean[] };
  /**
   * Granite 4.0-H: which layers run Mamba-2 (mamba2.ts) in place of attention, and its shape;
   * Falcon-H1 (parallel): every layer runs Mamba-2 beside attention, on the same normed input,
   * and adds both outputs to the stream (hook_attn_out is their sum).
   */
  mamba?: MambaShape & { layers: boolean[]; parallel?: boolean };
  /** Falcon-H1's muP multipliers, which loading folds into the weights (falcon-h1.ts). */
  falconH1?: FalconH1Multipliers;
  /** LFM2: which layers run a short convolution (short-conv.ts) in place of attention, and its taps. */
  shortConv?: { layers: boolean[]; kernel: number };
  /** Qwen3.5: each attention head's output times the sigmoid of a gate projected beside its query. */
  attnOutputGate?: boolean;
  /** Qwen3.5: RMSNorm weights stored as w - 1 (the norm multiplies by 1 + w), as Gemma's. */
  offsetNorms?: boolean;
  /** OLMo: its LayerNorms have no weights or biases (the checkpoint holds none). */
  unweightedNorms?: boolean;
  /** Cohere: LayerNorms with weights and no biases (false; LayerNorms have biases otherwise). */
  normBias?: boolean;
  /**
   * OLMo, OLMoE: queries, keys and values are clamped to [-clipQkv, clipQkv], OLMo's right
   * after their projection, OLMoE's after its q/k norms (clipQkvAfterNorm).
   */
  clipQkv?: number;
  clipQkvAfterNorm?: boolean;
  /**
   * Gemma 3, OLMo 3: the rotary of the sliding-window ("local") layers, whose settings may
   * differ from the global layers' `rope`; localLayers[i] says which layers those are.
   */
  localRope?: RopeSpec;
  localLayers?: boolean[];
  /** SmolLM3: noRope[i] marks the layers whose queries and keys turn by no rotary at all (NoPE). */
  noRope?: boolean[];
  /** Mixture-of-experts MLPs (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, GraniteMoE): see MoeConfig. */
  moe?: MoeConfig;
}

/**
 * A mixture-of-experts MLP in each layer `layers` marks (the others keep the dense MLP of
 * dMlp): a router scores the token against `experts` SwiGLU experts (dExpert wide), the
 * topK most probable (softmax over all of them) run, and their outputs are summed weighted
 * by those probabilities, renormalised over the topK when normTopK. Qwen2-MoE adds a shared
 * expert (dShared wide, 0: none) that every token runs, weighted by a sigmoid gate.
 */
export interface MoeConfig {
  experts: number;
  topK: number;
  normTopK: boolean;
  dExpert: number;
  dShared: number;
  layers: boolean[];
  /** LFM2-MoE: each expert's score is the sigmoid of its logit (default: the softmax over experts). */
  scoring?: "softmax" | "sigmoid";
  /** LFM2-MoE: the chosen experts' weights times this (routed_scaling_factor). */
  routedScale?: number;
  /** LFM2-MoE: a learned bias on the scores chooses the experts (use_expert_bias; MoeWeights.expertBias). */
  expertBias?: boolean;
  /** Granite 4.0: its shared expert (shared_mlp) joins every token's mixture without a gate. */
  ungatedShared?: boolean;
}

type Json = Record<string, unknown>;

function field(json: Json, path: string, keys: string[], fallback?: unknown): unknown {
  for (const k of keys) if (json[k] !== undefined && json[k] !== null) return json[k];
  if (fallback !== undefined) return fallback;
  throw new Error(`${path}: missing "${keys[0]}"`);
}

/** A config value as an error names it: JSON, but infinities and NaN (which JSON.stringify makes null) as themselves. */
function shown(v: unknown): string {
  return typeof v === "number" ? String(v) : JSON.stringify(v);
}

function int(json: Json, path: string, keys: string[], fallback?: number): number {
  const v = field(json, path, keys, fallback);
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`${path}: "${keys[0]}" must be a non-negative integer, got ${shown(v)}`);
  return v as number;
}

function num(json: Json, path: string, keys: string[], fallback?: number): number {
  const v = field(json, path, keys, fallback);
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${path}: "${keys[0]}" must be a number, got ${shown(v)}`);
  return v;
}

/** A number that divides: positive. */
function positive(json: Json, path: string, key: string, fallback: number): number {
  const v = num(json, path, [key], fallback);
  if (!(v > 0)) throw new Error(`${path}: "${key}" must be a positive number, got ${v}`);
  return v;
}

/** A true/false setting: `fallback` when absent, an error for anything but a boolean. */
function flag(json: Json, path: string, key: string, fallback: boolean): boolean {
  const v = json[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw new Error(`${path}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** A special token's id (the first, where a list names several): null when absent, an error when not an id. */
function tokenId(json: Json, path: string, key: string): number | null {
  const v = json[key];
  const id = Array.isArray(v) ? v[0] : v;
  if (id === undefined || id === null) return null;
  if (!Number.isSafeInteger(id) || (id as number) < 0) throw new Error(`${path}: "${key}" must be a token id (or a list of them), got ${JSON.stringify(v)}`);
  return id as number;
}

/**
 * Gemma3TextConfig's defaults: the multimodal Gemma 3 checkpoints (gemma-3-4b and up,
 * Gemma3ForConditionalGeneration) write only the text tower's settings that differ.
 */
const GEMMA3_TEXT_DEFAULTS: Json = {
  vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8,
  num_key_value_heads: 4, head_dim: 256, hidden_activation: "gelu_pytorch_tanh", max_position_embeddings: 131072,
  rms_norm_eps: 1e-6, rope_theta: 1_000_000, rope_local_base_freq: 10000, query_pre_attn_scalar: 256,
  sliding_window: 4096, sliding_window_pattern: 6, attention_bias: false, tie_word_embeddings: true,
};

/**
 * Vision-language checkpoints whose language model saekit runs on text, the vision tower left
 * out, by the wrapper's model_type: the language model's type (`forced`: whatever text_config
 * says; else only where it names none), the settings its config class defaults that published
 * configs leave out, which of the wrapper's own settings it inherits, and whether the text
 * settings may sit at the top level instead (Qwen2-VL and Qwen2.5-VL as first published).
 * Qwen-VL's multimodal rotary (M-RoPE) turns each section by a time, height or width
 * position, and a text token has one position for all three: the plain rotary (rope.ts).
 */
const MULTIMODAL: Record<string, { textType: string; forced: boolean; defaults?: Json; inherits: string[]; topLevelText?: boolean }> = {
  gemma3: { textType: "gemma3_text", forced: true, defaults: { ...GEMMA3_TEXT_DEFAULTS, bos_token_id: 2, eos_token_id: 1 }, inherits: ["bos_token_id", "eos_token_id"] },
  // Mistral 3 (Ministral 3, Mistral Small 3.x): a ministral3 or mistral language model.
  mistral3: { textType: "mistral", forced: false, inherits: ["bos_token_id", "eos_token_id"] },
  // Qwen3.5 (all its checkpoints are vision-language ones): text_config, its rope_parameters with M-RoPE.
  qwen3_5: { textType: "qwen3_5_text", forced: true, inherits: ["bos_token_id", "eos_token_id", "tie_word_embeddings"] },
  ...Object.fromEntries(([["qwen2_vl", "qwen2"], ["qwen2_5_vl", "qwen2"], ["qwen3_vl", "qwen3"]] as const).map(([wrapper, textType]) => [wrapper, {
    textType, forced: true, topLevelText: true, inherits: ["bos_token_id", "eos_token_id", "tie_word_embeddings", "rope_theta", "rope_scaling"],
  }])),
};

/** The language model's config of a vision-language config.json (MULTIMODAL). */
function languageModelConfig(json: Json, path: string, type: string): Json {
  const m = MULTIMODAL[type]!;
  const text = json.text_config ?? (m.topLevelText ? json : undefined);
  if (typeof text !== "object" || text === null) throw new Error(`${path}: a ${type} config needs a "text_config" object`);
  const inherited = Object.fromEntries(m.inherits.filter((k) => json[k] !== undefined && json[k] !== null).map((k) => [k, json[k]]));
  return {
    ...m.defaults, ...inherited, model_type: m.textType, ...(text as Json), vision_config: undefined, text_config: undefined,
    ...(m.forced ? { model_type: m.textType } : {}),
  };
}

/** Ministral3Config's rotary when a config gives none. */
const MINISTRAL3_ROPE: Json = {
  rope_type: "yarn", rope_theta: 1_000_000, factor: 16, original_max_position_embeddings: 16384, beta_fast: 32, beta_slow: 1,
  mscale: 1, mscale_all_dim: 1, llama_4_scaling_beta: 0.1,
};

/**
 * The model types that run Llama's block (RMSNorm, rotary, SwiGLU), each with its own
 * departures, read below: biases, q/k norms, norm placement, rotary kinds, multipliers.
 */
const LLAMA_BLOCK_TYPES: readonly string[] = [
  "llama", "mistral", "ministral", "ministral3", "qwen2", "qwen3", "olmo2", "olmo3", "phi3", "smollm3", "granite", "stablelm", "glm", "glm4",
  "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "granitemoe", "cohere", "cohere2", "qwen3_5_text", "granitemoehybrid",
];

/** An LmConfig from a Hugging Face config.json object (`path` names it in errors). */
export function configFromHf(json: Json, path: string): LmConfig {
  if (typeof json.model_type === "string" && Object.hasOwn(MULTIMODAL, json.model_type)) {
    return configFromHf(languageModelConfig(json, path, json.model_type), path);
  }
  if (json.model_type === "ministral3" && json.rope_parameters == null && json.rope_scaling == null && json.rope_theta == null) {
    // Ministral3Config's own default: YaRN from a 16k context.
    return configFromHf({ ...json, rope_parameters: MINISTRAL3_ROPE }, path);
  }
  const type = json.model_type;
  let cfg: LmConfig;
  if (type === "gpt_neox") {
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = d / heads;
    // GPTNeoXConfig's defaults: a quarter of each head rotates, base 10000.
    const rope = ropeFromHf(json, path, { theta: 10000, partialFactor: 0.25, thetaKeys: ["rotary_emb_base"], partialKeys: ["rotary_pct"] });
    cfg = {
      architecture: "gpt_neox", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_hidden_layers"]), nHeads: heads, nKvHeads: heads, dHead,
      dMlp: int(json, path, ["intermediate_size"]), maxPositions: int(json, path, ["max_position_embeddings"], 2048),
      norm: "layernorm", normEps: num(json, path, ["layer_norm_eps"], 1e-5), mlp: "standard",
      activation: hfActivation(json, path, "hidden_act", "gelu"), positional: "rotary", rope,
      rotaryDims: rotaryDimsOf(rope, dHead), rotaryStyle: RotaryStyle.RotateHalf,
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: flag(json, path, "use_parallel_residual", true), tiedEmbeddings: flag(json, path, "tie_word_embeddings", false),
      attentionBias: flag(json, path, "attention_bias", true), mlpBias: true,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
    };
  } else if (type === "gpt2") {
    const d = int(json, path, ["n_embd", "hidden_size"]);
    const heads = int(json, path, ["n_head", "num_attention_heads"]);
    cfg = {
      architecture: "gpt2", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["n_layer", "num_hidden_layers"]), nHeads: heads, nKvHeads: heads, dHead: d / heads,
      dMlp: int(json, path, ["n_inner"], 4 * d), maxPositions: int(json, path, ["n_positions", "n_ctx"]),
      norm: "layernorm", normEps: num(json, path, ["layer_norm_epsilon"], 1e-5), mlp: "standard",
      activation: hfActivation(json, path, "activation_function", "gelu_new"), positional: "learned", rope: null,
      rotaryDims: 0, rotaryStyle: RotaryStyle.RotateHalf,
      // reorder_and_upcast_attn only changes the precision of half-precision runs; saekit computes in fp32.
      scaleAttnByHeadDim: flag(json, path, "scale_attn_weights", true), scaleAttnByLayer: flag(json, path, "scale_attn_by_inverse_layer_idx", false),
      parallelResidual: false, tiedEmbeddings: true,
      attentionBias: true, mlpBias: true,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
    };
  } else if (type === "gpt_neo") {
    // GPT-Neo (EleutherAI; the TinyStories models): GPT-2's block with separate q/k/v
    // projections and no 1/sqrt(d_head) on the attention logits.
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_heads"]);
    cfg = {
      architecture: "gpt_neo", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_layers"]), nHeads: heads, nKvHeads: heads, dHead: d / heads,
      dMlp: int(json, path, ["intermediate_size"], 4 * d), maxPositions: gptNeoLocalLimit(json, path, int(json, path, ["max_position_embeddings"])),
      norm: "layernorm", normEps: num(json, path, ["layer_norm_epsilon"], 1e-5), mlp: "standard",
      activation: hfActivation(json, path, "activation_function", "gelu_new"), positional: "learned", rope: null,
      rotaryDims: 0, rotaryStyle: RotaryStyle.RotateHalf, scaleAttnByHeadDim: false, scaleAttnByLayer: false,
      parallelResidual: false, tiedEmbeddings: flag(json, path, "tie_word_embeddings", true), attentionBias: false, mlpBias: true,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
    };
  } else if (type === "gptj") {
    // GPT-J (EleutherAI's GPT-J-6B): attention and MLP side by side on one LayerNorm, the
    // first rotary_dim dimensions of each head rotated in interleaved pairs (rotate_every_two),
    // no attention biases, an unembedding with a bias (loaded with the weights).
    const d = int(json, path, ["n_embd"]);
    const heads = int(json, path, ["n_head"]);
    const dHead = d / heads;
    if (json.rotary_dim === null) throw new Error(`${path}: "rotary_dim" null (rotary over the whole model width) is not supported; give the rotated dimensions of each head`);
    const rotaryDims = int(json, path, ["rotary_dim"], 64);
    cfg = {
      architecture: "gptj", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["n_layer"]), nHeads: heads, nKvHeads: heads, dHead,
      dMlp: int(json, path, ["n_inner"], 4 * d), maxPositions: int(json, path, ["n_positions"], 2048),
      norm: "layernorm", normEps: num(json, path, ["layer_norm_epsilon"], 1e-5), mlp: "standard",
      activation: hfActivation(json, path, "activation_function", "gelu_new"), positional: "rotary",
      // GPTJAttention's base is fixed at 10000.
      rope: { theta: 10000, partialFactor: rotaryDims / dHead, scaling: { type: "default" } },
      rotaryDims, rotaryStyle: RotaryStyle.Interleaved,
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: true, tiedEmbeddings: flag(json, path, "tie_word_embeddings", false),
      attentionBias: false, mlpBias: true,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
    };
  } else if (type === "phi") {
    // Phi (microsoft/phi-1, phi-1_5, phi-2): GPT-J's parallel block on one LayerNorm, with
    // q/k/v and output biases, a share of each head rotated (rotate-half), a biased unembedding.
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = d / heads;
    if (flag(json, path, "qk_layernorm", false)) throw new Error(`${path}: qk_layernorm (a LayerNorm per head on q and k) is not supported`);
    const rope = ropeFromHf(json, path, { theta: 10000, partialFactor: 0.5, thetaKeys: [], partialKeys: [] });
    cfg = {
      architecture: "phi", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_hidden_layers"]), nHeads: heads, nKvHeads: int(json, path, ["num_key_value_heads"], heads), dHead,
      dMlp: int(json, path, ["intermediate_size"]), maxPositions: int(json, path, ["max_position_embeddings"], 2048),
      norm: "layernorm", normEps: num(json, path, ["layer_norm_eps"], 1e-5), mlp: "standard",
      activation: hfActivation(json, path, "hidden_act", "gelu_new"), positional: "rotary", rope,
      rotaryDims: rotaryDimsOf(rope, dHead), rotaryStyle: RotaryStyle.RotateHalf,
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: true, tiedEmbeddings: flag(json, path, "tie_word_embeddings", false),
      attentionBias: true, mlpBias: true,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
    };
  } else if (type === "olmo") {
    // OLMo (the first, OLMo-1B-hf and -7B-hf): Llama's block with LayerNorms that have no
    // weights or biases (eps 1e-5 whatever the config says, as OlmoLayerNorm), q/k/v
    // optionally clamped (clip_qkv), no biases unless attention_bias.
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = int(json, path, ["head_dim"], d / heads);
    if (hfActivation(json, path, "hidden_act", "silu") !== "silu") throw new Error(`${path}: hidden_act must be silu for olmo`);
    const rope = ropeFromHf(json, path, { theta: 10000, partialFactor: 1, thetaKeys: [], partialKeys: [] });
    const clip = clipQkvFromHf(json, path);
    cfg = {
      architecture: "llama", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_hidden_layers"]), nHeads: heads,
      nKvHeads: int(json, path, ["num_key_value_heads"], heads), dHead,
      dMlp: int(json, path, ["intermediate_size"]), maxPositions: int(json, path, ["max_position_embeddings"], 2048),
      norm: "layernorm", normEps: 1e-5, unweightedNorms: true, mlp: "swiglu", activation: "silu",
      positional: "rotary", rope, rotaryDims: rotaryDimsOf(rope, dHead), rotaryStyle: RotaryStyle.RotateHalf,
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: false, tiedEmbeddings: flag(json, path, "tie_word_embeddings", false),
      attentionBias: flag(json, path, "attention_bias", false), mlpBias: false,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
      ...(clip > 0 ? { clipQkv: clip } : {}),
    };
  } else if (type === "lfm2" || type === "lfm2_moe") {
    // LFM2 (Liquid AI): Llama's block (RMSNorms, SwiGLU, rotary attention with per-head q/k
    // norms) in some layers, a gated short convolution (short-conv.ts) in the others; a tied
    // unembedding. Its checkpoints name the norms operator_norm, ffn_norm and embedding_norm.
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const layers = int(json, path, ["num_hidden_layers"]);
    if (flag(json, path, "conv_bias", false)) throw new Error(`${path}: conv_bias (biases on LFM2's convolution blocks) is not supported`);
    const rope = ropeFromHf(json, path, { theta: 1_000_000, partialFactor: 1, thetaKeys: [], partialKeys: [] });
    cfg = {
      architecture: "llama", vocabSize: int(json, path, ["vocab_size"]), dModel: d, nLayers: layers, nHeads: heads,
      nKvHeads: int(json, path, ["num_key_value_heads"], heads), dHead: d / heads,
      // LFM2-MoE's dense layers are intermediate_size wide, as given.
      dMlp: type === "lfm2_moe" ? int(json, path, ["intermediate_size"], 7168) : lfm2MlpWidth(json, path),
      maxPositions: int(json, path, ["max_position_embeddings"], 128_000),
      norm: "rmsnorm", normEps: num(json, path, ["norm_eps"], 1e-5), mlp: "swiglu", activation: "silu",
      positional: "rotary", rope, rotaryDims: rotaryDimsOf(rope, d / heads), rotaryStyle: RotaryStyle.RotateHalf,
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: false,
      tiedEmbeddings: flag(json, path, "tie_embedding", flag(json, path, "tie_word_embeddings", true)),
      attentionBias: false, mlpBias: false, bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
      qkNorm: "head", shortConv: { layers: lfm2ConvLayers(json, path, layers), kernel: int(json, path, ["conv_L_cache"], 3) },
      ...(type === "lfm2_moe" ? { moe: moeFromHf(json, path, type, layers) } : {}),
    };
    if (!(cfg.shortConv!.kernel >= 1)) throw new Error(`${path}: conv_L_cache must be a positive integer, got ${cfg.shortConv!.kernel}`);
  } else if (type === "falcon_h1") {
    // Falcon-H1 (TII): in every layer Mamba-2 (mamba2.ts) and rotary attention side by side on
    // one RMSNorm, their outputs summed into the stream, then a SwiGLU MLP; muP multipliers on
    // the embeddings, each projection's input or output and the logits (falcon-h1.ts).
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = int(json, path, ["head_dim"], d / heads);
    const layers = int(json, path, ["num_hidden_layers"]);
    // The one activation serves the MLP and the Mamba convolution (FalconH1Mixer's act).
    if (hfActivation(json, path, "hidden_act", "silu") !== "silu") throw new Error(`${path}: hidden_act must be silu for falcon_h1`);
    if (flag(json, path, "projectors_bias", false)) throw new Error(`${path}: projectors_bias (biases on Mamba-2's projections) is not supported`);
    const rope = ropeFromHf(json, path, { theta: 10000, partialFactor: 1, thetaKeys: [], partialKeys: [] });
    // FalconH1Mixer: without mamba_rms_norm, y silu(z); with it an RMSNorm per group of channels, before the gate (FalconH1Config's default) or after it.
    const gate: MambaGate = !flag(json, path, "mamba_rms_norm", false) ? "gate" : flag(json, path, "mamba_norm_before_gate", true) ? "norm-then-gate" : "gate-then-norm";
    const inner = json.mamba_d_ssm === undefined || json.mamba_d_ssm === null ? num(json, path, ["mamba_expand"], 2) * d : int(json, path, ["mamba_d_ssm"]);
    const shape = mambaShapeFromHf(json, path, inner, gate, int(json, path, ["mamba_n_groups"], 1));
    cfg = {
      architecture: "llama", vocabSize: int(json, path, ["vocab_size"]), dModel: d, nLayers: layers, nHeads: heads,
      nKvHeads: int(json, path, ["num_key_value_heads"], heads), dHead,
      dMlp: int(json, path, ["intermediate_size"]), maxPositions: int(json, path, ["max_position_embeddings"], 8192),
      norm: "rmsnorm", normEps: num(json, path, ["rms_norm_eps"], 1e-5), mlp: "swiglu", activation: "silu",
      positional: "rotary", rope, rotaryDims: rotaryDimsOf(rope, dHead), rotaryStyle: RotaryStyle.RotateHalf,
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: false, tiedEmbeddings: flag(json, path, "tie_word_embeddings", false),
      attentionBias: false, mlpBias: false, bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
      mamba: { ...shape, layers: Array(layers).fill(true), parallel: true },
      embedScale: num(json, path, ["embedding_multiplier"], 1), logitScale: num(json, path, ["lm_head_multiplier"], 1),
      falconH1: falconH1Multipliers(json, path),
    };
  } else if (LLAMA_BLOCK_TYPES.includes(type as string)) {
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = int(json, path, ["head_dim"], d / heads);
    if (hfActivation(json, path, "hidden_act", "silu") !== "silu") throw new Error(`${path}: hidden_act must be silu for ${String(type)}`);
    // StableLmConfig rotates a quarter of each head by default, the others all of it.
    const stablelm = type === "stablelm";
    // OLMoE clamps q, k and v (clip_qkv) after its q/k norms, where OLMo clamps the projections.
    const clip = type === "olmoe" ? clipQkvFromHf(json, path) : 0;
    // GLM rotates half of each head (GlmConfig's default), in interleaved pairs.
    const glm = type === "glm" || type === "glm4";
    // Cohere (Command R, Aya): attention and MLP side by side on one LayerNorm without a bias,
    // interleaved rotary pairs, logits times logit_scale. Cohere 2 (Command R7B) rotates only in
    // its sliding-window layers: the others, every sliding_window_pattern-th, have no positions.
    const cohere = type === "cohere" || type === "cohere2";
    // Qwen3.5: Gated DeltaNets (linear attention) in three of every four layers, the others
    // attention whose heads are gated by a second query projection, with per-head q/k norms;
    // RMSNorms of 1 + w; a quarter of each head rotated.
    const qwen35 = type === "qwen3_5_text";
    // Granite 4.0 (granitemoehybrid): Granite's multipliers, an MLP called shared_mlp (fused
    // input_linear; beside a GraniteMoE mixture where it has experts), rotary positions only with
    // position_embedding_type "rope", and in its -H models Mamba-2 (mamba2.ts) in most layers.
    const granite4 = type === "granitemoehybrid";
    const rope = ropeFromHf(json, path, { theta: 10000, partialFactor: stablelm || qwen35 ? 0.25 : glm ? 0.5 : 1, thetaKeys: [], partialKeys: [] });
    cfg = {
      architecture: "llama", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_hidden_layers"]), nHeads: heads,
      nKvHeads: int(json, path, ["num_key_value_heads"], heads), dHead,
      dMlp: int(json, path, [granite4 ? "shared_intermediate_size" : "intermediate_size"], granite4 ? 1024 : undefined),
      maxPositions: slidingWindowLimit(json, path, int(json, path, ["max_position_embeddings"], 2048)),
      // Olmo2Config's, Olmo3Config's, Phi3Config's, MixtralConfig's and OlmoeConfig's default eps is 1e-5, LlamaConfig's 1e-6;
      // StableLM's norms are LayerNorms (with biases).
      norm: stablelm || cohere ? "layernorm" : "rmsnorm",
      normEps: stablelm || cohere ? num(json, path, ["layer_norm_eps"], 1e-5)
        : num(json, path, ["rms_norm_eps"], ["olmo2", "olmo3", "phi3", "mixtral", "olmoe", "ministral3"].includes(type as string) ? 1e-5 : glm ? 1.5625e-7 : 1e-6),
      mlp: "swiglu", activation: "silu",
      positional: "rotary", rope, rotaryDims: rotaryDimsOf(rope, dHead), rotaryStyle: glm || cohere ? RotaryStyle.Interleaved : RotaryStyle.RotateHalf,
      // StableLM with use_parallel_residual: attention and MLP both read the block input's one norm.
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: cohere || (stablelm && flag(json, path, "use_parallel_residual", false)),
      tiedEmbeddings: flag(json, path, "tie_word_embeddings", cohere),
      // Llama-family checkpoints differ in which projections carry biases (Qwen2 has q/k/v
      // biases only); the loader takes whichever bias tensors the checkpoint has.
      attentionBias: false, mlpBias: false,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
      ...(type === "qwen3" || type === "qwen3_moe" || qwen35 ? { qkNorm: "head" as const } : {}),
      ...(qwen35 ? { offsetNorms: true, attnOutputGate: true, linearAttention: linearAttentionFromHf(json, path, int(json, path, ["num_hidden_layers"])) } : {}),
      // OLMoE: Llama's norms before attention and MLP, with OLMo 2's q/k norms over the whole projections.
      ...(type === "olmoe" ? { qkNorm: "projection" as const } : {}),
      // StableLM's qk_layernorm (StableLM 2 12B), Cohere's use_qk_norm (Command R+): a LayerNorm per head, weights per head.
      ...((stablelm && flag(json, path, "qk_layernorm", false)) || (type === "cohere" && flag(json, path, "use_qk_norm", false))
        ? { qkNorm: "head-layernorm" as const } : {}),
      ...(clip > 0 ? { clipQkv: clip, clipQkvAfterNorm: true } : {}),
      ...(MOE_TYPES.includes(type as string) ? { moe: moeFromHf(json, path, type as string, int(json, path, ["num_hidden_layers"])) } : {}),
      ...(granite4 && int(json, path, ["num_local_experts"], 8) > 0 ? { moe: moeFromHf(json, path, type as string, int(json, path, ["num_hidden_layers"])) } : {}),
      ...(granite4 && json.position_embedding_type !== "rope" ? { noRope: Array(int(json, path, ["num_hidden_layers"])).fill(true) } : {}),
      ...(granite4 ? granite4Mamba(json, path, d, int(json, path, ["num_hidden_layers"])) : {}),
      // OLMo 2: Llama's block with the norms moved onto the attention and MLP outputs, and
      // RMSNorms over the whole query and key projections. OLMo 3 adds sliding-window layers
      // (the same within the window, which holds saekit's contexts) with a rotary of their own.
      ...(type === "olmo2" || type === "olmo3" ? { preNorms: false, postNorms: true, qkNorm: "projection" as const } : {}),
      ...(type === "olmo3" ? {
        localRope: ropeFromHf(json, path, { theta: 10000, partialFactor: 1, thetaKeys: [], partialKeys: [] }, "sliding_attention"),
        localLayers: layerKinds(json, path, int(json, path, ["num_hidden_layers"]), null),
      } : {}),
      // Granite (and GraniteMoE): Llama's block with four scalar multipliers, on the embeddings, the attention
      // logits (in place of 1/sqrt(d_head)), each block's outputs and the logits (a divisor).
      ...(type === "granite" || type === "granitemoe" || granite4 ? {
        embedScale: num(json, path, ["embedding_multiplier"], 1), attentionMultiplier: num(json, path, ["attention_multiplier"], 1),
        residualScale: num(json, path, ["residual_multiplier"], 1), logitScale: 1 / positive(json, path, "logits_scaling", 1),
      } : {}),
      // GLM-4: norms after attention and MLP too, as Gemma 2 has them.
      ...(type === "glm4" ? { postNorms: true } : {}),
      // SmolLM3: no_rope_layers[i] = 0 marks a layer without rotary positions (NoPE).
      ...(type === "smollm3" ? { noRope: noRopeLayers(json, path, int(json, path, ["num_hidden_layers"])) } : {}),
      ...(cohere ? { normBias: false, logitScale: positive(json, path, "logit_scale", 0.0625) } : {}),
      ...(type === "cohere2" ? { noRope: layerKinds(json, path, int(json, path, ["num_hidden_layers"]), 4).map((sliding) => !sliding) } : {}),
    };
  } else if (type === "gemma" || type === "gemma2" || type === "gemma3_text" || type === "vaultgemma") {
    // Gemma: Llama's block with GeGLU, (1 + w) RMSNorm weights (folded in at load), embeddings
    // scaled by sqrt(d) and a tied unembedding; Gemma 2 adds norms after attention and MLP,
    // soft-capped logits and alternating local (sliding-window) and global layers. Gemma 3
    // (text: Gemma3ForCausalLM) drops the soft caps for q/k head norms and gives its local
    // layers a rotary base of their own. VaultGemma is Gemma 2 without the norms after
    // attention and MLP (its MLP's input norm is named pre_feedforward_layernorm).
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = int(json, path, ["head_dim"], d / heads);
    const gemma3 = type === "gemma3_text";
    const rope = ropeFromHf(json, path, { theta: gemma3 ? 1_000_000 : 10000, partialFactor: 1, thetaKeys: [], partialKeys: [] });
    const vault = type === "vaultgemma";
    const gemma2 = type === "gemma2" || gemma3 || vault;
    cfg = {
      architecture: "gemma", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_hidden_layers"]), nHeads: heads,
      nKvHeads: int(json, path, ["num_key_value_heads"], heads), dHead,
      dMlp: int(json, path, ["intermediate_size"]),
      maxPositions: gemma2 ? slidingWindowLimit(json, path, int(json, path, ["max_position_embeddings"], 8192))
        : int(json, path, ["max_position_embeddings"], 8192),
      norm: "rmsnorm", normEps: num(json, path, ["rms_norm_eps"], 1e-6), mlp: "swiglu",
      // transformers runs Gemma's MLP with the tanh GELU whatever the older hidden_act says.
      activation: hfActivation(json, path, "hidden_activation", "gelu_pytorch_tanh"),
      positional: "rotary", rope, rotaryDims: rotaryDimsOf(rope, dHead), rotaryStyle: RotaryStyle.RotateHalf,
      scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: false, tiedEmbeddings: flag(json, path, "tie_word_embeddings", true),
      attentionBias: flag(json, path, "attention_bias", false), mlpBias: false,
      bosTokenId: tokenId(json, path, "bos_token_id"), eosTokenId: tokenId(json, path, "eos_token_id"),
      embedScale: Math.fround(Math.sqrt(d)),
      ...(gemma2 ? {
        postNorms: !vault,
        attnSoftcap: num(json, path, ["attn_logit_softcapping"], 0),
        finalSoftcap: num(json, path, ["final_logit_softcapping"], 0),
        queryPreAttnScalar: num(json, path, ["query_pre_attn_scalar"], dHead),
      } : {}),
      ...(gemma3 ? {
        qkNorm: "head" as const,
        // transformers v4 wrote the local layers' base alone (their rotary unscaled), v5 writes their own rope_parameters.
        localRope: hasRopeParametersFor(json, "sliding_attention")
          ? ropeFromHf(json, path, { theta: 10000, partialFactor: 1, thetaKeys: [], partialKeys: [] }, "sliding_attention")
          : { theta: num(json, path, ["rope_local_base_freq"], 10000), partialFactor: 1, scaling: { type: "default" } },
        localLayers: layerKinds(json, path, int(json, path, ["num_hidden_layers"]), 6),
      } : {}),
    };
  } else {
    throw new Error(`${path}: model_type ${JSON.stringify(type)} is not supported (gpt_neox, gpt2, gpt_neo, gptj, phi, llama, mistral, qwen2, qwen3, olmo, olmo2, olmo3, phi3, smollm3, ministral, ministral3, granite, stablelm, glm, glm4, mixtral, qwen2_moe, qwen3_moe, olmoe, granitemoe, granitemoehybrid, falcon_h1, cohere, cohere2, lfm2, lfm2_moe, gemma, gemma2, gemma3_text, gemma3, vaultgemma, mistral3, qwen2_vl, qwen2_5_vl, qwen3_vl, qwen3_5_text, qwen3_5)`);
  }
  if (json.model_type === "ministral3") {
    // Ministral 3 scales its queries by 1 + beta ln(1 + floor(position / original context))
    // (llama_4_scaling_beta): 1 within the original context, which saekit keeps contexts to.
    const rope = { ...json, ...(json.rope_scaling ?? json.rope_parameters ?? {}) as Json };
    if (rope.llama_4_scaling_beta) cfg.maxPositions = Math.min(cfg.maxPositions, Math.floor(positive(rope, path, "original_max_position_embeddings", cfg.maxPositions)));
  }
  if (cfg.rope?.scaling.type === "longrope") {
    // Past its original context LongRoPE switches to its long factors: saekit stays within it.
    const { shortFactor, originalMaxPositions } = cfg.rope.scaling;
    if (shortFactor.length !== cfg.rotaryDims / 2) throw new Error(`${path}: rope_scaling.short_factor has ${shortFactor.length} entries, the ${cfg.rotaryDims} rotated dimensions of a head need ${cfg.rotaryDims / 2}`);
    cfg.maxPositions = Math.min(cfg.maxPositions, Math.floor(originalMaxPositions));
  }
  validateLmConfig(cfg, path);
  return cfg;
}

/** The mixture-of-experts model types (Llama-family blocks with MoE MLPs). */
const MOE_TYPES: readonly string[] = ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "granitemoe"];

/**
 * A mixture-of-experts config as each model's config class reads it (with its defaults):
 * Mixtral's and GraniteMoE's num_local_experts, experts of intermediate_size, always renormalised; Qwen2-MoE's
 * and Qwen3-MoE's num_experts of moe_intermediate_size, MoE in every decoder_sparse_step-th
 * layer not in mlp_only_layers, Qwen2-MoE's shared expert; OLMoE's num_experts of
 * intermediate_size. norm_topk_prob says whether the topK probabilities are renormalised.
 */
function moeFromHf(json: Json, path: string, type: string, layers: number): MoeConfig {
  // GraniteMoE softmaxes the topK router logits alone: the same weights as Mixtral's renormalised probabilities.
  const mixtral = type === "mixtral" || type === "granitemoe" || type === "granitemoehybrid";
  const qwen = type === "qwen2_moe" || type === "qwen3_moe";
  const lfm2 = type === "lfm2_moe";
  const defaults: Record<string, [experts: number, topK: number]> = {
    mixtral: [8, 2], granitemoe: [8, 2], granitemoehybrid: [8, 2], qwen2_moe: [60, 4], qwen3_moe: [128, 8], olmoe: [64, 8], lfm2_moe: [32, 4],
  };
  const [defaultExperts, defaultTopK] = defaults[type]!;
  // transformers 5 writes Qwen3-MoE's num_experts as num_local_experts (its attribute_map): either name serves.
  const experts = int(json, path, mixtral ? ["num_local_experts", "num_experts"] : ["num_experts", "num_local_experts"], defaultExperts);
  const topK = int(json, path, ["num_experts_per_tok"], defaultTopK);
  if (experts < 1 || topK < 1 || topK > experts) throw new Error(`${path}: num_experts_per_tok (${topK}) must be between 1 and the ${experts} experts`);
  const dExpert = qwen || lfm2 ? int(json, path, ["moe_intermediate_size"], type === "qwen2_moe" ? 1408 : lfm2 ? 1792 : 768)
    : int(json, path, ["intermediate_size"]);
  let moeLayers = new Array<boolean>(layers).fill(true);
  if (qwen) {
    const step = int(json, path, ["decoder_sparse_step"], 1);
    const only = json.mlp_only_layers ?? [];
    if (step < 1) throw new Error(`${path}: "decoder_sparse_step" must be at least 1`);
    if (!Array.isArray(only) || only.some((l) => !Number.isSafeInteger(l))) throw new Error(`${path}: "mlp_only_layers" must be a list of layer indices`);
    moeLayers = moeLayers.map((_, i) => !only.includes(i) && (i + 1) % step === 0);
  }
  // LFM2-MoE: its first num_dense_layers layers keep a dense MLP.
  if (lfm2) {
    const dense = int(json, path, ["num_dense_layers"], 2);
    moeLayers = moeLayers.map((_, i) => i >= dense);
  }
  return {
    experts, topK, normTopK: mixtral || flag(json, path, "norm_topk_prob", lfm2), dExpert,
    dShared: type === "qwen2_moe" ? int(json, path, ["shared_expert_intermediate_size"], 5632)
      : type === "granitemoehybrid" ? int(json, path, ["shared_intermediate_size"], 1024) : 0,
    ...(type === "granitemoehybrid" ? { ungatedShared: true } : {}),
    layers: moeLayers,
    ...(lfm2 ? { scoring: "sigmoid" as const, routedScale: num(json, path, ["routed_scaling_factor"], 1), expertBias: flag(json, path, "use_expert_bias", true) } : {}),
  };
}

/**
 * `layer_types` as flags, true where a layer's type is `kind` (the other type allowed being
 * full_attention); null where the config lists none.
 */
function layerTypeFlags(json: Json, path: string, layers: number, kind: string): boolean[] | null {
  const types = json.layer_types;
  if (!Array.isArray(types)) return null;
  if (types.length !== layers) throw new Error(`${path}: "layer_types" has ${types.length} entries for ${layers} layers`);
  return types.map((t) => {
    if (t !== kind && t !== "full_attention") throw new Error(`${path}: layer type ${JSON.stringify(t)} is not supported (${kind}, full_attention)`);
    return t === kind;
  });
}

/**
 * Which layers use sliding-window attention (Gemma 3, OLMo 3): `layer_types`
 * ("sliding_attention" / "full_attention"), or in older configs every layer but each
 * `sliding_window_pattern`-th (`defaultPattern` where the config has neither; null: required).
 */
function layerKinds(json: Json, path: string, layers: number, defaultPattern: number | null): boolean[] {
  const listed = layerTypeFlags(json, path, layers, "sliding_attention");
  if (listed) return listed;
  if (defaultPattern === null && json.sliding_window_pattern === undefined) throw new Error(`${path}: "layer_types" must list each layer's attention (sliding_attention or full_attention)`);
  const pattern = int(json, path, ["sliding_window_pattern"], defaultPattern ?? 1);
  return Array.from({ length: layers }, (_, i) => (i + 1) % pattern !== 0);
}

/** SmolLM3's `no_rope_layers`: 1 for a layer with rotary positions, 0 for one without; absent, every layer has them. */
function noRopeLayers(json: Json, path: string, layers: number): boolean[] | undefined {
  const flags = json.no_rope_layers;
  if (flags === undefined || flags === null) return undefined;
  if (!Array.isArray(flags) || flags.length !== layers || flags.some((f) => f !== 0 && f !== 1)) {
    throw new Error(`${path}: "no_rope_layers" must list 0 or 1 for each of the ${layers} layers`);
  }
  return flags.map((f) => f === 0);
}

/** The MLP activation named by a transformers ACT2FN key. */
function hfActivation(json: Json, path: string, key: string, fallback: string): LmConfig["activation"] {
  const act = String(field(json, path, [key], fallback));
  if (act === "gelu") return "gelu";
  // Three names for the same tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  if (act === "gelu_new" || act === "gelu_fast" || act === "gelu_pytorch_tanh") return "gelu_new";
  if (act === "relu") return "relu";
  if (act === "silu" || act === "swish") return "silu";
  throw new Error(`${path}: ${key} "${act}" is not supported (gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, relu, silu)`);
}

/**
 * Qwen3.5's Gated DeltaNet layers: `layer_types` ("linear_attention" / "full_attention"), or
 * every layer but each full_attention_interval-th (default 4); and their shape.
 */
function linearAttentionFromHf(json: Json, path: string, layers: number): DeltaNetShape & { layers: boolean[] } {
  let linear = layerTypeFlags(json, path, layers, "linear_attention");
  if (!linear) {
    const interval = int(json, path, ["full_attention_interval"], 4);
    if (interval < 1) throw new Error(`${path}: "full_attention_interval" must be at least 1`);
    linear = Array.from({ length: layers }, (_, i) => (i + 1) % interval !== 0);
  }
  const shape = {
    kHeads: int(json, path, ["linear_num_key_heads"], 16), vHeads: int(json, path, ["linear_num_value_heads"], 32),
    dk: int(json, path, ["linear_key_head_dim"], 128), dv: int(json, path, ["linear_value_head_dim"], 128),
    convKernel: int(json, path, ["linear_conv_kernel_dim"], 4),
  };
  for (const [k, v] of Object.entries(shape)) if (!(v >= 1)) throw new Error(`${path}: the linear attention's ${k} must be a positive integer, got ${v}`);
  if (shape.vHeads % shape.kHeads !== 0) throw new Error(`${path}: linear_num_value_heads (${shape.vHeads}) must be a multiple of linear_num_key_heads (${shape.kHeads})`);
  return { ...shape, layers: linear };
}

/**
 * LFM2's convolution layers: `layer_types` ("conv" / "full_attention"), or every layer not in
 * full_attn_idxs (Lfm2Config: all of them attention when neither is given).
 */
function lfm2ConvLayers(json: Json, path: string, layers: number): boolean[] {
  const listed = layerTypeFlags(json, path, layers, "conv");
  if (listed) return listed;
  const idxs = json.full_attn_idxs ?? null;
  if (idxs === null) return Array(layers).fill(false);
  if (!Array.isArray(idxs) || idxs.some((i) => !Number.isInteger(i) || i < 0 || i >= layers)) {
    throw new Error(`${path}: "full_attn_idxs" must list layer indices below ${layers}`);
  }
  return Array.from({ length: layers }, (_, i) => !idxs.includes(i));
}

/**
 * LFM2's MLP width as Lfm2MLP derives it: block_ff_dim (intermediate_size), with
 * block_auto_adjust_ff_dim two thirds of it, then times block_ffn_dim_multiplier (when given),
 * rounded up to a multiple of block_multiple_of.
 */
function lfm2MlpWidth(json: Json, path: string): number {
  let m = int(json, path, ["block_ff_dim", "intermediate_size"], 12288);
  if (!flag(json, path, "block_auto_adjust_ff_dim", true)) return m;
  m = Math.floor((2 * m) / 3);
  // Lfm2Config's multiplier defaults to 1.0 (rounded all the same); null leaves the width as it is.
  if (json.block_ffn_dim_multiplier === null) return m;
  m = Math.floor(num(json, path, ["block_ffn_dim_multiplier"], 1) * m);
  const multiple = int(json, path, ["block_multiple_of"], 256);
  return multiple * Math.ceil(m / multiple);
}

/**
 * Granite 4.0's Mamba-2 layers (layer_types "mamba", or transformers 5's "linear_attention";
 * every layer when none are listed, as GraniteMoeHybridConfig has it) and their shape; nothing
 * for its attention-only models.
 */
function granite4Mamba(json: Json, path: string, d: number, layers: number): { mamba?: MambaShape & { layers: boolean[] } } {
  const types = json.layer_types ?? json.layers_block_type ?? Array(layers).fill("mamba");
  if (!Array.isArray(types) || types.length !== layers) throw new Error(`${path}: "layer_types" must list each of the ${layers} layers`);
  const mamba = types.map((t) => {
    if (t === "mamba" || t === "linear_attention") return true;
    if (t === "attention" || t === "full_attention") return false;
    throw new Error(`${path}: layer type ${JSON.stringify(t)} is not supported (mamba, attention)`);
  });
  if (!mamba.includes(true)) return {};
  return { mamba: { ...mambaShapeFromHf(json, path, num(json, path, ["mamba_expand"], 2) * d, "gate-then-norm", 1), layers: mamba } };
}

/**
 * The shape of Mamba-2 layers `inner` channels wide (mamba2.ts), from the mamba_* fields
 * GraniteMoeHybridConfig and FalconH1Config share, with the gate and norm groups given.
 */
function mambaShapeFromHf(json: Json, path: string, inner: number, gate: MambaGate, normGroups: number): MambaShape {
  if (flag(json, path, "mamba_proj_bias", false)) throw new Error(`${path}: mamba_proj_bias (biases on Mamba-2's projections) is not supported`);
  const heads = int(json, path, ["mamba_n_heads"], 128);
  const headDim = json.mamba_d_head === undefined || json.mamba_d_head === "auto" ? inner / heads : int(json, path, ["mamba_d_head"]);
  if (!Number.isInteger(headDim) || headDim * heads !== inner) throw new Error(`${path}: ${heads} Mamba heads of ${headDim} do not make its ${inner} channels`);
  const shape = {
    heads, headDim, groups: int(json, path, ["mamba_n_groups"], 1), dState: int(json, path, ["mamba_d_state"], 256),
    convKernel: int(json, path, ["mamba_d_conv"], 4), gate, normGroups,
  };
  if (!(shape.groups >= 1) || heads % shape.groups !== 0) throw new Error(`${path}: mamba_n_heads (${heads}) must be a multiple of mamba_n_groups (${shape.groups})`);
  if (!(shape.convKernel >= 1 && shape.dState >= 1)) throw new Error(`${path}: mamba_d_conv and mamba_d_state must be positive integers`);
  // The configs' default (0, inf) clamps nothing; transformers 5 writes inf as {"__float__": "Infinity"}, 4 as
  // Python's bare Infinity (parseJson reads it as the number).
  const limit = json.time_step_limit;
  const unbounded = (v: unknown) => v === null || v === Infinity || v === "Infinity" || (typeof v === "object" && (v as Json).__float__ === "Infinity");
  if (Array.isArray(limit) && (limit[0] !== 0 || !unbounded(limit[1]))) {
    throw new Error(`${path}: time_step_limit ${JSON.stringify(limit)} (dt clamped) is not supported`);
  }
  return shape;
}

/** FalconH1Config's multipliers (each 1 when absent): what loading folds into the weights. */
function falconH1Multipliers(json: Json, path: string): FalconH1Multipliers {
  const list = (key: string, n: number): number[] => {
    const v = json[key];
    if (v === undefined || v === null) return Array(n).fill(1);
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw new Error(`${path}: "${key}" must be a list of ${n} finite numbers, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const [mlpGate, mlpDown] = list("mlp_multipliers", 2) as [number, number];
  return {
    attentionIn: num(json, path, ["attention_in_multiplier"], 1), key: num(json, path, ["key_multiplier"], 1),
    attentionOut: num(json, path, ["attention_out_multiplier"], 1), ssmIn: num(json, path, ["ssm_in_multiplier"], 1),
    ssmOut: num(json, path, ["ssm_out_multiplier"], 1), ssm: list("ssm_multipliers", 5), mlpGate, mlpDown,
  };
}

/** OLMo's and OLMoE's clip_qkv: a positive bound, or 0 when null or absent. */
function clipQkvFromHf(json: Json, path: string): number {
  if (json.clip_qkv === undefined || json.clip_qkv === null) return 0;
  const clip = num(json, path, ["clip_qkv"]);
  if (!(clip > 0)) throw new Error(`${path}: "clip_qkv" must be a positive number or null, got ${JSON.stringify(json.clip_qkv)}`);
  return clip;
}

/**
 * Mistral, Gemma 2's local layers (and Qwen2/3 and their MoE versions with use_sliding_window) attend only to the
 * last `sliding_window` positions. Within that many positions the window hides nothing, so saekit runs such
 * models on contexts up to the window and refuses longer ones.
 */
function slidingWindowLimit(json: Json, path: string, maxPositions: number): number {
  if (["qwen2", "qwen3", "qwen2_moe", "qwen3_moe"].includes(json.model_type as string) && !flag(json, path, "use_sliding_window", false)) return maxPositions;
  if (json.sliding_window === undefined || json.sliding_window === null) return maxPositions;
  return Math.min(maxPositions, int(json, path, ["sliding_window"]));
}

/**
 * GPT-Neo's "local" layers attend to the last `window_size` positions only; as with sliding
 * windows, contexts up to the window see no difference, so saekit runs those.
 */
function gptNeoLocalLimit(json: Json, path: string, maxPositions: number): number {
  const types = json.attention_types;
  if (!Array.isArray(types)) throw new Error(`${path}: "attention_types" must be a list like [[["global", "local"], 4]]`);
  const kinds = new Set<unknown>();
  for (const entry of types) {
    if (!Array.isArray(entry) || !Array.isArray(entry[0])) throw new Error(`${path}: bad "attention_types" entry ${JSON.stringify(entry)}`);
    for (const k of entry[0]) kinds.add(k);
  }
  for (const k of kinds) if (k !== "global" && k !== "local") throw new Error(`${path}: attention type ${JSON.stringify(k)} is not supported (global, local)`);
  return kinds.has("local") ? Math.min(maxPositions, int(json, path, ["window_size"])) : maxPositions;
}

/**
 * Whether `layer` mixes tokens by attention (with heads, an attn.hook_z, keys and values to
 * cache), not by Qwen3.5's Gated DeltaNet, LFM2's short convolution or Granite 4.0-H's Mamba-2
 * alone (Falcon-H1's layers run Mamba-2 beside attention).
 */
export function hasAttention(c: LmConfig, layer: number): boolean {
  return !(c.linearAttention?.layers[layer] || c.shortConv?.layers[layer] || (c.mamba?.layers[layer] && !c.mamba.parallel));
}

/** The factor multiplying q.k in layer `layer`'s attention logits. */
export function attentionScale(c: LmConfig, layer: number): number {
  if (c.attentionMultiplier !== undefined) return c.attentionMultiplier;
  if (c.queryPreAttnScalar !== undefined) return 1 / Math.sqrt(c.queryPreAttnScalar);
  return (c.scaleAttnByHeadDim ? 1 / Math.sqrt(c.dHead) : 1) / (c.scaleAttnByLayer ? layer + 1 : 1);
}

/**
 * Generous bounds on a config's sizes, far beyond today's largest models (126 layers, a
 * 256k vocabulary, a million positions): a value past one is a typo or a hostile file, and
 * taking it would mean loops and allocations that hang or exhaust memory before any
 * tensor could say the checkpoint disagrees.
 */
const SIZE_LIMITS = {
  vocabSize: 1 << 24, dModel: 1 << 17, nLayers: 1 << 12, nHeads: 1 << 12, nKvHeads: 1 << 12, dHead: 1 << 14, dMlp: 1 << 20, maxPositions: 1 << 24,
} as const;

export function validateLmConfig(c: LmConfig, where: string): void {
  const fail = (m: string): never => { throw new Error(`${where}: ${m}`); };
  for (const k of ["vocabSize", "dModel", "nLayers", "nHeads", "nKvHeads", "dHead", "dMlp", "maxPositions"] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 1) fail(`${k} must be a positive integer, got ${c[k]}`);
    if (c[k] > SIZE_LIMITS[k]) fail(`${k} ${c[k]} is beyond any model saekit can run (at most ${SIZE_LIMITS[k]}); a mistake in the config?`);
  }
  for (const [name, id] of [["bos_token_id", c.bosTokenId], ["eos_token_id", c.eosTokenId]] as const) {
    if (id !== null && id >= c.vocabSize) fail(`${name} ${id} is outside the vocabulary (${c.vocabSize} tokens)`);
  }
  if (!(c.normEps >= 0)) fail(`the norm epsilon must be a non-negative number, got ${c.normEps}`);
  if (c.nHeads % c.nKvHeads !== 0) fail(`num_attention_heads (${c.nHeads}) must be a multiple of num_key_value_heads (${c.nKvHeads})`);
  if (c.positional === "rotary" && !c.rope) fail("rotary positions need rotary settings");
  if (c.moe) {
    const { experts, topK, dExpert, dShared, layers } = c.moe;
    if (layers.length !== c.nLayers) fail(`the mixture of experts names ${layers.length} layers of ${c.nLayers}`);
    if (!(experts >= 1 && experts <= SIZE_LIMITS.nHeads)) fail(`${experts} experts is beyond any model saekit can run (at most ${SIZE_LIMITS.nHeads})`);
    if (!(topK >= 1 && topK <= experts)) fail(`each token's ${topK} experts must be between 1 and the ${experts} there are`);
    for (const [what, n] of [["expert width", dExpert], ["shared expert width", dShared]] as const) {
      if (!Number.isSafeInteger(n) || n < 0 || n > SIZE_LIMITS.dMlp || (what === "expert width" && n < 1)) fail(`${what} ${n} must be a positive integer of at most ${SIZE_LIMITS.dMlp}`);
    }
  }
  if (c.mamba) {
    const { heads, headDim, dState, convKernel, layers } = c.mamba;
    if (layers.length !== c.nLayers) fail(`the Mamba-2 layers name ${layers.length} layers of ${c.nLayers}`);
    for (const [what, n, limit] of [["Mamba heads", heads, SIZE_LIMITS.nHeads], ["the Mamba head size", headDim, SIZE_LIMITS.dHead],
      ["the Mamba state size", dState, SIZE_LIMITS.dHead], ["the Mamba convolution's kernel", convKernel, 1 << 10]] as const) {
      if (!Number.isSafeInteger(n) || n < 1 || n > limit) fail(`${what} ${n} must be a positive integer of at most ${limit}`);
    }
  }
  if (c.positional === "rotary" && (c.rotaryDims % 2 !== 0 || c.rotaryDims > c.dHead || c.rotaryDims < 0)) {
    fail(`rotary dims ${c.rotaryDims} must be even and at most the head size ${c.dHead}`);
  }
}

/** Shapes of well-known models, for benchmarks with random weights. */
export const PRESETS: Record<string, LmConfig> = {
  "pythia-70m": {
    architecture: "gpt_neox", vocabSize: 50304, dModel: 512, nLayers: 6, nHeads: 8, nKvHeads: 8, dHead: 64,
    dMlp: 2048, maxPositions: 2048, norm: "layernorm", normEps: 1e-5, mlp: "standard", activation: "gelu",
    positional: "rotary", rope: { theta: 10000, partialFactor: 0.25, scaling: { type: "default" } }, rotaryDims: 16,
    rotaryStyle: RotaryStyle.RotateHalf, scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: true, tiedEmbeddings: false, attentionBias: true, mlpBias: true, bosTokenId: 0, eosTokenId: 0,
  },
  "gpt2": {
    architecture: "gpt2", vocabSize: 50257, dModel: 768, nLayers: 12, nHeads: 12, nKvHeads: 12, dHead: 64,
    dMlp: 3072, maxPositions: 1024, norm: "layernorm", normEps: 1e-5, mlp: "standard", activation: "gelu_new",
    positional: "learned", rope: null, rotaryDims: 0, rotaryStyle: RotaryStyle.RotateHalf,
    scaleAttnByHeadDim: true, scaleAttnByLayer: false,
    parallelResidual: false, tiedEmbeddings: true, attentionBias: true, mlpBias: true, bosTokenId: 50256, eosTokenId: 50256,
  },
  // GemmaScope's model: 2.6B parameters, ~10.5 GB in float32.
  "gemma-2-2b": {
    architecture: "gemma", vocabSize: 256000, dModel: 2304, nLayers: 26, nHeads: 8, nKvHeads: 4, dHead: 256,
    dMlp: 9216, maxPositions: 4096, norm: "rmsnorm", normEps: 1e-6, mlp: "swiglu", activation: "gelu_new",
    positional: "rotary", rope: { theta: 10000, partialFactor: 1, scaling: { type: "default" } }, rotaryDims: 256,
    rotaryStyle: RotaryStyle.RotateHalf, scaleAttnByHeadDim: true, scaleAttnByLayer: false, parallelResidual: false,
    tiedEmbeddings: true, attentionBias: false, mlpBias: false, bosTokenId: 2, eosTokenId: 1,
    embedScale: Math.fround(Math.sqrt(2304)), postNorms: true, attnSoftcap: 50, finalSoftcap: 30, queryPreAttnScalar: 256,
  },
  // tiiuae/Falcon-H1-0.5B-Base's config.json: Mamba-2 beside attention in each of 36 layers, ~2 GB in float32.
  "falcon-h1-0.5b": configFromHf({
    model_type: "falcon_h1", vocab_size: 32784, hidden_size: 1024, intermediate_size: 2048, num_hidden_layers: 36,
    num_attention_heads: 8, num_key_value_heads: 2, head_dim: 64, rms_norm_eps: 1e-5, rope_theta: 1e11, max_position_embeddings: 16384,
    tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 11, mamba_d_ssm: 1536, mamba_n_heads: 24, mamba_d_head: 64,
    mamba_d_state: 128, mamba_n_groups: 1, mamba_d_conv: 4, mamba_rms_norm: false, mamba_norm_before_gate: false,
    embedding_multiplier: 5.656854249492381, lm_head_multiplier: 0.0390625, attention_in_multiplier: 1, attention_out_multiplier: 0.9375,
    key_multiplier: 0.39062499999999994, ssm_in_multiplier: 1.25, ssm_out_multiplier: 0.23570226039551587,
    mlp_multipliers: [0.8838834764831844, 0.5859375], ssm_multipliers: [0.3535533905932738, 0.25, 0.3535533905932738, 0.5, 0.3535533905932738],
  }, "the falcon-h1-0.5b preset"),
};
