/**
 * One configuration type for every decoder-only transformer saekit runs (GPT-NeoX/Pythia,
 * GPT-2, Llama), read from a Hugging Face config.json. The forward pass (model.ts) is
 * written once against this description; what differs between families is data here and
 * the weight layout conversion in gpt-neox.ts, gpt2.ts and llama.ts.
 */
import { RotaryStyle } from "../core/kernels.js";

export type LmArchitecture = "gpt_neox" | "gpt2" | "llama";

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
  /** MLP: act(x W_in + b) W_out (standard) or (silu(x W_gate) * x W_up) W_down (swiglu). */
  mlp: "standard" | "swiglu";
  /** Activation of a standard MLP: exact GELU ("gelu"), tanh GELU ("gelu_new") or ReLU. */
  activation: "gelu" | "gelu_new" | "relu" | "silu";
  positional: "learned" | "rotary";
  rotaryDims: number;
  rotaryBase: number;
  rotaryStyle: RotaryStyle;
  /** x + attn(ln1(x)) + mlp(ln2(x)) (GPT-NeoX) instead of two sequential residual steps. */
  parallelResidual: boolean;
  /** The unembedding is the token embedding (GPT-2, small Llamas). */
  tiedEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
}

type Json = Record<string, unknown>;

function field(json: Json, path: string, keys: string[], fallback?: unknown): unknown {
  for (const k of keys) if (json[k] !== undefined && json[k] !== null) return json[k];
  if (fallback !== undefined) return fallback;
  throw new Error(`${path}: missing "${keys[0]}"`);
}

function int(json: Json, path: string, keys: string[], fallback?: number): number {
  const v = field(json, path, keys, fallback);
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`${path}: "${keys[0]}" must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function num(json: Json, path: string, keys: string[], fallback?: number): number {
  const v = field(json, path, keys, fallback);
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${path}: "${keys[0]}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function tokenId(json: Json, key: string): number | null {
  const v = json[key];
  if (Array.isArray(v)) return Number.isSafeInteger(v[0]) ? (v[0] as number) : null;
  return Number.isSafeInteger(v) ? (v as number) : null;
}

/** An LmConfig from a Hugging Face config.json object (`path` names it in errors). */
export function configFromHf(json: Json, path: string): LmConfig {
  const type = json.model_type;
  let cfg: LmConfig;
  if (type === "gpt_neox") {
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = d / heads;
    const pct = num(json, path, ["rotary_pct", "partial_rotary_factor"], 1);
    const act = String(field(json, path, ["hidden_act"], "gelu"));
    cfg = {
      architecture: "gpt_neox", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_hidden_layers"]), nHeads: heads, nKvHeads: heads, dHead,
      dMlp: int(json, path, ["intermediate_size"]), maxPositions: int(json, path, ["max_position_embeddings"], 2048),
      norm: "layernorm", normEps: num(json, path, ["layer_norm_eps"], 1e-5), mlp: "standard",
      activation: neoxActivation(act, path), positional: "rotary", rotaryDims: Math.floor(dHead * pct),
      rotaryBase: num(json, path, ["rotary_emb_base", "rope_theta"], 10000), rotaryStyle: RotaryStyle.RotateHalf,
      parallelResidual: json.use_parallel_residual !== false, tiedEmbeddings: json.tie_word_embeddings === true,
      attentionBias: json.attention_bias !== false, mlpBias: true,
      bosTokenId: tokenId(json, "bos_token_id"), eosTokenId: tokenId(json, "eos_token_id"),
    };
  } else if (type === "gpt2") {
    const d = int(json, path, ["n_embd", "hidden_size"]);
    const heads = int(json, path, ["n_head", "num_attention_heads"]);
    const act = String(field(json, path, ["activation_function"], "gelu_new"));
    if (act !== "gelu_new" && act !== "gelu" && act !== "relu") throw new Error(`${path}: activation_function "${act}" is not supported`);
    if (json.scale_attn_by_inverse_layer_idx === true || json.scale_attn_weights === false) {
      throw new Error(`${path}: scale_attn_by_inverse_layer_idx / scale_attn_weights=false are not supported`);
    }
    cfg = {
      architecture: "gpt2", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["n_layer", "num_hidden_layers"]), nHeads: heads, nKvHeads: heads, dHead: d / heads,
      dMlp: int(json, path, ["n_inner"], 4 * d), maxPositions: int(json, path, ["n_positions", "n_ctx"]),
      norm: "layernorm", normEps: num(json, path, ["layer_norm_epsilon"], 1e-5), mlp: "standard",
      activation: act as LmConfig["activation"], positional: "learned", rotaryDims: 0, rotaryBase: 0,
      rotaryStyle: RotaryStyle.RotateHalf, parallelResidual: false, tiedEmbeddings: true,
      attentionBias: true, mlpBias: true,
      bosTokenId: tokenId(json, "bos_token_id"), eosTokenId: tokenId(json, "eos_token_id"),
    };
  } else if (type === "llama" || type === "mistral" || type === "qwen2") {
    const d = int(json, path, ["hidden_size"]);
    const heads = int(json, path, ["num_attention_heads"]);
    const dHead = int(json, path, ["head_dim"], d / heads);
    const act = String(field(json, path, ["hidden_act"], "silu"));
    if (act !== "silu") throw new Error(`${path}: hidden_act "${act}" is not supported for llama (silu)`);
    if (json.rope_scaling) throw new Error(`${path}: rope_scaling is not supported`);
    cfg = {
      architecture: "llama", vocabSize: int(json, path, ["vocab_size"]), dModel: d,
      nLayers: int(json, path, ["num_hidden_layers"]), nHeads: heads,
      nKvHeads: int(json, path, ["num_key_value_heads"], heads), dHead,
      dMlp: int(json, path, ["intermediate_size"]), maxPositions: int(json, path, ["max_position_embeddings"], 2048),
      norm: "rmsnorm", normEps: num(json, path, ["rms_norm_eps"], 1e-6), mlp: "swiglu", activation: "silu",
      positional: "rotary", rotaryDims: dHead, rotaryBase: num(json, path, ["rope_theta"], 10000),
      rotaryStyle: RotaryStyle.RotateHalf, parallelResidual: false, tiedEmbeddings: json.tie_word_embeddings === true,
      // Llama-family checkpoints differ in which projections carry biases (Qwen2 has q/k/v
      // biases only); the loader takes whichever bias tensors the checkpoint has.
      attentionBias: false, mlpBias: false,
      bosTokenId: tokenId(json, "bos_token_id"), eosTokenId: tokenId(json, "eos_token_id"),
    };
  } else {
    throw new Error(`${path}: model_type ${JSON.stringify(type)} is not supported (gpt_neox, gpt2, llama)`);
  }
  validateLmConfig(cfg, path);
  return cfg;
}

function neoxActivation(act: string, path: string): LmConfig["activation"] {
  if (act === "gelu") return "gelu";
  if (act === "gelu_new" || act === "gelu_fast" || act === "gelu_pytorch_tanh") return "gelu_new";
  if (act === "relu") return "relu";
  throw new Error(`${path}: hidden_act "${act}" is not supported`);
}

export function validateLmConfig(c: LmConfig, where: string): void {
  const fail = (m: string): never => { throw new Error(`${where}: ${m}`); };
  for (const k of ["vocabSize", "dModel", "nLayers", "nHeads", "nKvHeads", "dHead", "dMlp", "maxPositions"] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 1) fail(`${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.nHeads % c.nKvHeads !== 0) fail(`num_attention_heads (${c.nHeads}) must be a multiple of num_key_value_heads (${c.nKvHeads})`);
  if (c.positional === "rotary" && (c.rotaryDims % 2 !== 0 || c.rotaryDims > c.dHead || c.rotaryDims < 0)) {
    fail(`rotary dims ${c.rotaryDims} must be even and at most the head size ${c.dHead}`);
  }
}

/** Shapes of well-known models, for benchmarks with random weights. */
export const PRESETS: Record<string, LmConfig> = {
  "pythia-70m": {
    architecture: "gpt_neox", vocabSize: 50304, dModel: 512, nLayers: 6, nHeads: 8, nKvHeads: 8, dHead: 64,
    dMlp: 2048, maxPositions: 2048, norm: "layernorm", normEps: 1e-5, mlp: "standard", activation: "gelu",
    positional: "rotary", rotaryDims: 16, rotaryBase: 10000, rotaryStyle: RotaryStyle.RotateHalf,
    parallelResidual: true, tiedEmbeddings: false, attentionBias: true, mlpBias: true, bosTokenId: 0, eosTokenId: 0,
  },
  "gpt2": {
    architecture: "gpt2", vocabSize: 50257, dModel: 768, nLayers: 12, nHeads: 12, nKvHeads: 12, dHead: 64,
    dMlp: 3072, maxPositions: 1024, norm: "layernorm", normEps: 1e-5, mlp: "standard", activation: "gelu_new",
    positional: "learned", rotaryDims: 0, rotaryBase: 0, rotaryStyle: RotaryStyle.RotateHalf,
    parallelResidual: false, tiedEmbeddings: true, attentionBias: true, mlpBias: true, bosTokenId: 50256, eosTokenId: 50256,
  },
};
