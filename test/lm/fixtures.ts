/**
 * Tiny Hugging Face checkpoints with random weights, written exactly as transformers
 * saves them (config.json, model.safetensors in the model's own layout, a byte-level BPE
 * tokenizer.json), so the loaders and the forward pass are tested without a network.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/core/rng.js";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "../../src/core/safetensors.js";

export interface TinyOptions {
  seed?: number;
  vocab?: number;
  d?: number;
  heads?: number;
  kvHeads?: number;
  layers?: number;
  mlp?: number;
  ctx?: number;
  parallelResidual?: boolean;
  rotaryPct?: number;
  /** Extra tensors HF checkpoints carry that loaders must ignore. */
  extras?: boolean;
  tied?: boolean;
  /** Llama: a head width other than d / heads (config head_dim). */
  headDim?: number;
  /** Llama: q/k/v projection biases, as Qwen2 has. */
  qkvBias?: boolean;
  /** Llama: attention_bias and mlp_bias, biases on every projection. */
  allBiases?: boolean;
  /** Llama: Qwen3's per-head q/k RMSNorms (model_type qwen3). */
  qkNorm?: boolean;
  /**
   * Llama: OLMo 2's block (model_type olmo2): norms on the attention and MLP outputs only, q/k
   * norms over each projection; olmo3 makes it OLMo 3 (model_type olmo3), whose sliding-window
   * layers (the odd ones here) rotate at a base of their own.
   */
  olmo2?: boolean;
  olmo3?: boolean;
  /** Llama: SmolLM3 (model_type smollm3), the layers listed in noRope without rotary positions. */
  smollm3?: { noRope: number[] };
  /**
   * Llama: StableLM (model_type stablelm): LayerNorms with biases, q/k/v biases, a quarter of
   * each head rotated; parallel: use_parallel_residual; qkLayernorm: a LayerNorm per head on q and k.
   */
  stablelm?: { parallel?: boolean; qkLayernorm?: boolean };
  /**
   * Llama: Cohere (model_type cohere): attention and MLP side by side on one LayerNorm without a
   * bias, interleaved rotary, logits times logit_scale; v2: Cohere 2, rotary only in its
   * sliding-window layers (every second layer has none here); qkNorm: use_qk_norm, a LayerNorm
   * per head on q and k.
   */
  cohere?: { v2?: boolean; qkNorm?: boolean };
  /**
   * Llama: Granite 4.0 (model_type granitemoehybrid) as its attention-only models are: Granite's
   * multipliers, the MLP as shared_mlp (fused input_linear), rotary positions only with `rope`;
   * with `experts`, a GraniteMoE mixture beside the shared MLP.
   */
  granite4?: { rope?: boolean; experts?: { count: number; topK: number; width: number }; mamba?: number[] };
  /**
   * Llama: Falcon-H1 (model_type falcon_h1): Mamba-2 (6 heads of 8, 2 groups, a state of 6)
   * beside the attention in every layer, all its muP multipliers away from 1, its own names;
   * `norm` gives the Mamba-2 an RMSNorm per group (mamba_rms_norm), before the gate or after it.
   */
  falconH1?: { norm?: "before-gate" | "after-gate" };
  /** Llama: the first OLMo's block (model_type olmo): LayerNorms without weights, q/k/v clamped to +-clipQkv when given. */
  olmo?: { clipQkv?: number };
  /**
   * Llama: Phi-3's layout (model_type phi3): q/k/v in one qkv_proj, gate and up in one
   * gate_up_proj; partialRotary rotates that share of each head; longrope gives LongRoPE's
   * short factors (one per rotated pair), with an original context of a quarter of ctx.
   */
  phi3?: { partialRotary?: number; longrope?: number[] };
  /**
   * Llama: GLM (model_type glm) or, with v4, GLM-4 (glm4, with norms after attention and MLP):
   * q/k/v biases, Phi-3's fused gate_up_proj, half of each head rotated in interleaved pairs.
   */
  glm?: { v4?: boolean };
  /**
   * Llama: a mixture-of-experts model of `type` (Mixtral's block_sparse_moe layout, GraniteMoE's
   * fused input_linear / output_linear, or the
   * mlp.experts one of Qwen2-MoE with its shared expert, Qwen3-MoE with its q/k head norms and
   * OLMoE with its q/k projection norms): `experts` experts of dExpert, topK per token,
   * renormalised with norm; Qwen's mlpOnly layers keep a dense MLP.
   */
  moe?: {
    type: "mixtral" | "qwen2_moe" | "qwen3_moe" | "olmoe" | "granitemoe"; experts: number; topK: number; dExpert: number; norm?: boolean; dShared?: number; mlpOnly?: number[];
    /** OLMoE: clip_qkv, q/k/v clamped after its q/k norms. */
    clipQkv?: number;
  };
  /** Keys merged over the written config.json (undefined removes a key). */
  config?: Record<string, unknown>;
}

type Tensors = Record<string, TensorToWrite>;

function randomTensors(rng: Rng, spec: Record<string, number[]>, scale = 0.3): Tensors {
  const out: Tensors = {};
  for (const [name, shape] of Object.entries(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNormWeight = /(layernorm|ln_\d|ln_f|norm|norms\.\d+)\.weight$/.test(name);
    for (let i = 0; i < n; i++) data[i] = isNormWeight ? 1 + 0.1 * rng.normal() : scale * rng.normal();
    out[name] = { shape, data };
  }
  return out;
}

/** GPT-2's bytes_to_unicode: every byte as a printable character. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Array<string>(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i]!)));
  return map;
}

/** A byte-level BPE tokenizer.json: 256 byte tokens, a few merges, <|endoftext|>. */
export function tinyTokenizerJson(vocabSize: number): Record<string, unknown> {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i + 1));
  const merges: string[] = [];
  const add = (a: string, b: string) => {
    if (Object.keys(vocab).length + 1 >= vocabSize) return;
    if (vocab[a + b] === undefined) vocab[a + b] = Object.keys(vocab).length + 1;
    merges.push(`${a} ${b}`);
  };
  const G = chars[32]!; // the byte-level space
  for (const [a, b] of [[G, "t"], ["h", "e"], [G + "t", "he"], ["o", "n"], [G, "a"], ["i", "n"], [G, "s"], ["e", "r"]] as const) add(a, b);
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: [{ id: 0, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null, pre_tokenizer: byteLevel, post_processor: byteLevel, decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

export function writeTinyNeox(dir: string, o: TinyOptions = {}): string {
  const V = o.vocab ?? 300, d = o.d ?? 32, H = o.heads ?? 4, L = o.layers ?? 2, m = o.mlp ?? 64, ctx = o.ctx ?? 64;
  const rng = new Rng(o.seed ?? 1);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["GPTNeoXForCausalLM"], model_type: "gpt_neox", vocab_size: V, hidden_size: d,
    num_attention_heads: H, num_hidden_layers: L, intermediate_size: m, rotary_pct: o.rotaryPct ?? 0.5,
    rotary_emb_base: 10000, max_position_embeddings: ctx, layer_norm_eps: 1e-5,
    use_parallel_residual: o.parallelResidual ?? true, hidden_act: "gelu", bos_token_id: 0, eos_token_id: 0,
    tie_word_embeddings: false, torch_dtype: "float32", ...o.config,
  }));
  const spec: Record<string, number[]> = { "gpt_neox.embed_in.weight": [V, d], "embed_out.weight": [V, d] };
  for (let i = 0; i < L; i++) {
    const p = `gpt_neox.layers.${i}.`;
    Object.assign(spec, {
      [`${p}input_layernorm.weight`]: [d], [`${p}input_layernorm.bias`]: [d],
      [`${p}post_attention_layernorm.weight`]: [d], [`${p}post_attention_layernorm.bias`]: [d],
      [`${p}attention.query_key_value.weight`]: [3 * d, d], [`${p}attention.query_key_value.bias`]: [3 * d],
      [`${p}attention.dense.weight`]: [d, d], [`${p}attention.dense.bias`]: [d],
      [`${p}mlp.dense_h_to_4h.weight`]: [m, d], [`${p}mlp.dense_h_to_4h.bias`]: [m],
      [`${p}mlp.dense_4h_to_h.weight`]: [d, m], [`${p}mlp.dense_4h_to_h.bias`]: [d],
    });
  }
  spec["gpt_neox.final_layer_norm.weight"] = [d];
  spec["gpt_neox.final_layer_norm.bias"] = [d];
  const tensors = randomTensors(rng, spec);
  if (o.extras) {
    const dh = d / H;
    tensors["gpt_neox.layers.0.attention.rotary_emb.inv_freq"] = { shape: [dh / 4], data: new Float32Array(dh / 4) };
    tensors["gpt_neox.layers.0.attention.masked_bias"] = { shape: [], data: Float32Array.from([-1e9]) };
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

export function writeTinyGpt2(dir: string, o: TinyOptions = {}): string {
  const V = o.vocab ?? 300, d = o.d ?? 32, H = o.heads ?? 4, L = o.layers ?? 2, ctx = o.ctx ?? 64, m = o.mlp ?? 4 * d;
  const rng = new Rng(o.seed ?? 2);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["GPT2LMHeadModel"], model_type: "gpt2", vocab_size: V, n_embd: d, n_head: H, n_layer: L,
    n_positions: ctx, n_ctx: ctx, layer_norm_epsilon: 1e-5, activation_function: "gelu_new", n_inner: o.mlp ?? null,
    bos_token_id: 0, eos_token_id: 0, ...o.config,
  }));
  const spec: Record<string, number[]> = { "wte.weight": [V, d], "wpe.weight": [ctx, d], "ln_f.weight": [d], "ln_f.bias": [d] };
  for (let i = 0; i < L; i++) {
    const p = `h.${i}.`;
    Object.assign(spec, {
      [`${p}ln_1.weight`]: [d], [`${p}ln_1.bias`]: [d], [`${p}ln_2.weight`]: [d], [`${p}ln_2.bias`]: [d],
      [`${p}attn.c_attn.weight`]: [d, 3 * d], [`${p}attn.c_attn.bias`]: [3 * d],
      [`${p}attn.c_proj.weight`]: [d, d], [`${p}attn.c_proj.bias`]: [d],
      [`${p}mlp.c_fc.weight`]: [d, m], [`${p}mlp.c_fc.bias`]: [m],
      [`${p}mlp.c_proj.weight`]: [m, d], [`${p}mlp.c_proj.bias`]: [d],
    });
  }
  const tensors = randomTensors(rng, spec);
  if (o.extras) {
    // GPT-2 checkpoints carry the causal mask buffer as "attn.bias".
    tensors["h.0.attn.bias"] = { shape: [1, 1, ctx, ctx], data: new Float32Array(ctx * ctx).fill(1) };
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

export function writeTinyGptNeo(dir: string, o: TinyOptions & { window?: number } = {}): string {
  const V = o.vocab ?? 300, d = o.d ?? 32, H = o.heads ?? 4, L = o.layers ?? 2, ctx = o.ctx ?? 64, m = o.mlp ?? 4 * d;
  const rng = new Rng(o.seed ?? 4);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["GPTNeoForCausalLM"], model_type: "gpt_neo", vocab_size: V, hidden_size: d, num_heads: H, num_layers: L,
    max_position_embeddings: ctx, attention_types: [[["global", "local"], L / 2]], window_size: o.window ?? 256,
    intermediate_size: o.mlp ?? null, activation_function: "gelu_new", layer_norm_epsilon: 1e-5, bos_token_id: 0, eos_token_id: 0,
    ...o.config,
  }));
  const spec: Record<string, number[]> = {
    "transformer.wte.weight": [V, d], "transformer.wpe.weight": [ctx, d], "transformer.ln_f.weight": [d], "transformer.ln_f.bias": [d],
  };
  for (let i = 0; i < L; i++) {
    const p = `transformer.h.${i}.`;
    Object.assign(spec, {
      [`${p}ln_1.weight`]: [d], [`${p}ln_1.bias`]: [d], [`${p}ln_2.weight`]: [d], [`${p}ln_2.bias`]: [d],
      [`${p}attn.attention.q_proj.weight`]: [d, d], [`${p}attn.attention.k_proj.weight`]: [d, d],
      [`${p}attn.attention.v_proj.weight`]: [d, d], [`${p}attn.attention.out_proj.weight`]: [d, d], [`${p}attn.attention.out_proj.bias`]: [d],
      [`${p}mlp.c_fc.weight`]: [m, d], [`${p}mlp.c_fc.bias`]: [m], [`${p}mlp.c_proj.weight`]: [d, m], [`${p}mlp.c_proj.bias`]: [d],
    });
  }
  const tensors = randomTensors(rng, spec);
  // The causal (and local) mask buffers transformers saves with GPT-Neo, and the tied lm_head.
  tensors["transformer.h.0.attn.attention.bias"] = { shape: [1, 1, ctx, ctx], data: new Float32Array(ctx * ctx).fill(1) };
  tensors["lm_head.weight"] = tensors["transformer.wte.weight"]!;
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

/**
 * A GPT-J checkpoint (GPTJForCausalLM): one ln_1 per block feeding attention and MLP side by
 * side, rotaryDim of each head's dimensions rotated in interleaved pairs, an lm_head with a
 * bias; with extras, the causal-mask buffers older checkpoints carry.
 */
export function writeTinyGptJ(dir: string, o: TinyOptions & { rotaryDim?: number } = {}): string {
  const V = o.vocab ?? 300, d = o.d ?? 32, H = o.heads ?? 4, L = o.layers ?? 2, ctx = o.ctx ?? 64, m = o.mlp ?? 4 * d;
  const rng = new Rng(o.seed ?? 6);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["GPTJForCausalLM"], model_type: "gptj", vocab_size: V, n_embd: d, n_head: H, n_layer: L, n_positions: ctx,
    rotary_dim: o.rotaryDim ?? 4, n_inner: o.mlp ?? null, activation_function: "gelu_new", layer_norm_epsilon: 1e-5,
    tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 0, ...o.config,
  }));
  const spec: Record<string, number[]> = {
    "transformer.wte.weight": [V, d], "transformer.ln_f.weight": [d], "transformer.ln_f.bias": [d], "lm_head.weight": [V, d], "lm_head.bias": [V],
  };
  for (let i = 0; i < L; i++) {
    const p = `transformer.h.${i}.`;
    Object.assign(spec, {
      [`${p}ln_1.weight`]: [d], [`${p}ln_1.bias`]: [d],
      [`${p}attn.q_proj.weight`]: [d, d], [`${p}attn.k_proj.weight`]: [d, d], [`${p}attn.v_proj.weight`]: [d, d], [`${p}attn.out_proj.weight`]: [d, d],
      [`${p}mlp.fc_in.weight`]: [m, d], [`${p}mlp.fc_in.bias`]: [m], [`${p}mlp.fc_out.weight`]: [d, m], [`${p}mlp.fc_out.bias`]: [d],
    });
  }
  const tensors = randomTensors(rng, spec);
  if (o.extras) {
    tensors["transformer.h.0.attn.bias"] = { shape: [1, 1, ctx, ctx], data: new Float32Array(ctx * ctx).fill(1) };
    tensors["transformer.h.0.attn.masked_bias"] = { shape: [], data: Float32Array.from([-1e9]) };
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

/**
 * A Phi checkpoint (PhiForCausalLM, as phi-2): one input_layernorm per block feeding
 * attention and MLP side by side, q/k/v/dense and MLP biases, partialRotary of each head
 * rotated (rotate-half), an lm_head with a bias.
 */
export function writeTinyPhi(dir: string, o: TinyOptions & { partialRotary?: number } = {}): string {
  const V = o.vocab ?? 300, d = o.d ?? 32, H = o.heads ?? 4, Hkv = o.kvHeads ?? H, L = o.layers ?? 2, ctx = o.ctx ?? 64, m = o.mlp ?? 4 * d;
  const dh = d / H;
  const rng = new Rng(o.seed ?? 7);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["PhiForCausalLM"], model_type: "phi", vocab_size: V, hidden_size: d, intermediate_size: m, num_hidden_layers: L,
    num_attention_heads: H, num_key_value_heads: Hkv, max_position_embeddings: ctx, hidden_act: "gelu_new", layer_norm_eps: 1e-5,
    rope_theta: 10000, partial_rotary_factor: o.partialRotary ?? 0.5, qk_layernorm: false, tie_word_embeddings: false,
    bos_token_id: 1, eos_token_id: 2, ...o.config,
  }));
  const spec: Record<string, number[]> = {
    "model.embed_tokens.weight": [V, d], "model.final_layernorm.weight": [d], "model.final_layernorm.bias": [d], "lm_head.weight": [V, d], "lm_head.bias": [V],
  };
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    Object.assign(spec, {
      [`${p}input_layernorm.weight`]: [d], [`${p}input_layernorm.bias`]: [d],
      [`${p}self_attn.q_proj.weight`]: [H * dh, d], [`${p}self_attn.q_proj.bias`]: [H * dh],
      [`${p}self_attn.k_proj.weight`]: [Hkv * dh, d], [`${p}self_attn.k_proj.bias`]: [Hkv * dh],
      [`${p}self_attn.v_proj.weight`]: [Hkv * dh, d], [`${p}self_attn.v_proj.bias`]: [Hkv * dh],
      [`${p}self_attn.dense.weight`]: [d, H * dh], [`${p}self_attn.dense.bias`]: [d],
      [`${p}mlp.fc1.weight`]: [m, d], [`${p}mlp.fc1.bias`]: [m], [`${p}mlp.fc2.weight`]: [d, m], [`${p}mlp.fc2.bias`]: [d],
    });
  }
  writeSafetensors(join(dir, "model.safetensors"), randomTensors(rng, spec), { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

/** One Llama-layout block's tensors (norms, q/k/v/o projections, gated MLP) and their shapes. */
function llamaLayerSpec(p: string, d: number, H: number, Hkv: number, dh: number, m: number): Record<string, number[]> {
  return {
    [`${p}input_layernorm.weight`]: [d], [`${p}post_attention_layernorm.weight`]: [d],
    [`${p}self_attn.q_proj.weight`]: [H * dh, d], [`${p}self_attn.k_proj.weight`]: [Hkv * dh, d],
    [`${p}self_attn.v_proj.weight`]: [Hkv * dh, d], [`${p}self_attn.o_proj.weight`]: [d, H * dh],
    [`${p}mlp.gate_proj.weight`]: [m, d], [`${p}mlp.up_proj.weight`]: [m, d], [`${p}mlp.down_proj.weight`]: [d, m],
  };
}

/** config.json's mixture-of-experts keys for TinyOptions.moe, in each model type's own names. */
function moeConfig(moe: TinyOptions["moe"]): Record<string, unknown> {
  if (!moe) return {};
  const names = { mixtral: "Mixtral", qwen2_moe: "Qwen2Moe", qwen3_moe: "Qwen3Moe", olmoe: "Olmoe", granitemoe: "GraniteMoe" };
  return {
    model_type: moe.type, architectures: [`${names[moe.type]}ForCausalLM`], num_experts_per_tok: moe.topK,
    ...(moe.type === "mixtral" || moe.type === "granitemoe" ? { num_local_experts: moe.experts, intermediate_size: moe.dExpert }
      : { num_experts: moe.experts, norm_topk_prob: moe.norm ?? false }),
    ...(moe.type === "olmoe" ? { intermediate_size: moe.dExpert, rms_norm_eps: 1e-5, clip_qkv: moe.clipQkv ?? null } : {}),
    ...(moe.type.startsWith("qwen") ? {
      moe_intermediate_size: moe.dExpert, mlp_only_layers: moe.mlpOnly ?? [], decoder_sparse_step: 1, use_sliding_window: false,
      ...(moe.type === "qwen2_moe" ? { shared_expert_intermediate_size: moe.dShared ?? 24 } : {}),
    } : {}),
  };
}

export function writeTinyLlama(dir: string, o: TinyOptions = {}): string {
  const V = o.vocab ?? 300, d = o.d ?? 32, H = o.heads ?? 4, Hkv = o.kvHeads ?? 2, L = o.layers ?? 2, m = o.mlp ?? 48, ctx = o.ctx ?? 64;
  const dh = o.headDim ?? d / H;
  const rng = new Rng(o.seed ?? 3);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: V, hidden_size: d, intermediate_size: m,
    num_attention_heads: H, num_key_value_heads: Hkv, num_hidden_layers: L, max_position_embeddings: ctx,
    rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: "silu", tie_word_embeddings: o.tied ?? false,
    bos_token_id: 1, eos_token_id: 2, ...(o.headDim ? { head_dim: o.headDim } : {}),
    ...(o.qkNorm ? { model_type: "qwen3", architectures: ["Qwen3ForCausalLM"], attention_bias: false, use_sliding_window: false } : {}),
    ...(o.olmo2 ? { model_type: "olmo2", architectures: ["Olmo2ForCausalLM"], attention_bias: false, pad_token_id: 0 } : {}),
    ...(o.olmo2 && o.olmo3 ? {
      model_type: "olmo3", architectures: ["Olmo3ForCausalLM"], rope_theta: undefined, sliding_window: ctx,
      layer_types: Array.from({ length: L }, (_, i) => (i % 2 === 1 ? "sliding_attention" : "full_attention")),
      rope_parameters: { full_attention: { rope_type: "default", rope_theta: 300 }, sliding_attention: { rope_type: "default", rope_theta: 10000 } },
    } : {}),
    ...(o.stablelm ? {
      model_type: "stablelm", architectures: ["StableLmForCausalLM"], rms_norm_eps: undefined, layer_norm_eps: 1e-5,
      use_qkv_bias: true, use_parallel_residual: o.stablelm.parallel ?? false, qk_layernorm: o.stablelm.qkLayernorm ?? false,
    } : {}),
    ...(o.granite4 ? {
      model_type: "granitemoehybrid", architectures: ["GraniteMoeHybridForCausalLM"],
      // Granite 4.0-H: Mamba-2 in the `mamba` layers (8 heads of 8 over 2 x d, 2 groups, a state of 6).
      layer_types: Array.from({ length: L }, (_, i) => (o.granite4!.mamba?.includes(i) ? "mamba" : "attention")),
      mamba_n_heads: 8, mamba_d_head: 2 * d / 8, mamba_expand: 2, mamba_n_groups: 2, mamba_d_state: 6, mamba_d_conv: 4, mamba_conv_bias: true, mamba_proj_bias: false,
      position_embedding_type: o.granite4.rope ? "rope" : null, shared_intermediate_size: m, num_local_experts: o.granite4.experts?.count ?? 0,
      num_experts_per_tok: o.granite4.experts?.topK ?? 2, intermediate_size: o.granite4.experts?.width ?? m,
      embedding_multiplier: 3, attention_multiplier: 0.3, residual_multiplier: 0.4, logits_scaling: 2.5,
    } : {}),
    ...(o.falconH1 ? {
      model_type: "falcon_h1", architectures: ["FalconH1ForCausalLM"], rms_norm_eps: 1e-5,
      mamba_d_ssm: 48, mamba_n_heads: 6, mamba_d_head: 8, mamba_n_groups: 2, mamba_d_state: 6, mamba_d_conv: 4, mamba_expand: 2,
      mamba_conv_bias: true, mamba_proj_bias: false, mamba_rms_norm: o.falconH1.norm !== undefined,
      mamba_norm_before_gate: o.falconH1.norm === "before-gate", projectors_bias: false, time_step_limit: [0, { __float__: "Infinity" }],
      embedding_multiplier: 2.5, lm_head_multiplier: 0.6, attention_in_multiplier: 1.3, key_multiplier: 0.7, attention_out_multiplier: 0.8,
      ssm_in_multiplier: 1.2, ssm_out_multiplier: 0.9, ssm_multipliers: [0.6, 1.4, 0.8, 1.25, 0.7], mlp_multipliers: [1.5, 0.75],
    } : {}),
    ...(o.cohere ? {
      model_type: o.cohere.v2 ? "cohere2" : "cohere", architectures: [o.cohere.v2 ? "Cohere2ForCausalLM" : "CohereForCausalLM"],
      rms_norm_eps: undefined, layer_norm_eps: 1e-5, logit_scale: 0.5, use_qk_norm: o.cohere.qkNorm ?? false, tie_word_embeddings: o.tied ?? true,
      ...(o.cohere.v2 ? { sliding_window: ctx, sliding_window_pattern: 2 } : {}),
    } : {}),
    ...(o.smollm3 ? {
      model_type: "smollm3", architectures: ["SmolLM3ForCausalLM"],
      no_rope_layers: Array.from({ length: L }, (_, i) => (o.smollm3!.noRope.includes(i) ? 0 : 1)),
    } : {}),
    ...(o.olmo ? { model_type: "olmo", architectures: ["OlmoForCausalLM"], attention_bias: false, clip_qkv: o.olmo.clipQkv ?? null, rms_norm_eps: undefined } : {}),
    ...(o.phi3 ? { model_type: "phi3", architectures: ["Phi3ForCausalLM"], rms_norm_eps: 1e-5, partial_rotary_factor: o.phi3.partialRotary ?? 1, sliding_window: ctx } : {}),
    ...moeConfig(o.moe),
    ...(o.glm ? {
      model_type: o.glm.v4 ? "glm4" : "glm", architectures: [o.glm.v4 ? "Glm4ForCausalLM" : "GlmForCausalLM"], partial_rotary_factor: 0.5,
      attention_bias: true, rms_norm_eps: 1.5625e-7, head_dim: dh,
    } : {}),
    ...(o.phi3?.longrope ? {
      original_max_position_embeddings: ctx / 4,
      rope_scaling: { type: "longrope", short_factor: o.phi3.longrope, long_factor: o.phi3.longrope.map((f) => 4 * f) },
    } : {}),
    ...o.config,
  }));
  const spec: Record<string, number[]> = { "model.embed_tokens.weight": [V, d], ...(o.olmo ? {} : { "model.norm.weight": [d] }) };
  if (!(o.tied ?? o.cohere)) spec["lm_head.weight"] = [V, d];
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    Object.assign(spec, llamaLayerSpec(p, d, H, Hkv, dh, m));
    if (o.qkvBias || o.allBiases) {
      Object.assign(spec, {
        [`${p}self_attn.q_proj.bias`]: [H * dh], [`${p}self_attn.k_proj.bias`]: [Hkv * dh], [`${p}self_attn.v_proj.bias`]: [Hkv * dh],
      });
    }
    if (o.allBiases) {
      Object.assign(spec, {
        [`${p}self_attn.o_proj.bias`]: [d], [`${p}mlp.gate_proj.bias`]: [m], [`${p}mlp.up_proj.bias`]: [m], [`${p}mlp.down_proj.bias`]: [d],
      });
    }
    if (o.qkNorm) Object.assign(spec, { [`${p}self_attn.q_norm.weight`]: [dh], [`${p}self_attn.k_norm.weight`]: [dh] });
    if (o.olmo) {
      delete spec[`${p}input_layernorm.weight`];
      delete spec[`${p}post_attention_layernorm.weight`];
    }
    if (o.stablelm) {
      Object.assign(spec, {
        [`${p}input_layernorm.bias`]: [d], [`${p}post_attention_layernorm.bias`]: [d],
        [`${p}self_attn.q_proj.bias`]: [H * dh], [`${p}self_attn.k_proj.bias`]: [Hkv * dh], [`${p}self_attn.v_proj.bias`]: [Hkv * dh],
      });
      if (o.stablelm.parallel) for (const name of ["weight", "bias"]) delete spec[`${p}post_attention_layernorm.${name}`];
      if (o.stablelm.qkLayernorm) {
        for (let h = 0; h < H; h++) spec[`${p}self_attn.q_layernorm.norms.${h}.weight`] = [dh];
        for (let h = 0; h < Hkv; h++) spec[`${p}self_attn.k_layernorm.norms.${h}.weight`] = [dh];
      }
    }
    if (o.cohere) delete spec[`${p}post_attention_layernorm.weight`];
    if (o.cohere?.qkNorm) Object.assign(spec, { [`${p}self_attn.q_norm.weight`]: [H, dh], [`${p}self_attn.k_norm.weight`]: [Hkv, dh] });
    if (o.granite4) {
      for (const name of ["gate_proj", "up_proj", "down_proj"]) delete spec[`${p}mlp.${name}.weight`];
      if (o.granite4.mamba?.includes(i)) {
        for (const name of ["q_proj", "k_proj", "v_proj", "o_proj"]) delete spec[`${p}self_attn.${name}.weight`];
        const inner = 2 * d, conv = inner + 2 * 2 * 6;
        Object.assign(spec, {
          [`${p}mamba.in_proj.weight`]: [inner + conv + 8, d], [`${p}mamba.conv1d.weight`]: [conv, 1, 4], [`${p}mamba.conv1d.bias`]: [conv],
          [`${p}mamba.dt_bias`]: [8], [`${p}mamba.A_log`]: [8], [`${p}mamba.D`]: [8], [`${p}mamba.norm.weight`]: [inner], [`${p}mamba.out_proj.weight`]: [d, inner],
        });
      }
      Object.assign(spec, { [`${p}shared_mlp.input_linear.weight`]: [2 * m, d], [`${p}shared_mlp.output_linear.weight`]: [d, m] });
      const x = o.granite4.experts;
      if (x) {
        Object.assign(spec, {
          [`${p}block_sparse_moe.router.layer.weight`]: [x.count, d], [`${p}block_sparse_moe.input_linear.weight`]: [x.count, 2 * x.width, d],
          [`${p}block_sparse_moe.output_linear.weight`]: [x.count, d, x.width],
        });
      }
    }
    if (o.glm) {
      for (const name of ["mlp.gate_proj", "mlp.up_proj"]) delete spec[`${p}${name}.weight`];
      Object.assign(spec, {
        [`${p}mlp.gate_up_proj.weight`]: [2 * m, d],
        [`${p}self_attn.q_proj.bias`]: [H * dh], [`${p}self_attn.k_proj.bias`]: [Hkv * dh], [`${p}self_attn.v_proj.bias`]: [Hkv * dh],
        ...(o.glm.v4 ? { [`${p}post_self_attn_layernorm.weight`]: [d], [`${p}post_mlp_layernorm.weight`]: [d] } : {}),
      });
    }
    if (o.phi3) {
      for (const name of ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj"]) delete spec[`${p}${name}.weight`];
      Object.assign(spec, { [`${p}self_attn.qkv_proj.weight`]: [(H + 2 * Hkv) * dh, d], [`${p}mlp.gate_up_proj.weight`]: [2 * m, d] });
    }
    if (o.moe && !o.moe.mlpOnly?.includes(i)) {
      for (const name of ["gate_proj", "up_proj", "down_proj"]) delete spec[`${p}mlp.${name}.weight`];
      const mixtral = o.moe.type === "mixtral";
      const base = mixtral || o.moe.type === "granitemoe" ? `${p}block_sparse_moe.` : `${p}mlp.`;
      if (o.moe.type === "granitemoe") {
        const [E, f] = [o.moe.experts, o.moe.dExpert];
        Object.assign(spec, { [`${base}router.layer.weight`]: [E, d], [`${base}input_linear.weight`]: [E, 2 * f, d], [`${base}output_linear.weight`]: [E, d, f] });
        continue;
      }
      const [gate, up, down] = mixtral ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"];
      const f = o.moe.dExpert;
      spec[`${base}gate.weight`] = [o.moe.experts, d];
      for (let e = 0; e < o.moe.experts; e++) {
        Object.assign(spec, { [`${base}experts.${e}.${gate}.weight`]: [f, d], [`${base}experts.${e}.${up}.weight`]: [f, d], [`${base}experts.${e}.${down}.weight`]: [d, f] });
      }
      if (o.moe.type === "qwen2_moe") {
        const sh = o.moe.dShared ?? 24;
        Object.assign(spec, {
          [`${base}shared_expert.gate_proj.weight`]: [sh, d], [`${base}shared_expert.up_proj.weight`]: [sh, d],
          [`${base}shared_expert.down_proj.weight`]: [d, sh], [`${base}shared_expert_gate.weight`]: [1, d],
        });
      }
    }
    if (o.moe?.type === "qwen2_moe") {
      Object.assign(spec, { [`${p}self_attn.q_proj.bias`]: [H * dh], [`${p}self_attn.k_proj.bias`]: [Hkv * dh], [`${p}self_attn.v_proj.bias`]: [Hkv * dh] });
    }
    if (o.moe?.type === "qwen3_moe") Object.assign(spec, { [`${p}self_attn.q_norm.weight`]: [dh], [`${p}self_attn.k_norm.weight`]: [dh] });
    if (o.moe?.type === "olmoe") Object.assign(spec, { [`${p}self_attn.q_norm.weight`]: [H * dh], [`${p}self_attn.k_norm.weight`]: [Hkv * dh] });
    if (o.olmo2) {
      delete spec[`${p}input_layernorm.weight`];
      Object.assign(spec, {
        [`${p}post_feedforward_layernorm.weight`]: [d], [`${p}self_attn.q_norm.weight`]: [H * dh], [`${p}self_attn.k_norm.weight`]: [Hkv * dh],
      });
    }
  }
  if (o.stablelm) spec["model.norm.bias"] = [d];
  if (o.falconH1) {
    // Falcon-H1's names: feed_forward for mlp, pre_ff_layernorm for post_attention_layernorm, final_layernorm for norm; Mamba-2 beside attention.
    const inner = 48, conv = inner + 2 * 2 * 6;
    for (const name of Object.keys(spec)) {
      const renamed = name.replace(".mlp.", ".feed_forward.").replace(".post_attention_layernorm.", ".pre_ff_layernorm.").replace(/^model\.norm\./, "model.final_layernorm.");
      if (renamed === name) continue;
      spec[renamed] = spec[name]!;
      delete spec[name];
    }
    for (let i = 0; i < L; i++) {
      const p = `model.layers.${i}.mamba.`;
      Object.assign(spec, {
        [`${p}in_proj.weight`]: [inner + conv + 6, d], [`${p}conv1d.weight`]: [conv, 1, 4], [`${p}conv1d.bias`]: [conv],
        [`${p}dt_bias`]: [6], [`${p}A_log`]: [6], [`${p}D`]: [6], [`${p}out_proj.weight`]: [d, inner],
        ...(o.falconH1.norm ? { [`${p}norm.weight`]: [inner] } : {}),
      });
    }
  }
  writeSafetensors(join(dir, "model.safetensors"), randomTensors(rng, spec), { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

/**
 * A Gemma (or, with gemma2, Gemma 2) checkpoint: Llama's layout with a tied unembedding,
 * Gemma 2's two extra norms per block, and small soft caps so that they bite.
 */
export function writeTinyGemma(dir: string, o: TinyOptions & { gemma2?: boolean; gemma3?: boolean; vault?: boolean } = {}): string {
  const V = o.vocab ?? 300, d = o.d ?? 32, H = o.heads ?? 4, Hkv = o.kvHeads ?? 2, L = o.layers ?? (o.gemma3 ? 3 : 2), m = o.mlp ?? 48, ctx = o.ctx ?? 64;
  const dh = o.headDim ?? 8;
  const rng = new Rng(o.seed ?? 5);
  const post = o.gemma2 || o.gemma3;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: [o.gemma3 ? "Gemma3ForCausalLM" : o.vault ? "VaultGemmaForCausalLM" : o.gemma2 ? "Gemma2ForCausalLM" : "GemmaForCausalLM"],
    model_type: o.gemma3 ? "gemma3_text" : o.vault ? "vaultgemma" : o.gemma2 ? "gemma2" : "gemma",
    vocab_size: V, hidden_size: d, intermediate_size: m, num_attention_heads: H, num_key_value_heads: Hkv, head_dim: dh,
    num_hidden_layers: L, max_position_embeddings: ctx, rms_norm_eps: 1e-6, rope_theta: 10000,
    hidden_act: "gelu_pytorch_tanh", hidden_activation: "gelu_pytorch_tanh", tie_word_embeddings: true,
    attention_bias: false, bos_token_id: 2, eos_token_id: 1, pad_token_id: 0,
    ...(o.gemma2 || o.vault ? {
      query_pre_attn_scalar: 12, attn_logit_softcapping: 2.0, final_logit_softcapping: 3.0, sliding_window: 32,
      cache_implementation: "hybrid",
    } : {}),
    // Gemma 3: no soft caps; local layers turn at their own rotary base (a small global one
    // here, so that the two differ visibly within 64 positions).
    ...(o.gemma3 ? {
      query_pre_attn_scalar: 12, attn_logit_softcapping: null, final_logit_softcapping: null, sliding_window: 32,
      rope_theta: 50, rope_local_base_freq: 10000, rope_scaling: null,
      layer_types: Array.from({ length: L }, (_, i) => ((i + 1) % 3 === 0 ? "full_attention" : "sliding_attention")),
    } : {}),
    ...o.config,
  }));
  const spec: Record<string, number[]> = { "model.embed_tokens.weight": [V, d], "model.norm.weight": [d] };
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    Object.assign(spec, llamaLayerSpec(p, d, H, Hkv, dh, m));
    if (post) Object.assign(spec, { [`${p}pre_feedforward_layernorm.weight`]: [d], [`${p}post_feedforward_layernorm.weight`]: [d] });
    // VaultGemma: the input norms alone, the MLP's under Gemma 2's name.
    if (o.vault) {
      delete spec[`${p}post_attention_layernorm.weight`];
      spec[`${p}pre_feedforward_layernorm.weight`] = [d];
    }
    if (o.gemma3) Object.assign(spec, { [`${p}self_attn.q_norm.weight`]: [dh], [`${p}self_attn.k_norm.weight`]: [dh] });
  }
  writeSafetensors(join(dir, "model.safetensors"), randomTensors(rng, spec), { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

/**
 * An LFM2 model (Lfm2ForCausalLM) under its own tensor names: short-convolution layers (taps of
 * 3) and attention layers (per-head q/k RMSNorms) as `layers` says, block_ff_dim 72 (48 after
 * Lfm2MLP's two thirds, rounded to block_multiple_of 16), a tied unembedding.
 */
export function writeTinyLfm2(dir: string, o: { seed?: number; layers?: Array<"conv" | "full_attention">;
  moe?: { experts: number; topK: number; dExpert: number; dense: number; scale?: number } } = {}): string {
  const V = 300, d = 32, H = 4, Hkv = 2, dh = 8, m = 48, K = 3, ctx = 64;
  const layers = o.layers ?? ["conv", "full_attention", "conv"];
  const rng = new Rng(o.seed ?? 8);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["Lfm2ForCausalLM"], model_type: "lfm2", vocab_size: V, hidden_size: d, block_ff_dim: 72, block_multiple_of: 16,
    block_auto_adjust_ff_dim: true, block_ffn_dim_multiplier: 1.0, num_attention_heads: H, num_key_value_heads: Hkv, num_hidden_layers: layers.length,
    max_position_embeddings: ctx, norm_eps: 1e-5, rope_theta: 10000, conv_L_cache: K, conv_bias: false, tie_embedding: true,
    full_attn_idxs: layers.flatMap((t, i) => (t === "full_attention" ? [i] : [])), bos_token_id: 1, eos_token_id: 2,
    // LFM2-MoE: its layer_types, dense layers of intermediate_size, then sigmoid-routed experts with a selection bias.
    ...(o.moe ? {
      architectures: ["Lfm2MoeForCausalLM"], model_type: "lfm2_moe", layer_types: layers, full_attn_idxs: undefined, block_ff_dim: undefined,
      intermediate_size: m, moe_intermediate_size: o.moe.dExpert, num_experts: o.moe.experts, num_experts_per_tok: o.moe.topK,
      num_dense_layers: o.moe.dense, use_expert_bias: true, norm_topk_prob: true, routed_scaling_factor: o.moe.scale ?? 1,
    } : {}),
  }));
  const spec: Record<string, number[]> = { "model.embed_tokens.weight": [V, d], "model.embedding_norm.weight": [d] };
  layers.forEach((kind, i) => {
    const p = `model.layers.${i}.`;
    Object.assign(spec, { [`${p}operator_norm.weight`]: [d], [`${p}ffn_norm.weight`]: [d] });
    if (o.moe && i >= o.moe.dense) {
      const { experts: E, dExpert: f } = o.moe;
      Object.assign(spec, { [`${p}feed_forward.gate.weight`]: [E, d], [`${p}feed_forward.expert_bias`]: [E] });
      for (let e = 0; e < E; e++) {
        const x = `${p}feed_forward.experts.${e}.`;
        Object.assign(spec, { [`${x}w1.weight`]: [f, d], [`${x}w3.weight`]: [f, d], [`${x}w2.weight`]: [d, f] });
      }
    } else {
      Object.assign(spec, { [`${p}feed_forward.w1.weight`]: [m, d], [`${p}feed_forward.w3.weight`]: [m, d], [`${p}feed_forward.w2.weight`]: [d, m] });
    }
    if (kind === "conv") {
      Object.assign(spec, { [`${p}conv.in_proj.weight`]: [3 * d, d], [`${p}conv.conv.weight`]: [d, 1, K], [`${p}conv.out_proj.weight`]: [d, d] });
    } else {
      Object.assign(spec, {
        [`${p}self_attn.q_proj.weight`]: [H * dh, d], [`${p}self_attn.k_proj.weight`]: [Hkv * dh, d], [`${p}self_attn.v_proj.weight`]: [Hkv * dh, d],
        [`${p}self_attn.out_proj.weight`]: [d, H * dh], [`${p}self_attn.q_layernorm.weight`]: [dh], [`${p}self_attn.k_layernorm.weight`]: [dh],
      });
    }
  });
  writeSafetensors(join(dir, "model.safetensors"), randomTensors(rng, spec), { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

/**
 * A Qwen3.5 language model (Qwen3_5ForCausalLM, model_type qwen3_5_text): Gated DeltaNet layers
 * (linear attention; 2 key heads of 8, 4 value heads of 6, a convolution of 4) and attention
 * layers (gated outputs, q/k head norms, a quarter of each 16-wide head rotated), laid out as
 * `layers` says; RMSNorms of 1 + w.
 */
export function writeTinyQwen35(dir: string, o: { seed?: number; tied?: boolean; layers?: Array<"linear_attention" | "full_attention"> } = {}): string {
  const V = 300, d = 32, H = 4, Hkv = 2, dh = 16, m = 48, ctx = 64;
  const [kHeads, vHeads, dk, dv, K] = [2, 4, 8, 6, 4];
  const layers = o.layers ?? ["linear_attention", "full_attention", "linear_attention"];
  const rng = new Rng(o.seed ?? 7);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["Qwen3_5ForCausalLM"], model_type: "qwen3_5_text", vocab_size: V, hidden_size: d, intermediate_size: m,
    num_attention_heads: H, num_key_value_heads: Hkv, head_dim: dh, num_hidden_layers: layers.length, max_position_embeddings: ctx,
    rms_norm_eps: 1e-6, hidden_act: "silu", tie_word_embeddings: o.tied ?? false, attention_bias: false, layer_types: layers,
    linear_num_key_heads: kHeads, linear_num_value_heads: vHeads, linear_key_head_dim: dk, linear_value_head_dim: dv, linear_conv_kernel_dim: K,
    rope_parameters: { rope_type: "default", rope_theta: 10000, partial_rotary_factor: 0.25, mrope_section: [1, 1, 0], mrope_interleaved: true },
    bos_token_id: 1, eos_token_id: 2,
  }));
  const C = 2 * kHeads * dk + vHeads * dv;
  const spec: Record<string, number[]> = { "model.embed_tokens.weight": [V, d], "model.norm.weight": [d] };
  if (!o.tied) spec["lm_head.weight"] = [V, d];
  layers.forEach((kind, i) => {
    const p = `model.layers.${i}.`;
    Object.assign(spec, llamaLayerSpec(p, d, H, Hkv, dh, m));
    if (kind === "linear_attention") {
      for (const name of ["q_proj", "k_proj", "v_proj", "o_proj"]) delete spec[`${p}self_attn.${name}.weight`];
      Object.assign(spec, {
        [`${p}linear_attn.in_proj_qkv.weight`]: [C, d], [`${p}linear_attn.in_proj_z.weight`]: [vHeads * dv, d],
        [`${p}linear_attn.in_proj_b.weight`]: [vHeads, d], [`${p}linear_attn.in_proj_a.weight`]: [vHeads, d],
        [`${p}linear_attn.conv1d.weight`]: [C, 1, K], [`${p}linear_attn.dt_bias`]: [vHeads], [`${p}linear_attn.A_log`]: [vHeads],
        [`${p}linear_attn.norm.weight`]: [dv], [`${p}linear_attn.out_proj.weight`]: [d, vHeads * dv],
      });
    } else {
      Object.assign(spec, { [`${p}self_attn.q_proj.weight`]: [2 * H * dh, d], [`${p}self_attn.q_norm.weight`]: [dh], [`${p}self_attn.k_norm.weight`]: [dh] });
    }
  });
  writeSafetensors(join(dir, "model.safetensors"), randomTensors(rng, spec), { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson(V)));
  return dir;
}

/**
 * The same tiny Gemma 3 as writeTinyGemma({ gemma3: true }) laid out as a multimodal
 * checkpoint (Gemma3ForConditionalGeneration, as gemma-3-4b and up are published): a
 * text_config that leaves defaults out, weights under `prefix`, and a vision tower beside.
 */
export function writeTinyGemma3Multimodal(dir: string, textOnly: string, prefix: string): string {
  return writeTinyMultimodal(dir, textOnly, prefix, {
    architectures: ["Gemma3ForConditionalGeneration"], model_type: "gemma3", bos_token_id: 2, eos_token_id: 1,
    vision_config: { model_type: "siglip_vision_model", hidden_size: 4 },
    // What a published config leaves to Gemma3TextConfig's defaults.
  }, ["rms_norm_eps", "rope_local_base_freq", "hidden_activation", "hidden_act", "attention_bias", "tie_word_embeddings", "max_position_embeddings"]);
}

/**
 * A text-only checkpoint laid out as a vision-language one: `wrapper`'s config keys around the
 * text config (less the `dropped` keys), the language model's weights under `prefix`, a
 * vision tower (its tensors under `vision`) and a projector beside.
 */
export function writeTinyMultimodal(dir: string, textOnly: string, prefix: string, wrapper: Record<string, unknown>, dropped: string[] = [],
  vision = "vision_tower."): string {
  mkdirSync(dir, { recursive: true });
  const text = JSON.parse(readFileSync(join(textOnly, "config.json"), "utf8")) as Record<string, unknown>;
  for (const key of dropped) delete text[key];
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...wrapper, text_config: { ...text, architectures: undefined } }));
  const weights = SafetensorsFile.open(join(textOnly, "model.safetensors"));
  const tensors: Tensors = {};
  for (const name of weights.names()) tensors[name.replace(/^model\./, prefix)] = { shape: [...weights.shape(name)], data: weights.read(name).data };
  tensors[`${vision}vision_model.embeddings.patch_embedding.weight`] = { shape: [4, 3], data: new Float32Array(12) };
  tensors["multi_modal_projector.mm_input_projection_weight"] = { shape: [4, 8], data: new Float32Array(32) };
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "tokenizer.json"), readFileSync(join(textOnly, "tokenizer.json")));
  return dir;
}
