/**
 * An independent float64 re-implementation of Hugging Face's modeling code (GPTNeoXForCausalLM,
 * GPT2LMHeadModel, GPTNeoForCausalLM, GPTJForCausalLM, PhiForCausalLM, LlamaForCausalLM, FalconH1ForCausalLM, OlmoForCausalLM, Olmo2ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM),
 * reading a checkpoint's raw tensors in their own layout,
 * one position at a time. It shares nothing with src/lm except the safetensors reader, so
 * saekit's canonical-layout conversion, batching and kernels are all under test against it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "../../src/core/safetensors.js";
import { erfc } from "../../src/core/reference.js";

type Vec = Float64Array;

class Raw {
  private readonly file: SafetensorsFile;
  constructor(dir: string) {
    this.file = SafetensorsFile.open(join(dir, "model.safetensors"));
  }
  get(name: string): Vec {
    return Float64Array.from(this.file.read(name).data);
  }
  has(name: string): boolean {
    return this.file.has(name);
  }
}

/** y[o] = sum_i W[o, i] x[i] + b[o] for W [out, in]. */
function linear(W: Vec, b: Vec | null, x: Vec, out: number): Vec {
  const inp = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < inp; i++) s += W[o * inp + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/** y[o] = sum_i x[i] W[i, o] + b[o] for Conv1D weights W [in, out]. */
function conv1d(W: Vec, b: Vec, x: Vec, out: number): Vec {
  const y = Float64Array.from(b);
  for (let i = 0; i < x.length; i++) for (let o = 0; o < out; o++) y[o]! += x[i]! * W[i * out + o]!;
  return y;
}

function layerNorm(x: Vec, w: Vec, b: Vec, eps: number): Vec {
  const n = x.length;
  const mean = x.reduce((a, v) => a + v, 0) / n;
  const v = x.reduce((a, t) => a + (t - mean) ** 2, 0) / n;
  return x.map((t, i) => ((t - mean) / Math.sqrt(v + eps)) * w[i]! + b[i]!);
}

function rmsNorm(x: Vec, w: Vec, eps: number): Vec {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  return x.map((t, i) => (t / Math.sqrt(ms + eps)) * w[i]!);
}

const add = (a: Vec, b: Vec) => a.map((v, i) => v + b[i]!);

/**
 * inv_freq as modeling_rope_utils computes it for the config's rope type (default, linear,
 * dynamic within the trained length, llama3), in float32 like PyTorch.
 */
function inverseFrequencies(cfg: any, rot: number, base: number): number[] {
  const f = Math.fround;
  let inv = Array.from({ length: rot / 2 }, (_, i) => f(1 / f(base ** f((2 * i) / rot))));
  const sc = cfg.rope_scaling ?? cfg.rope_parameters ?? {};
  const type = sc.rope_type ?? sc.type ?? "default";
  if (type === "linear") inv = inv.map((v) => f(v / sc.factor));
  // LongRoPE within the original context: 1 / (short_factor * base^(2i/d)).
  if (type === "longrope") inv = inv.map((_, i) => f(1 / f(f(sc.short_factor[i]) * f(base ** f((2 * i) / rot)))));
  if (type === "yarn") inv = yarnInverseFrequencies(cfg, sc, rot, base);
  if (type === "llama3") {
    const old = sc.original_max_position_embeddings;
    const lowWave = old / sc.low_freq_factor;
    const highWave = old / sc.high_freq_factor;
    inv = inv.map((v) => {
      const wave = (2 * Math.PI) / v;
      if (wave < highWave) return v;
      if (wave > lowWave) return f(v / sc.factor);
      const smooth = (old / wave - sc.low_freq_factor) / (sc.high_freq_factor - sc.low_freq_factor);
      return f((1 - smooth) * (v / sc.factor) + smooth * v);
    });
  }
  return inv;
}

/** YaRN's scaling (max_position_embeddings / original when factor is absent). */
function yarnFactor(cfg: any, sc: any): number {
  return sc.factor ?? cfg.max_position_embeddings / yarnOriginal(cfg, sc);
}

function yarnOriginal(cfg: any, sc: any): number {
  return cfg.original_max_position_embeddings ?? sc.original_max_position_embeddings ?? cfg.max_position_embeddings;
}

/**
 * modeling_rope_utils._compute_yarn_parameters' inv_freq: extrapolated 1 / base^(2i/d) and
 * interpolated (divided by factor) blended by a ramp over the pairs between the correction
 * dimensions of beta_fast and beta_slow rotations (floored and ceiled unless truncate is false).
 */
function yarnInverseFrequencies(cfg: any, sc: any, rot: number, base: number): number[] {
  const f = Math.fround;
  const factor = yarnFactor(cfg, sc);
  const original = yarnOriginal(cfg, sc);
  const correctionDim = (rotations: number) => (rot * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(sc.beta_fast || 32);
  let high = correctionDim(sc.beta_slow || 1);
  if (sc.truncate !== false) [low, high] = [Math.floor(low), Math.ceil(high)];
  [low, high] = [Math.max(low, 0), Math.min(high, rot - 1)];
  if (low === high) high += 0.001;
  return Array.from({ length: rot / 2 }, (_, i) => {
    const posFreq = f(base ** f((2 * i) / rot));
    const extrapolationFactor = f(1 - f(Math.min(1, Math.max(0, f(f(i - f(low)) / f(high - low))))));
    return f(f(f(1 / f(f(factor) * posFreq)) * f(1 - extrapolationFactor)) + f(f(1 / posFreq) * extrapolationFactor));
  });
}

/** HF's rotate-half rotary on the first 2 * inv.length dims of a head at position pos (float32 angles). */
function rotateHalf(v: Vec, pos: number, invFreq: number[]): Vec {
  const out = Float64Array.from(v);
  const half = invFreq.length;
  for (let i = 0; i < half; i++) {
    const angle = Math.fround(pos * invFreq[i]!);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[i] = v[i]! * c - v[i + half]! * s;
    out[i + half] = v[i + half]! * c + v[i]! * s;
  }
  return out;
}

/** GPT-J's rotate_every_two rotary: pairs (2i, 2i + 1) of the first 2 * inv.length dims (float32 angles). */
function rotateEveryTwo(v: Vec, pos: number, invFreq: number[]): Vec {
  const out = Float64Array.from(v);
  for (let i = 0; i < invFreq.length; i++) {
    const angle = Math.fround(pos * invFreq[i]!);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[2 * i] = v[2 * i]! * c - v[2 * i + 1]! * s;
    out[2 * i + 1] = v[2 * i + 1]! * c + v[2 * i]! * s;
  }
  return out;
}

/** Causal softmax attention of one query against keys/values 0..t. */
function attend(q: Vec, keys: Vec[], values: Vec[], scale: number, softcap = 0): Vec {
  const scores = keys.map((k) => {
    const s = k.reduce((a, v, i) => a + v * q[i]!, 0) * scale;
    return softcap > 0 ? softcap * Math.tanh(s / softcap) : s;
  });
  const mx = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - mx));
  const z = e.reduce((a, b) => a + b, 0);
  const out = new Float64Array(q.length);
  values.forEach((v, j) => v.forEach((x, i) => (out[i]! += (e[j]! / z) * x)));
  return out;
}

const geluErf = (x: number) => 0.5 * x * erfc(-x / Math.SQRT2);
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));
/** transformers' ACT2FN by name. */
const ACT: Record<string, (x: number) => number> = {
  gelu: geluErf, gelu_new: geluTanh, gelu_fast: geluTanh, gelu_pytorch_tanh: geluTanh, relu: (x) => Math.max(0, x), silu,
};

interface Heads {
  q: Vec[];
  k: Vec[];
  v: Vec[];
}

/**
 * LongRoPE's (and YaRN's) attention factor as modeling_rope_utils.py sets it: sqrt(1 + ln(s) / ln(original))
 * for s = max_position_embeddings / original_max_position_embeddings (1 where s <= 1); cos and
 * sin carry it, so the rotated dimensions of q and k are scaled by it.
 */
function rotaryAmplitude(cfg: any): number {
  const sc = cfg.rope_scaling ?? cfg.rope_parameters ?? {};
  if ((sc.rope_type ?? sc.type) === "yarn") {
    // YaRN: attention_factor, or get_mscale(factor) = 0.1 ln(factor) + 1 (DeepSeek's mscale ratio aside).
    const factor = yarnFactor(cfg, sc);
    const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
    return Math.fround(sc.attention_factor ?? (sc.mscale && sc.mscale_all_dim ? mscale(factor, sc.mscale) / mscale(factor, sc.mscale_all_dim) : mscale(factor)));
  }
  if ((sc.rope_type ?? sc.type) !== "longrope") return 1;
  const original = cfg.original_max_position_embeddings;
  const s = cfg.max_position_embeddings / original;
  return s <= 1 ? 1 : Math.fround(Math.sqrt(1 + Math.log(s) / Math.log(original)));
}

/**
 * The q/k norms of llamaHeads: `norm` of head h's slice (h -1: the whole projection, with
 * `projection`), its weights found from the Llama name of the query's or the key's norm.
 */
type QkNorm = { norm: (x: Vec, name: string, h: number) => Vec; projection?: boolean };

/** Llama-layout q/k/v projections of one normed position, rotary applied to q and k (rotate-half), its rotated dims times `amplitude`. */
function llamaHeads(g: (n: string) => Vec, bias: (n: string) => Vec | null, a: Vec, t: number, H: number, Hkv: number,
  dh: number, inv: number[], qkNorm: QkNorm | null = null, amplitude = 1, clip = 0): Heads {
  const rotate = (x: Vec) => rotateHalf(x, t, inv).map((v, i) => (i < 2 * inv.length ? v * amplitude : v));
  // OLMoE: q_norm / k_norm over the whole projections, before the heads are split; then
  // (clip_qkv) q, k and v clamped to +-clip.
  const clamp = (x: Vec) => (clip ? x.map((v) => Math.min(clip, Math.max(-clip, v))) : x);
  const whole = (x: Vec, name: string) => clamp(qkNorm?.projection ? qkNorm.norm(x, name, -1) : x);
  const q = whole(linear(g("self_attn.q_proj.weight"), bias("self_attn.q_proj.bias"), a, H * dh), "self_attn.q_norm.weight");
  const k = whole(linear(g("self_attn.k_proj.weight"), bias("self_attn.k_proj.bias"), a, Hkv * dh), "self_attn.k_norm.weight");
  const v = clamp(linear(g("self_attn.v_proj.weight"), bias("self_attn.v_proj.bias"), a, Hkv * dh));
  // modeling_qwen3.py (and gemma3): q_norm / k_norm, an RMSNorm over each head, before the rotary.
  const headNorm = (x: Vec, name: string, h: number) => (qkNorm && !qkNorm.projection ? qkNorm.norm(x, name, h) : x);
  return {
    q: Array.from({ length: H }, (_, h) => rotate(headNorm(q.slice(h * dh, (h + 1) * dh), "self_attn.q_norm.weight", h))),
    k: Array.from({ length: Hkv }, (_, h) => rotate(headNorm(k.slice(h * dh, (h + 1) * dh), "self_attn.k_norm.weight", h))),
    v: Array.from({ length: Hkv }, (_, h) => v.slice(h * dh, (h + 1) * dh)),
  };
}

/** Position t's attention output over positions 0..t, query head h reading kv head h / (H / Hkv) (repeat_kv). */
function groupedAttention(proj: Heads[], t: number, H: number, Hkv: number, dh: number, scale: number, softcap = 0): Vec {
  const heads = new Float64Array(H * dh);
  for (let h = 0; h < H; h++) {
    const kv = Math.floor(h / (H / Hkv));
    heads.set(attend(proj[t]!.q[h]!, proj.slice(0, t + 1).map((p) => p.k[kv]!), proj.slice(0, t + 1).map((p) => p.v[kv]!), scale, softcap), h * dh);
  }
  return heads;
}

/**
 * A layer's sparse MoE block as modeling_mixtral.py / modeling_qwen2_moe.py / modeling_qwen3_moe.py
 * / modeling_olmoe.py compute it (null for a dense layer): router probabilities softmax(R a)
 * in float32, the num_experts_per_tok most probable (renormalised: Mixtral always, the others
 * with norm_topk_prob), the experts' SwiGLU outputs summed at those weights; Qwen2-MoE adds
 * sigmoid(shared_expert_gate . a) times its shared expert.
 */
function mixtureOfExperts(cfg: any, g: (n: string) => Vec, isMoe: boolean): ((a: Vec) => Vec) | null {
  if (!isMoe) return null;
  const mixtral = cfg.model_type === "mixtral";
  // modeling_granitemoe.py: the experts' [gate; up] stacked in input_linear, down in output_linear.
  const granite = cfg.model_type === "granitemoe" || cfg.model_type === "granitemoehybrid";
  const E = mixtral || granite ? cfg.num_local_experts : cfg.num_experts, k = cfg.num_experts_per_tok, d = cfg.hidden_size;
  const base = mixtral || granite ? "block_sparse_moe." : "mlp.";
  const [gate, up, down] = mixtral ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"];
  const width = cfg.moe_intermediate_size ?? cfg.intermediate_size;
  const swiglu = (at: string, a: Vec, f: number) => {
    const expert = granite ? Number(/experts\.(\d+)\./.exec(at)![1]) : -1;
    const W = (name: string, from: number, size: number) => (granite ? g(`${base}${name}.weight`).slice(from * size, (from + 1) * size) : null);
    const h = linear(W("input_linear", 2 * expert, f * d) ?? g(`${at}${gate}.weight`), null, a, f).map(silu);
    const u = linear(W("input_linear", 2 * expert + 1, f * d) ?? g(`${at}${up}.weight`), null, a, f);
    return linear(W("output_linear", expert, f * d) ?? g(`${at}${down}.weight`), null, h.map((v, i) => v * u[i]!), d);
  };
  return (a) => {
    // GraniteMoE: softmax over the topK logits alone, the same as renormalised probabilities.
    const logits = linear(g(granite ? `${base}router.layer.weight` : `${base}gate.weight`), null, a, E);
    const mx = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - mx));
    const z = e.reduce((s, v) => s + v, 0);
    const probs = Array.from(e, (v) => Math.fround(v / z));
    const top = probs.map((p, i) => [p, i] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, k);
    const total = top.reduce((s, [p]) => s + p, 0);
    const renormalise = mixtral || granite || cfg.norm_topk_prob;
    let out = new Float64Array(d);
    for (const [p, i] of top) out = add(out, swiglu(`${base}experts.${i}.`, a, width).map((v) => v * (renormalise ? p / total : p)));
    if (cfg.model_type === "qwen2_moe") {
      const s = linear(g(`${base}shared_expert_gate.weight`), null, a, 1)[0]!;
      out = add(out, swiglu(`${base}shared_expert.`, a, cfg.shared_expert_intermediate_size).map((v) => v / (1 + Math.exp(-s))));
    }
    // modeling_granitemoehybrid.py: the mixture plus shared_mlp, ungated.
    if (cfg.model_type === "granitemoehybrid") out = add(out, graniteSharedMlp(cfg, g, a));
    return out;
  };
}

/**
 * modeling_granitemoehybrid.py's GraniteMoeHybridMambaLayer over a sequence of normed inputs:
 * in_proj's [z; xBC; dt], the causal conv1d (with its bias) and SiLU on xBC, dt = softplus(dt +
 * dt_bias), per head S = exp(dt A) S + B (dt x)^T and y = S^T C + D x (B and C of the head's
 * group), RMSNorm(y silu(z)) w over all heads, out_proj. modeling_falcon_h1.py's FalconH1Mixer
 * (falcon): mamba_d_ssm channels, the input times ssm_in_multiplier and in_proj's sections times
 * the mup_vector; y silu(z) without mamba_rms_norm, with it FalconH1RMSNormGated per group of
 * channels (norm_before_gate: RMSNorm(y) w silu(z)); the output times ssm_out_multiplier.
 */
function mamba2Layer(cfg: any, g: (n: string) => Vec, a: Vec[]): Vec[] {
  const falcon = cfg.model_type === "falcon_h1";
  const d = cfg.hidden_size, H = cfg.mamba_n_heads, inner = falcon && cfg.mamba_d_ssm ? cfg.mamba_d_ssm : cfg.mamba_expand * d;
  const P = inner / H, G = cfg.mamba_n_groups, N = cfg.mamba_d_state;
  const K = cfg.mamba_d_conv, C = inner + 2 * G * N, eps = cfg.rms_norm_eps;
  // compute_mup_vector: z, x, B, C and dt sections of in_proj's output times ssm_multipliers.
  const mup = (i: number) => (falcon ? cfg.ssm_multipliers[i < inner ? 0 : i < 2 * inner ? 1 : i < 2 * inner + G * N ? 2 : i < 2 * inner + 2 * G * N ? 3 : 4] : 1);
  const proj = a.map((x) => linear(g("mamba.in_proj.weight"), null, x.map((v) => v * (falcon ? cfg.ssm_in_multiplier : 1)), inner + C + H).map((v, i) => v * mup(i)));
  const taps = g("mamba.conv1d.weight"), convBias = g("mamba.conv1d.bias"), dtBias = g("mamba.dt_bias"), Alog = g("mamba.A_log"), D = g("mamba.D");
  const S = Array.from({ length: H }, () => new Float64Array(N * P));
  return proj.map((p, t) => {
    const act = Float64Array.from({ length: C }, (_, c) => {
      let v = convBias[c]!;
      for (let j = 0; j < K; j++) if (t - (K - 1) + j >= 0) v += taps[c * K + j]! * proj[t - (K - 1) + j]![inner + c]!;
      return silu(v);
    });
    const y = new Float64Array(inner);
    for (let h = 0; h < H; h++) {
      const grp = Math.floor(h / (H / G));
      const dt = Math.log1p(Math.exp(p[inner + C + h]! + dtBias[h]!)), decay = Math.exp(-Math.exp(Alog[h]!) * dt);
      for (let i = 0; i < N; i++) for (let j = 0; j < P; j++) S[h]![i * P + j] = decay * S[h]![i * P + j]! + act[inner + grp * N + i]! * dt * act[h * P + j]!;
      for (let j = 0; j < P; j++) {
        let o = D[h]! * act[h * P + j]!;
        for (let i = 0; i < N; i++) o += S[h]![i * P + j]! * act[inner + G * N + grp * N + i]!;
        y[h * P + j] = o;
      }
    }
    const gate = (v: Vec) => v.map((e, c) => e * silu(p[c]!));
    let out: Vec;
    if (!falcon) {
      out = rmsNorm(gate(y), g("mamba.norm.weight"), eps);
    } else if (!cfg.mamba_rms_norm) {
      out = gate(y);
    } else {
      const before = cfg.mamba_norm_before_gate, w = g("mamba.norm.weight"), n = inner / G;
      const v = before ? y : gate(y);
      out = new Float64Array(inner);
      for (let k = 0; k < G; k++) out.set(rmsNorm(v.slice(k * n, (k + 1) * n), w.slice(k * n, (k + 1) * n), eps), k * n);
      if (before) out = gate(out);
    }
    return linear(g("mamba.out_proj.weight"), null, out, d).map((v) => v * (falcon ? cfg.ssm_out_multiplier : 1));
  });
}

/**
 * modeling_falcon_h1.py's FalconH1ForCausalLM: embeddings times embedding_multiplier; in each
 * layer one RMSNorm, then Mamba-2 (mamba2Layer) and attention side by side (the attention's
 * input times attention_in_multiplier, its keys times key_multiplier, its output times
 * attention_out_multiplier), both added to the stream; pre_ff_layernorm and a SwiGLU MLP whose
 * gate is times mlp_multipliers[0] before the SiLU and whose output is times [1];
 * final_layernorm, and the logits times lm_head_multiplier.
 */
function falconH1Logits(cfg: any, w: Raw, tokens: number[]): Vec[] {
  const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, dh = cfg.head_dim ?? d / H, eps = cfg.rms_norm_eps;
  const inv = inverseFrequencies(cfg, dh, cfg.rope_theta ?? cfg.rope_parameters?.rope_theta ?? 10000);
  const E = w.get("model.embed_tokens.weight");
  let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d).map((v) => v * cfg.embedding_multiplier));
  const [gateM, downM] = cfg.mlp_multipliers;
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const g = (n: string) => w.get(`model.layers.${l}.${n}`);
    const normed = xs.map((x) => rmsNorm(x, g("input_layernorm.weight"), eps));
    const mamba = mamba2Layer(cfg, g, normed);
    const proj = normed.map((a, t) => {
      const heads = llamaHeads(g, () => null, a.map((v) => v * cfg.attention_in_multiplier), t, H, Hkv, dh, []);
      // The keys times key_multiplier after their projection, before the rotary.
      const rotate = (v: Vec) => rotateHalf(v, t, inv);
      return { q: heads.q.map(rotate), k: heads.k.map((k) => rotate(k.map((v) => v * cfg.key_multiplier))), v: heads.v };
    });
    xs = xs.map((x, t) => {
      const attn = linear(g("self_attn.o_proj.weight"), null, groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh)), d).map((v) => v * cfg.attention_out_multiplier);
      const mid = add(add(x, mamba[t]!), attn);
      const a = rmsNorm(mid, g("pre_ff_layernorm.weight"), eps);
      const gate = linear(g("feed_forward.gate_proj.weight"), null, a, cfg.intermediate_size).map((v) => silu(v * gateM));
      const up = linear(g("feed_forward.up_proj.weight"), null, a, cfg.intermediate_size);
      return add(mid, linear(g("feed_forward.down_proj.weight"), null, gate.map((v, i) => v * up[i]!), d).map((v) => v * downM));
    });
  }
  const U = w.has("lm_head.weight") ? w.get("lm_head.weight") : E;
  return xs.map((x) => linear(U, null, rmsNorm(x, w.get("model.final_layernorm.weight"), eps), cfg.vocab_size).map((v) => v * cfg.lm_head_multiplier));
}

/** Granite 4.0's shared_mlp: input_linear's halves [gate; up], silu(gate) up, output_linear. */
function graniteSharedMlp(cfg: any, g: (n: string) => Vec, a: Vec): Vec {
  const m = cfg.shared_intermediate_size, d = cfg.hidden_size;
  const both = linear(g("shared_mlp.input_linear.weight"), null, a, 2 * m);
  return linear(g("shared_mlp.output_linear.weight"), null, both.slice(0, m).map((v, i) => silu(v) * both[m + i]!), d);
}

/** Logits [T][vocab] of one token sequence, computed as Hugging Face's modeling code does. */
export function hfReferenceLogits(dir: string, tokens: number[]): Vec[] {
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  const w = new Raw(dir);
  if (cfg.model_type === "falcon_h1") return falconH1Logits(cfg, w, tokens);
  if (cfg.model_type === "gpt_neox") {
    const d = cfg.hidden_size, H = cfg.num_attention_heads, dh = d / H;
    const rp = cfg.rope_parameters ?? {};
    const rot = Math.floor(dh * (cfg.rotary_pct ?? rp.partial_rotary_factor ?? 0.25));
    const inv = inverseFrequencies(cfg, rot, cfg.rotary_emb_base ?? rp.rope_theta ?? 10000);
    const act = ACT[cfg.hidden_act ?? "gelu"]!;
    const eps = cfg.layer_norm_eps;
    const E = w.get("gpt_neox.embed_in.weight");
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const p = `gpt_neox.layers.${l}.`;
      const g = (n: string) => w.get(p + n);
      const q: Vec[][] = [], k: Vec[][] = [], v: Vec[][] = [];
      xs.forEach((x, t) => {
        const qkv = linear(g("attention.query_key_value.weight"), g("attention.query_key_value.bias"),
          layerNorm(x, g("input_layernorm.weight"), g("input_layernorm.bias"), eps), 3 * d);
        q.push([]); k.push([]); v.push([]);
        for (let h = 0; h < H; h++) {
          const base = h * 3 * dh;
          q[t]!.push(rotateHalf(qkv.slice(base, base + dh), t, inv));
          k[t]!.push(rotateHalf(qkv.slice(base + dh, base + 2 * dh), t, inv));
          v[t]!.push(qkv.slice(base + 2 * dh, base + 3 * dh));
        }
      });
      xs = xs.map((x, t) => {
        const heads = new Float64Array(d);
        for (let h = 0; h < H; h++) {
          heads.set(attend(q[t]![h]!, k.slice(0, t + 1).map((kk) => kk[h]!), v.slice(0, t + 1).map((vv) => vv[h]!), 1 / Math.sqrt(dh)), h * dh);
        }
        const attn = linear(g("attention.dense.weight"), g("attention.dense.bias"), heads, d);
        const mlp = (inp: Vec) => linear(g("mlp.dense_4h_to_h.weight"), g("mlp.dense_4h_to_h.bias"),
          linear(g("mlp.dense_h_to_4h.weight"), g("mlp.dense_h_to_4h.bias"), inp, cfg.intermediate_size).map(act), d);
        const ln2 = (inp: Vec) => layerNorm(inp, g("post_attention_layernorm.weight"), g("post_attention_layernorm.bias"), eps);
        if (cfg.use_parallel_residual) return add(add(x, attn), mlp(ln2(x)));
        const mid = add(x, attn);
        return add(mid, mlp(ln2(mid)));
      });
    }
    const U = w.get("embed_out.weight");
    return xs.map((x) => linear(U, null, layerNorm(x, w.get("gpt_neox.final_layer_norm.weight"), w.get("gpt_neox.final_layer_norm.bias"), eps), cfg.vocab_size));
  }
  if (cfg.model_type === "gpt2") {
    const d = cfg.n_embd, H = cfg.n_head, dh = d / H, eps = cfg.layer_norm_epsilon, inner = cfg.n_inner ?? 4 * d;
    const act = ACT[cfg.activation_function ?? "gelu_new"]!;
    const E = w.get("wte.weight");
    const P = w.get("wpe.weight");
    let xs = tokens.map((t, pos) => add(E.slice(t * d, (t + 1) * d), P.slice(pos * d, (pos + 1) * d)));
    for (let l = 0; l < cfg.n_layer; l++) {
      const g = (n: string) => w.get(`h.${l}.${n}`);
      const qkv = xs.map((x) => conv1d(g("attn.c_attn.weight"), g("attn.c_attn.bias"), layerNorm(x, g("ln_1.weight"), g("ln_1.bias"), eps), 3 * d));
      const head = (t: number, part: number, h: number) => qkv[t]!.slice(part * d + h * dh, part * d + (h + 1) * dh);
      xs = xs.map((x, t) => {
        const heads = new Float64Array(d);
        for (let h = 0; h < H; h++) {
          const keys = Array.from({ length: t + 1 }, (_, j) => head(j, 1, h));
          const vals = Array.from({ length: t + 1 }, (_, j) => head(j, 2, h));
          // GPT2Attention: divide by sqrt(head dim) unless scale_attn_weights is false, then
          // by layer_idx + 1 with scale_attn_by_inverse_layer_idx.
          const scale = (cfg.scale_attn_weights === false ? 1 : 1 / Math.sqrt(dh)) / (cfg.scale_attn_by_inverse_layer_idx ? l + 1 : 1);
          heads.set(attend(head(t, 0, h), keys, vals, scale), h * dh);
        }
        const mid = add(x, conv1d(g("attn.c_proj.weight"), g("attn.c_proj.bias"), heads, d));
        const hidden = conv1d(g("mlp.c_fc.weight"), g("mlp.c_fc.bias"), layerNorm(mid, g("ln_2.weight"), g("ln_2.bias"), eps), inner).map(act);
        return add(mid, conv1d(g("mlp.c_proj.weight"), g("mlp.c_proj.bias"), hidden, d));
      });
    }
    return xs.map((x) => linear(E, null, layerNorm(x, w.get("ln_f.weight"), w.get("ln_f.bias"), eps), cfg.vocab_size));
  }
  if (cfg.model_type === "gpt_neo") {
    // GPTNeoForCausalLM: nn.Linear q/k/v (no bias) and out_proj, attention logits NOT divided
    // by sqrt(head_dim), local layers see the last window_size positions.
    const d = cfg.hidden_size, H = cfg.num_heads, dh = d / H, eps = cfg.layer_norm_epsilon, inner = cfg.intermediate_size ?? 4 * d;
    const act = ACT[cfg.activation_function ?? "gelu_new"]!;
    const layers: string[] = cfg.attention_types.flatMap(([kinds, n]: [string[], number]) => Array.from({ length: n }, () => kinds).flat());
    const E = w.get("transformer.wte.weight");
    const P = w.get("transformer.wpe.weight");
    let xs = tokens.map((t, pos) => add(E.slice(t * d, (t + 1) * d), P.slice(pos * d, (pos + 1) * d)));
    for (let l = 0; l < cfg.num_layers; l++) {
      const g = (n: string) => w.get(`transformer.h.${l}.${n}`);
      const normed = xs.map((x) => layerNorm(x, g("ln_1.weight"), g("ln_1.bias"), eps));
      const proj = (name: string) => normed.map((x) => linear(g(`attn.attention.${name}_proj.weight`), null, x, d));
      const q = proj("q"), k = proj("k"), v = proj("v");
      xs = xs.map((x, t) => {
        const heads = new Float64Array(d);
        const first = layers[l] === "local" ? Math.max(0, t - cfg.window_size + 1) : 0;
        for (let h = 0; h < H; h++) {
          const sl = (vec: Vec) => vec.slice(h * dh, (h + 1) * dh);
          heads.set(attend(sl(q[t]!), k.slice(first, t + 1).map(sl), v.slice(first, t + 1).map(sl), 1), h * dh);
        }
        const mid = add(x, linear(g("attn.attention.out_proj.weight"), g("attn.attention.out_proj.bias"), heads, d));
        const hidden = linear(g("mlp.c_fc.weight"), g("mlp.c_fc.bias"), layerNorm(mid, g("ln_2.weight"), g("ln_2.bias"), eps), inner).map(act);
        return add(mid, linear(g("mlp.c_proj.weight"), g("mlp.c_proj.bias"), hidden, d));
      });
    }
    return xs.map((x) => linear(E, null, layerNorm(x, w.get("transformer.ln_f.weight"), w.get("transformer.ln_f.bias"), eps), cfg.vocab_size));
  }
  if (cfg.model_type === "qwen3_5_text") return qwen35Logits(cfg, w, tokens);
  if (cfg.model_type === "lfm2" || cfg.model_type === "lfm2_moe") return lfm2Logits(cfg, w, tokens);
  if (cfg.model_type === "cohere" || cfg.model_type === "cohere2") {
    // modeling_cohere.py: x + attn(ln(x)) + mlp(ln(x)), one LayerNorm (weight, no bias) read by
    // both; q and k rotated in interleaved pairs (repeat_interleave of the frequencies); a tied
    // unembedding; logits times logit_scale. modeling_cohere2.py: the same, with the rotary only in
    // the sliding-window layers.
    const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads ?? H, eps = cfg.layer_norm_eps;
    const dh = cfg.head_dim ?? d / H, m = cfg.intermediate_size;
    const inv = inverseFrequencies(cfg, dh, cfg.rope_theta ?? cfg.rope_parameters?.rope_theta ?? 10000);
    const zeros = new Float64Array(d);
    const kinds: string[] = cfg.layer_types ?? Array.from({ length: cfg.num_hidden_layers }, (_, i) =>
      ((i + 1) % (cfg.sliding_window_pattern ?? 4) ? "sliding_attention" : "full_attention"));
    const E = w.get("model.embed_tokens.weight");
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const g = (n: string) => w.get(`model.layers.${l}.${n}`);
      const rotates = cfg.model_type === "cohere" || kinds[l] === "sliding_attention";
      const normed = xs.map((x) => layerNorm(x, g("input_layernorm.weight"), zeros, eps));
      const proj: Heads[] = normed.map((a, t) => {
        const q = linear(g("self_attn.q_proj.weight"), null, a, H * dh), k = linear(g("self_attn.k_proj.weight"), null, a, Hkv * dh);
        const v = linear(g("self_attn.v_proj.weight"), null, a, Hkv * dh);
        const head = (x: Vec, h: number) => x.slice(h * dh, (h + 1) * dh);
        const turn = (x: Vec) => (rotates ? rotateEveryTwo(x, t, inv) : x);
        // use_qk_norm: CohereLayerNorm over each head (no bias), q_norm / k_norm [heads, head_dim], before the rotary.
        const qkNorm = (x: Vec, h: number, name: string) => (cfg.use_qk_norm ? layerNorm(x, head(g(name), h), new Float64Array(dh), eps) : x);
        return {
          q: Array.from({ length: H }, (_, h) => turn(qkNorm(head(q, h), h, "self_attn.q_norm.weight"))),
          k: Array.from({ length: Hkv }, (_, h) => turn(qkNorm(head(k, h), h, "self_attn.k_norm.weight"))),
          v: Array.from({ length: Hkv }, (_, h) => head(v, h)),
        };
      });
      xs = xs.map((x, t) => {
        const attn = linear(g("self_attn.o_proj.weight"), null, groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh)), d);
        const gate = linear(g("mlp.gate_proj.weight"), null, normed[t]!, m).map(silu);
        const up = linear(g("mlp.up_proj.weight"), null, normed[t]!, m);
        return add(add(x, attn), linear(g("mlp.down_proj.weight"), null, gate.map((v, i) => v * up[i]!), d));
      });
    }
    const U = w.has("lm_head.weight") ? w.get("lm_head.weight") : E;
    return xs.map((x) => linear(U, null, layerNorm(x, w.get("model.norm.weight"), zeros, eps), cfg.vocab_size).map((v) => v * cfg.logit_scale));
  }
  if (cfg.model_type === "glm" || cfg.model_type === "glm4") {
    // modeling_glm.py / modeling_glm4.py: Llama's block with q/k/v biases, Phi-3's fused
    // gate_up_proj (gate, then up), the first int(head_dim * partial_rotary_factor) dims of each
    // head rotated in interleaved pairs; GLM-4 norms the attention and MLP outputs too
    // (post_self_attn_layernorm, post_mlp_layernorm), its post_attention_layernorm being the MLP's input norm.
    const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, eps = cfg.rms_norm_eps;
    const dh = cfg.head_dim ?? d / H, m = cfg.intermediate_size;
    const rot = Math.floor(dh * (cfg.partial_rotary_factor ?? cfg.rope_parameters?.partial_rotary_factor ?? 0.5));
    const inv = inverseFrequencies(cfg, rot, cfg.rope_theta ?? cfg.rope_parameters?.rope_theta ?? 10000);
    const E = w.get("model.embed_tokens.weight");
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const g = (n: string) => w.get(`model.layers.${l}.${n}`);
      const post = (x: Vec, name: string) => (cfg.model_type === "glm4" ? rmsNorm(x, g(`${name}.weight`), eps) : x);
      const proj: Heads[] = xs.map((x, t) => {
        const a = rmsNorm(x, g("input_layernorm.weight"), eps);
        const p = (n: string, width: number) => linear(g(`self_attn.${n}_proj.weight`), g(`self_attn.${n}_proj.bias`), a, width);
        const q = p("q", H * dh), k = p("k", Hkv * dh), v = p("v", Hkv * dh);
        const head = (x: Vec, h: number) => x.slice(h * dh, (h + 1) * dh);
        return {
          q: Array.from({ length: H }, (_, h) => rotateEveryTwo(head(q, h), t, inv)),
          k: Array.from({ length: Hkv }, (_, h) => rotateEveryTwo(head(k, h), t, inv)),
          v: Array.from({ length: Hkv }, (_, h) => head(v, h)),
        };
      });
      xs = xs.map((x, t) => {
        const mid = add(x, post(linear(g("self_attn.o_proj.weight"), null, groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh)), d), "post_self_attn_layernorm"));
        const gateUp = linear(g("mlp.gate_up_proj.weight"), null, rmsNorm(mid, g("post_attention_layernorm.weight"), eps), 2 * m);
        const hidden = gateUp.slice(0, m).map((v, i) => silu(v) * gateUp[m + i]!);
        return add(mid, post(linear(g("mlp.down_proj.weight"), null, hidden, d), "post_mlp_layernorm"));
      });
    }
    const U = w.has("lm_head.weight") ? w.get("lm_head.weight") : E;
    return xs.map((x) => linear(U, null, rmsNorm(x, w.get("model.norm.weight"), eps), cfg.vocab_size));
  }
  if (cfg.model_type === "gptj" || cfg.model_type === "phi") {
    // modeling_gptj.py / modeling_phi.py: x + attn(ln(x)) + mlp(ln(x)) with one LayerNorm,
    // part of each head rotated (GPT-J: rotary_dim, rotate_every_two; Phi: partial_rotary_factor,
    // rotate_half), lm_head with a bias. Phi's q/k/v and output projections have biases.
    const gptj = cfg.model_type === "gptj";
    const d = gptj ? cfg.n_embd : cfg.hidden_size, H = gptj ? cfg.n_head : cfg.num_attention_heads, dh = d / H;
    const Hkv = gptj ? H : cfg.num_key_value_heads ?? H;
    const eps = gptj ? cfg.layer_norm_epsilon : cfg.layer_norm_eps;
    const rot = gptj ? cfg.rotary_dim : Math.floor(dh * cfg.partial_rotary_factor);
    const inv = inverseFrequencies({}, rot, gptj ? 10000 : cfg.rope_theta);
    const rotate = (x: Vec, t: number) => (gptj ? rotateEveryTwo(x, t, inv) : rotateHalf(x, t, inv));
    const act = ACT[gptj ? cfg.activation_function : cfg.hidden_act]!;
    const inner = gptj ? cfg.n_inner ?? 4 * d : cfg.intermediate_size;
    const n = gptj
      ? { embed: "transformer.wte", layer: "transformer.h.", ln: "ln_1", attn: "attn.", out: "attn.out_proj", fcIn: "mlp.fc_in", fcOut: "mlp.fc_out", final: "transformer.ln_f" }
      : { embed: "model.embed_tokens", layer: "model.layers.", ln: "input_layernorm", attn: "self_attn.", out: "self_attn.dense", fcIn: "mlp.fc1", fcOut: "mlp.fc2", final: "model.final_layernorm" };
    const E = w.get(`${n.embed}.weight`);
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
    for (let l = 0; l < cfg[gptj ? "n_layer" : "num_hidden_layers"]; l++) {
      const g = (name: string) => w.get(`${n.layer}${l}.${name}`);
      const bias = (name: string) => (w.has(`${n.layer}${l}.${name}`) ? g(name) : null);
      const normed = xs.map((x) => layerNorm(x, g(`${n.ln}.weight`), g(`${n.ln}.bias`), eps));
      const proj: Heads[] = normed.map((a, t) => {
        const p = (x: string, width: number) => linear(g(`${n.attn}${x}_proj.weight`), bias(`${n.attn}${x}_proj.bias`), a, width);
        const q = p("q", H * dh), k = p("k", Hkv * dh), v = p("v", Hkv * dh);
        const head = (x: Vec, h: number) => x.slice(h * dh, (h + 1) * dh);
        return {
          q: Array.from({ length: H }, (_, h) => rotate(head(q, h), t)),
          k: Array.from({ length: Hkv }, (_, h) => rotate(head(k, h), t)),
          v: Array.from({ length: Hkv }, (_, h) => head(v, h)),
        };
      });
      xs = xs.map((x, t) => {
        const attn = linear(g(`${n.out}.weight`), bias(`${n.out}.bias`), groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh)), d);
        const mlp = linear(g(`${n.fcOut}.weight`), g(`${n.fcOut}.bias`), linear(g(`${n.fcIn}.weight`), g(`${n.fcIn}.bias`), normed[t]!, inner).map(act), d);
        return add(add(x, attn), mlp);
      });
    }
    return xs.map((x) => linear(w.get("lm_head.weight"), w.get("lm_head.bias"), layerNorm(x, w.get(`${n.final}.weight`), w.get(`${n.final}.bias`), eps), cfg.vocab_size));
  }
  if (["llama", "qwen2", "qwen3", "mistral", "phi3", "smollm3", "ministral", "ministral3", "granite", "stablelm", "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "granitemoe",
    "granitemoehybrid"].includes(cfg.model_type)) {
    // modeling_stablelm.py: LayerNorms with biases, a quarter of each head rotated by default,
    // and with use_parallel_residual x + attn(ln(x)) + mlp(ln(x)), one norm for both.
    const stablelm = cfg.model_type === "stablelm";
    const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, eps = stablelm ? cfg.layer_norm_eps : cfg.rms_norm_eps;
    // modeling_granite.py: embeddings times embedding_multiplier, attention scaled by
    // attention_multiplier, each block output times residual_multiplier, logits / logits_scaling.
    const granite = cfg.model_type === "granite" || cfg.model_type === "granitemoe" || cfg.model_type === "granitemoehybrid";
    const embedScale = granite ? cfg.embedding_multiplier ?? 1 : 1;
    const residualScale = granite ? cfg.residual_multiplier ?? 1 : 1;
    const logitScale = granite ? 1 / (cfg.logits_scaling ?? 1) : 1;
    const dh = cfg.head_dim ?? d / H, m = cfg.intermediate_size;
    // modeling_phi3.py: the first int(head_dim * partial_rotary_factor) dims of each head rotate.
    const rot = Math.floor(dh * (cfg.partial_rotary_factor ?? cfg.rope_parameters?.partial_rotary_factor ?? (stablelm ? 0.25 : 1)));
    const norm = (x: Vec, name: string, get: (n: string) => Vec) => (stablelm ? layerNorm(x, get(`${name}.weight`), get(`${name}.bias`), eps) : rmsNorm(x, get(`${name}.weight`), eps));
    const inv = inverseFrequencies(cfg, rot, cfg.rope_theta ?? cfg.rope_parameters?.rope_theta ?? 10000);
    const bias = (l: number, n: string) => (w.has(`model.layers.${l}.${n}`) ? w.get(`model.layers.${l}.${n}`) : null);
    const E = w.get("model.embed_tokens.weight");
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d).map((v) => v * Math.fround(embedScale)));
    // Phi-3's fused projections, read as the separate ones they stack: qkv_proj = [q; k; v], gate_up_proj = [gate; up].
    const fused: Record<string, [string, number, number]> = {
      "self_attn.q_proj.weight": ["self_attn.qkv_proj.weight", 0, H * dh * d],
      "self_attn.k_proj.weight": ["self_attn.qkv_proj.weight", H * dh * d, (H + Hkv) * dh * d],
      "self_attn.v_proj.weight": ["self_attn.qkv_proj.weight", (H + Hkv) * dh * d, (H + 2 * Hkv) * dh * d],
      "mlp.gate_proj.weight": ["mlp.gate_up_proj.weight", 0, m * d],
      "mlp.up_proj.weight": ["mlp.gate_up_proj.weight", m * d, 2 * m * d],
    };
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const g = (n: string) => {
        const name = `model.layers.${l}.${n}`;
        if (w.has(name) || !fused[n]) return w.get(name);
        const [whole, from, to] = fused[n]!;
        return w.get(`model.layers.${l}.${whole}`).slice(from, to);
      };
      const qkNorm: QkNorm | null = cfg.model_type === "qwen3" || cfg.model_type === "qwen3_moe" ? { norm: (x, name) => rmsNorm(x, g(name), eps) }
        // modeling_olmoe.py: q_norm and k_norm over the whole query and key projections.
        : cfg.model_type === "olmoe" ? { norm: (x, name) => rmsNorm(x, g(name), eps), projection: true }
        // modeling_stablelm.py with qk_layernorm: a LayerNorm without bias per head, each head its own weight (q_layernorm.norms.h).
        : stablelm && cfg.qk_layernorm ? { norm: (x, name, h) => layerNorm(x, g(name.replace(/_norm\.weight$/, `_layernorm.norms.${h}.weight`)), new Float64Array(dh), eps) }
        : null;
      // modeling_smollm3.py: a layer whose no_rope_layers entry is 0 rotates nothing; modeling_granitemoehybrid.py:
      // no layer does unless position_embedding_type is "rope".
      const noPositions = (cfg.no_rope_layers && cfg.no_rope_layers[l] === 0) || (cfg.model_type === "granitemoehybrid" && cfg.position_embedding_type !== "rope");
      const layerInv = noPositions ? [] : inv;
      // modeling_ministral3.py: queries times 1 + beta ln(1 + floor(t / original context)) (llama_4_scaling_beta).
      const rp = cfg.rope_parameters ?? {};
      const queryScale = (t: number) => (cfg.model_type === "ministral3" && rp.llama_4_scaling_beta
        ? 1 + rp.llama_4_scaling_beta * Math.log(1 + Math.floor(t / rp.original_max_position_embeddings)) : 1);
      // modeling_granitemoehybrid.py: Mamba-2 in its "mamba" layers.
      const mamba = cfg.model_type === "granitemoehybrid" && cfg.layer_types[l] !== "attention" ? mamba2Layer(cfg, g, xs.map((x) => norm(x, "input_layernorm", g))) : null;
      const proj = mamba ? [] : xs.map((x, t) => {
        const heads = llamaHeads(g, (n) => bias(l, n), norm(x, "input_layernorm", g), t, H, Hkv, dh, layerInv, qkNorm, rotaryAmplitude(cfg),
          cfg.model_type === "olmoe" ? cfg.clip_qkv ?? 0 : 0);
        return { ...heads, q: heads.q.map((q) => q.map((v) => v * queryScale(t))) };
      });
      xs = xs.map((x, t) => {
        const scaled = (v: Vec) => v.map((y) => y * residualScale);
        const mixed = mamba ? mamba[t]! : linear(g("self_attn.o_proj.weight"), bias(l, "self_attn.o_proj.bias"),
          groupedAttention(proj, t, H, Hkv, dh, granite ? cfg.attention_multiplier ?? 1 : 1 / Math.sqrt(dh)), d);
        const mid = add(x, scaled(mixed));
        const parallel = stablelm && cfg.use_parallel_residual;
        const a = parallel ? norm(x, "input_layernorm", g) : norm(mid, "post_attention_layernorm", g);
        const moe = mixtureOfExperts(cfg, g, ["block_sparse_moe.gate.weight", "mlp.gate.weight", "block_sparse_moe.router.layer.weight"]
          .some((n) => w.has(`model.layers.${l}.${n}`)));
        if (moe) return add(mid, scaled(moe(a)));
        if (cfg.model_type === "granitemoehybrid") return add(mid, scaled(graniteSharedMlp(cfg, g, a)));
        const gate = linear(g("mlp.gate_proj.weight"), bias(l, "mlp.gate_proj.bias"), a, cfg.intermediate_size).map(silu);
        const up = linear(g("mlp.up_proj.weight"), bias(l, "mlp.up_proj.bias"), a, cfg.intermediate_size);
        return add(mid, scaled(linear(g("mlp.down_proj.weight"), bias(l, "mlp.down_proj.bias"), gate.map((v, i) => v * up[i]!), d)));
      });
    }
    const U = w.has("lm_head.weight") ? w.get("lm_head.weight") : E;
    return xs.map((x) => linear(U, null, norm(x, "model.norm", (n) => w.get(n)), cfg.vocab_size).map((v) => v * logitScale));
  }
  if (cfg.model_type === "olmo") {
    // modeling_olmo.py: Llama's block with OlmoLayerNorm (no weight or bias, eps 1e-5) and,
    // with clip_qkv, q, k and v clamped to +-clip_qkv after their projections.
    const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads ?? H;
    const dh = d / H;
    const inv = inverseFrequencies(cfg, dh, cfg.rope_theta ?? 10000);
    const ones = new Float64Array(d).fill(1), zeros = new Float64Array(d);
    const norm = (x: Vec) => layerNorm(x, ones, zeros, 1e-5);
    const clip = (x: Vec) => (cfg.clip_qkv ? x.map((v) => Math.min(cfg.clip_qkv, Math.max(-cfg.clip_qkv, v))) : x);
    const E = w.get("model.embed_tokens.weight");
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const g = (n: string) => w.get(`model.layers.${l}.${n}`);
      const proj = xs.map((x, t) => {
        const a = norm(x);
        const q = clip(linear(g("self_attn.q_proj.weight"), null, a, H * dh));
        const k = clip(linear(g("self_attn.k_proj.weight"), null, a, Hkv * dh));
        const v = clip(linear(g("self_attn.v_proj.weight"), null, a, Hkv * dh));
        return {
          q: Array.from({ length: H }, (_, h) => rotateHalf(q.slice(h * dh, (h + 1) * dh), t, inv)),
          k: Array.from({ length: Hkv }, (_, h) => rotateHalf(k.slice(h * dh, (h + 1) * dh), t, inv)),
          v: Array.from({ length: Hkv }, (_, h) => v.slice(h * dh, (h + 1) * dh)),
        };
      });
      xs = xs.map((x, t) => {
        const mid = add(x, linear(g("self_attn.o_proj.weight"), null, groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh)), d));
        const a = norm(mid);
        const gate = linear(g("mlp.gate_proj.weight"), null, a, cfg.intermediate_size).map(silu);
        const up = linear(g("mlp.up_proj.weight"), null, a, cfg.intermediate_size);
        return add(mid, linear(g("mlp.down_proj.weight"), null, gate.map((v, i) => v * up[i]!), d));
      });
    }
    const U = w.has("lm_head.weight") ? w.get("lm_head.weight") : E;
    return xs.map((x) => linear(U, null, norm(x), cfg.vocab_size));
  }
  if (cfg.model_type === "olmo2" || cfg.model_type === "olmo3") {
    // modeling_olmo2.py: no norm before attention or MLP; q_norm and k_norm RMS-norm the whole
    // query and key projections before the heads are split and rotated; the attention and
    // MLP outputs are RMS-normed (post_attention_layernorm, post_feedforward_layernorm)
    // before each residual add. modeling_olmo3.py: the same block, its sliding-window layers
    // (layer_types) rotating by rope_parameters.sliding_attention, the others by full_attention.
    const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, eps = cfg.rms_norm_eps ?? 1e-5;
    const dh = cfg.head_dim ?? d / H;
    // A layer kind's rotary: its frequencies and the amplitude YaRN's attention factor gives cos and sin.
    const kindCfg = (kind: string) => ({ ...cfg, rope_scaling: undefined, rope_parameters: cfg.rope_parameters[kind] });
    const kindRotary = (kind: string) => ({ inv: inverseFrequencies(kindCfg(kind), dh, cfg.rope_parameters[kind].rope_theta), amp: rotaryAmplitude(kindCfg(kind)) });
    const rotaryOf = cfg.model_type === "olmo3"
      ? (l: number) => kindRotary(cfg.layer_types[l])
      : (() => { const r = { inv: inverseFrequencies(cfg, dh, cfg.rope_theta ?? 10000), amp: 1 }; return () => r; })();
    const E = w.get("model.embed_tokens.weight");
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const g = (n: string) => w.get(`model.layers.${l}.${n}`);
      const { inv, amp } = rotaryOf(l);
      const rotate = (x: Vec, t: number) => rotateHalf(x, t, inv).map((v) => v * amp);
      const proj = xs.map((x, t) => {
        const q = rmsNorm(linear(g("self_attn.q_proj.weight"), null, x, H * dh), g("self_attn.q_norm.weight"), eps);
        const k = rmsNorm(linear(g("self_attn.k_proj.weight"), null, x, Hkv * dh), g("self_attn.k_norm.weight"), eps);
        const v = linear(g("self_attn.v_proj.weight"), null, x, Hkv * dh);
        return {
          q: Array.from({ length: H }, (_, h) => rotate(q.slice(h * dh, (h + 1) * dh), t)),
          k: Array.from({ length: Hkv }, (_, h) => rotate(k.slice(h * dh, (h + 1) * dh), t)),
          v: Array.from({ length: Hkv }, (_, h) => v.slice(h * dh, (h + 1) * dh)),
        };
      });
      xs = xs.map((x, t) => {
        const heads = groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh));
        const mid = add(x, rmsNorm(linear(g("self_attn.o_proj.weight"), null, heads, d), g("post_attention_layernorm.weight"), eps));
        const gate = linear(g("mlp.gate_proj.weight"), null, mid, cfg.intermediate_size).map(silu);
        const up = linear(g("mlp.up_proj.weight"), null, mid, cfg.intermediate_size);
        const mlp = linear(g("mlp.down_proj.weight"), null, gate.map((v, i) => v * up[i]!), d);
        return add(mid, rmsNorm(mlp, g("post_feedforward_layernorm.weight"), eps));
      });
    }
    const U = w.has("lm_head.weight") ? w.get("lm_head.weight") : E;
    return xs.map((x) => linear(U, null, rmsNorm(x, w.get("model.norm.weight"), eps), cfg.vocab_size));
  }
  if (["gemma", "gemma2", "gemma3_text", "vaultgemma"].includes(cfg.model_type)) {
    // modeling_gemma(2).py: RMSNorm scales by (1 + w); embeddings times sqrt(d) (a float32
    // constant); GeGLU MLP; Gemma 2 adds post-attention / post-MLP norms, a query scale of
    // query_pre_attn_scalar^-1/2 and tanh soft caps on attention and final logits.
    // modeling_gemma3.py: Gemma 2's block with q/k norms ((1 + w) too), no soft caps, and
    // sliding-window layers rotating at rope_local_base_freq. modeling_vaultgemma.py: Gemma 2
    // without the post-attention / post-MLP norms.
    const gemma3 = cfg.model_type === "gemma3_text";
    const vault = cfg.model_type === "vaultgemma";
    const gemma2 = cfg.model_type === "gemma2" || gemma3 || vault;
    const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, eps = cfg.rms_norm_eps;
    const dh = cfg.head_dim;
    // transformers 5 may write rope_parameters per layer kind ({full_attention, sliding_attention}).
    const perKind = cfg.rope_parameters?.full_attention ? cfg.rope_parameters : null;
    const inv = perKind ? inverseFrequencies({ rope_parameters: perKind.full_attention }, dh, perKind.full_attention.rope_theta)
      : inverseFrequencies(cfg, dh, cfg.rope_theta ?? 10000);
    const invLocal = !gemma3 ? inv
      : perKind ? inverseFrequencies({ rope_parameters: perKind.sliding_attention }, dh, perKind.sliding_attention.rope_theta)
      : inverseFrequencies({ ...cfg, rope_scaling: null }, dh, cfg.rope_local_base_freq);
    const norm = (x: Vec, wt: Vec) => rmsNorm(x, wt.map((v) => 1 + v), eps);
    const act = ACT[cfg.hidden_activation ?? "gelu_pytorch_tanh"]!;
    const scale = gemma2 ? cfg.query_pre_attn_scalar ** -0.5 : 1 / Math.sqrt(dh);
    const attnCap = gemma2 ? cfg.attn_logit_softcapping ?? 0 : 0;
    const E = w.get("model.embed_tokens.weight");
    const normalizer = Math.fround(Math.sqrt(d));
    let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d).map((v) => v * normalizer));
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const g = (n: string) => w.get(`model.layers.${l}.${n}`);
      const layerInv = gemma3 && cfg.layer_types[l] === "sliding_attention" ? invLocal : inv;
      const proj = xs.map((x, t) => llamaHeads(g, () => null, norm(x, g("input_layernorm.weight")), t, H, Hkv, dh, layerInv,
        gemma3 ? { norm: (v, name) => norm(v, g(name)) } : null));
      xs = xs.map((x, t) => {
        const heads = groupedAttention(proj, t, H, Hkv, dh, scale, attnCap);
        let attn = linear(g("self_attn.o_proj.weight"), null, heads, d);
        if (gemma2 && !vault) attn = norm(attn, g("post_attention_layernorm.weight"));
        const mid = add(x, attn);
        const a = norm(mid, g(gemma2 ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"));
        const gate = linear(g("mlp.gate_proj.weight"), null, a, cfg.intermediate_size).map(act);
        const up = linear(g("mlp.up_proj.weight"), null, a, cfg.intermediate_size);
        let mlp = linear(g("mlp.down_proj.weight"), null, gate.map((v, i) => v * up[i]!), d);
        if (gemma2 && !vault) mlp = norm(mlp, g("post_feedforward_layernorm.weight"));
        return add(mid, mlp);
      });
    }
    const cap = gemma2 ? cfg.final_logit_softcapping ?? 0 : 0;
    return xs.map((x) => linear(E, null, norm(x, w.get("model.norm.weight")), cfg.vocab_size)
      .map((v) => (cap > 0 ? cap * Math.tanh(v / cap) : v)));
  }
  throw new Error(`reference: unsupported model_type ${cfg.model_type}`);
}

/**
 * modeling_qwen3_5.py's Qwen3_5ForCausalLM, token by token as torch_recurrent_gated_delta_rule
 * runs its linear-attention layers: RMSNorms of (1 + w); in a linear_attention layer the Gated
 * DeltaNet (in_proj_qkv through a causal depthwise conv1d and SiLU, q and k L2-normed per key
 * head, q / sqrt(d_k), value head h reading key head h / (v_heads / k_heads), beta = sigmoid(b),
 * g = -exp(A_log) softplus(a + dt_bias); S = e^g S, S += k (beta (v - S^T k))^T, o = S^T q;
 * RMSNorm(o) w silu(z); out_proj); in a full_attention layer attention with q_proj's per-head
 * [query; gate] halves, q/k head norms, partial rotate-half rotary and the output times
 * sigmoid(gate); then the SwiGLU MLP.
 */
function qwen35Logits(cfg: any, w: Raw, tokens: number[]): Vec[] {
  const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, dh = cfg.head_dim, m = cfg.intermediate_size;
  const eps = cfg.rms_norm_eps;
  const [kH, vH, dk, dv, K] = [cfg.linear_num_key_heads, cfg.linear_num_value_heads, cfg.linear_key_head_dim, cfg.linear_value_head_dim, cfg.linear_conv_kernel_dim];
  const rp = cfg.rope_parameters;
  const rot = Math.floor(dh * (rp.partial_rotary_factor ?? 0.25));
  const inv = inverseFrequencies(cfg, rot, rp.rope_theta);
  const norm = (x: Vec, wt: Vec) => rmsNorm(x, wt.map((v) => 1 + v), eps);
  const l2 = (x: Vec) => { const n = Math.sqrt(x.reduce((acc, v) => acc + v * v, 0) + 1e-6); return x.map((v) => v / n); };
  const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const E = w.get("model.embed_tokens.weight");
  let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const g = (n: string) => w.get(`model.layers.${l}.${n}`);
    const a = xs.map((x) => norm(x, g("input_layernorm.weight")));
    let mixed: Vec[];
    if (cfg.layer_types[l] === "linear_attention") {
      const C = 2 * kH * dk + vH * dv;
      const raw = a.map((x) => linear(g("linear_attn.in_proj_qkv.weight"), null, x, C));
      const conv = g("linear_attn.conv1d.weight");
      const dtBias = g("linear_attn.dt_bias"), Alog = g("linear_attn.A_log"), nw = g("linear_attn.norm.weight");
      const S = Array.from({ length: vH }, () => Array.from({ length: dk }, () => new Float64Array(dv)));
      mixed = a.map((x, t) => {
        const y = Float64Array.from({ length: C }, (_, c) => {
          let acc = 0;
          for (let j = 0; j < K; j++) { const src = t - (K - 1) + j; if (src >= 0) acc += conv[c * K + j]! * raw[src]![c]!; }
          return silu(acc);
        });
        const head = (at: number, n: number) => y.slice(at, at + n);
        const z = linear(g("linear_attn.in_proj_z.weight"), null, x, vH * dv);
        const b = linear(g("linear_attn.in_proj_b.weight"), null, x, vH), av = linear(g("linear_attn.in_proj_a.weight"), null, x, vH);
        const out: number[] = [];
        for (let h = 0; h < vH; h++) {
          const kh = Math.floor(h / (vH / kH));
          const q = l2(head(kh * dk, dk)).map((v) => v / Math.sqrt(dk)), k = l2(head(kH * dk + kh * dk, dk)), v = head(2 * kH * dk + h * dv, dv);
          const decay = Math.exp(-Math.exp(Alog[h]!) * softplus(av[h]! + dtBias[h]!)), beta = sigmoid(b[h]!);
          for (const row of S[h]!) for (let j = 0; j < dv; j++) row[j]! *= decay;
          const mem = Array.from({ length: dv }, (_, j) => S[h]!.reduce((acc, row, i) => acc + row[j]! * k[i]!, 0));
          const delta = v.map((vj, j) => (vj - mem[j]!) * beta);
          S[h]!.forEach((row, i) => { for (let j = 0; j < dv; j++) row[j]! += k[i]! * delta[j]!; });
          const o = Array.from({ length: dv }, (_, j) => S[h]!.reduce((acc, row, i) => acc + row[j]! * q[i]!, 0));
          const rms = Math.sqrt(o.reduce((acc, v) => acc + v * v, 0) / dv + eps);
          for (let j = 0; j < dv; j++) out.push((o[j]! / rms) * nw[j]! * silu(z[h * dv + j]!));
        }
        return linear(g("linear_attn.out_proj.weight"), null, Float64Array.from(out), d);
      });
    } else {
      const qg = a.map((x) => linear(g("self_attn.q_proj.weight"), null, x, 2 * H * dh));
      const proj: Heads[] = a.map((x, t) => {
        const k = linear(g("self_attn.k_proj.weight"), null, x, Hkv * dh), v = linear(g("self_attn.v_proj.weight"), null, x, Hkv * dh);
        return {
          q: Array.from({ length: H }, (_, h) => rotateHalf(norm(qg[t]!.slice(2 * h * dh, (2 * h + 1) * dh), g("self_attn.q_norm.weight")), t, inv)),
          k: Array.from({ length: Hkv }, (_, h) => rotateHalf(norm(k.slice(h * dh, (h + 1) * dh), g("self_attn.k_norm.weight")), t, inv)),
          v: Array.from({ length: Hkv }, (_, h) => v.slice(h * dh, (h + 1) * dh)),
        };
      });
      mixed = a.map((_, t) => {
        const heads = groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh));
        const gated = heads.map((v, i) => v * sigmoid(qg[t]![2 * Math.floor(i / dh) * dh + dh + (i % dh)]!));
        return linear(g("self_attn.o_proj.weight"), null, gated, d);
      });
    }
    xs = xs.map((x, t) => {
      const mid = add(x, mixed[t]!);
      const h2 = norm(mid, g("post_attention_layernorm.weight"));
      const gate = linear(g("mlp.gate_proj.weight"), null, h2, m).map(silu);
      const up = linear(g("mlp.up_proj.weight"), null, h2, m);
      return add(mid, linear(g("mlp.down_proj.weight"), null, gate.map((v, i) => v * up[i]!), d));
    });
  }
  const U = w.has("lm_head.weight") ? w.get("lm_head.weight") : E;
  return xs.map((x) => linear(U, null, norm(x, w.get("model.norm.weight")), cfg.vocab_size));
}

/**
 * modeling_lfm2.py's Lfm2ForCausalLM: in a "conv" layer Lfm2ShortConv (in_proj's B, C and x;
 * y = C * causal depthwise conv1d over B * x, no bias; out_proj), in the others attention with
 * q_layernorm / k_layernorm RMSNorms per head and rotate-half rotary (out_proj); operator_norm
 * before either, ffn_norm before the SwiGLU feed_forward (w1 gate, w3 up, w2 down), embedding_norm
 * after the last layer, a tied unembedding.
 */
function lfm2Logits(cfg: any, w: Raw, tokens: number[]): Vec[] {
  const d = cfg.hidden_size, H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, dh = d / H, eps = cfg.norm_eps, K = cfg.conv_L_cache;
  const moe = cfg.model_type === "lfm2_moe";
  let m = moe ? cfg.intermediate_size : cfg.block_ff_dim;
  if (!moe && cfg.block_auto_adjust_ff_dim) {
    m = Math.floor((2 * m) / 3);
    m = Math.floor(cfg.block_ffn_dim_multiplier * m);
    m = cfg.block_multiple_of * Math.ceil(m / cfg.block_multiple_of);
  }
  const inv = inverseFrequencies(cfg, dh, cfg.rope_theta);
  const E = w.get("model.embed_tokens.weight");
  let xs = tokens.map((t) => E.slice(t * d, (t + 1) * d));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const g = (n: string) => w.get(`model.layers.${l}.${n}`);
    const a = xs.map((x) => rmsNorm(x, g("operator_norm.weight"), eps));
    let mixed: Vec[];
    if (moe ? cfg.layer_types[l] === "conv" : !cfg.full_attn_idxs.includes(l)) {
      const bcx = a.map((x) => linear(g("conv.in_proj.weight"), null, x, 3 * d));
      const bx = bcx.map((v) => v.slice(0, d).map((b, c) => b * v[2 * d + c]!));
      const taps = g("conv.conv.weight");
      mixed = bcx.map((v, t) => {
        const y = Float64Array.from({ length: d }, (_, c) => {
          let acc = 0;
          for (let j = 0; j < K; j++) if (t - (K - 1) + j >= 0) acc += taps[c * K + j]! * bx[t - (K - 1) + j]![c]!;
          return v[d + c]! * acc;
        });
        return linear(g("conv.out_proj.weight"), null, y, d);
      });
    } else {
      const proj: Heads[] = a.map((x, t) => {
        const q = linear(g("self_attn.q_proj.weight"), null, x, H * dh), k = linear(g("self_attn.k_proj.weight"), null, x, Hkv * dh);
        const v = linear(g("self_attn.v_proj.weight"), null, x, Hkv * dh);
        return {
          q: Array.from({ length: H }, (_, h) => rotateHalf(rmsNorm(q.slice(h * dh, (h + 1) * dh), g("self_attn.q_layernorm.weight"), eps), t, inv)),
          k: Array.from({ length: Hkv }, (_, h) => rotateHalf(rmsNorm(k.slice(h * dh, (h + 1) * dh), g("self_attn.k_layernorm.weight"), eps), t, inv)),
          v: Array.from({ length: Hkv }, (_, h) => v.slice(h * dh, (h + 1) * dh)),
        };
      });
      mixed = a.map((_, t) => linear(g("self_attn.out_proj.weight"), null, groupedAttention(proj, t, H, Hkv, dh, 1 / Math.sqrt(dh)), d));
    }
    // modeling_lfm2_moe.py's Lfm2MoeSparseMoeBlock past num_dense_layers: scores sigmoid(R a), the top
    // num_experts_per_tok of score + expert_bias, weighted by score / (sum + 1e-6) x routed_scaling_factor.
    const swiglu = (prefix: string, a: Vec, width: number) => {
      const gate = linear(g(`${prefix}w1.weight`), null, a, width).map(silu);
      const up = linear(g(`${prefix}w3.weight`), null, a, width);
      return linear(g(`${prefix}w2.weight`), null, gate.map((v, i) => v * up[i]!), d);
    };
    const experts = (a: Vec) => {
      const E = cfg.num_experts, bias = g("feed_forward.expert_bias");
      const score = Array.from(linear(g("feed_forward.gate.weight"), null, a, E), (v) => 1 / (1 + Math.exp(-v)));
      const top = [...score.keys()].sort((i, j) => score[j]! + bias[j]! - (score[i]! + bias[i]!) || i - j).slice(0, cfg.num_experts_per_tok);
      const total = top.reduce((s, e) => s + score[e]!, 0) + 1e-6;
      let out = new Float64Array(d);
      for (const e of top) out = add(out, swiglu(`feed_forward.experts.${e}.`, a, cfg.moe_intermediate_size).map((v) => (v * score[e]! / total) * cfg.routed_scaling_factor));
      return out;
    };
    xs = xs.map((x, t) => {
      const mid = add(x, mixed[t]!);
      const h2 = rmsNorm(mid, g("ffn_norm.weight"), eps);
      return add(mid, moe && l >= cfg.num_dense_layers ? experts(h2) : swiglu("feed_forward.", h2, m));
    });
  }
  return xs.map((x) => linear(E, null, rmsNorm(x, w.get("model.embedding_norm.weight"), eps), cfg.vocab_size));
}
