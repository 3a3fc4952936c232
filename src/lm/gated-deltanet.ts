/**
 * The Gated DeltaNet (Yang, Kautz & Hatamizadeh 2024): Qwen3.5's linear-attention layers, which
 * take three of every four attention layers' place (modeling_qwen3_5.py's Qwen3_5GatedDeltaNet).
 * For a normed input x_t it projects
 *
 *   [q; k; v] = silu(causal depthwise conv over t of W_qkv x_t),  z = W_z x_t,
 *   beta = sigmoid(W_b x_t),  g = -exp(A_log) softplus(W_a x_t + dt_bias)   (per value head),
 *
 * L2-normalises each key head's q and k (q also / sqrt(d_k)), lets value head h read key head
 * h / (vHeads / kHeads), and runs the delta rule on a state S [d_k, d_v] per value head:
 *
 *   S <- exp(g) S;   S <- S + k (beta (v - S^T k))^T;   o = S^T q,
 *
 * then a gated RMSNorm per value head, RMSNorm(o) w silu(z), and the output projection. A
 * token's state depends on every earlier token, as attention's output does: the convolution's
 * last kernel - 1 inputs and each head's S carry over in the cache for generation.
 *
 * The convolution and the recurrence run on the kernels (causalConvSilu, gatedDeltaRule: native,
 * threaded, with TypeScript twins), the projections on the model's matrix products; the norms
 * and the gates, a few operations per value, are written here.
 */
import type { Kernels } from "../core/kernels.js";
import type { WeightMatrix } from "./model.js";

/** A Gated DeltaNet layer's shapes (LmConfig.linearAttention). */
export interface DeltaNetShape {
  kHeads: number;
  vHeads: number;
  dk: number;
  dv: number;
  convKernel: number;
}

export interface DeltaNetWeights {
  /** [2 kHeads dk + vHeads dv, dModel]: queries, keys, values (in_proj_qkv). */
  wqkv: WeightMatrix;
  /** [vHeads dv, dModel]: the output gate z (in_proj_z). */
  wz: WeightMatrix;
  /** [vHeads, dModel]: beta's projection (in_proj_b). */
  wb: WeightMatrix;
  /** [vHeads, dModel]: the decay's projection (in_proj_a). */
  wa: WeightMatrix;
  /** [2 kHeads dk + vHeads dv, convKernel]: the depthwise causal convolution (conv1d, no bias). */
  conv: Float32Array;
  /** [vHeads]: dt_bias, and -exp(A_log) (the decay rate, negative). */
  dtBias: Float32Array;
  negA: Float32Array;
  /** [dv]: the gated RMSNorm's weight. */
  norm: Float32Array;
  /** [dModel, vHeads dv] (out_proj). */
  wout: WeightMatrix;
}

/**
 * One layer's carried state for `batch` sequences: the convolution's last convKernel - 1 inputs
 * [batch, convKernel - 1, convDim] (oldest first) and each value head's S [batch, vHeads, dk, dv].
 */
export interface DeltaNetState {
  conv: Float32Array;
  recurrent: Float32Array;
}

export function convWidth(s: DeltaNetShape): number {
  return 2 * s.kHeads * s.dk + s.vHeads * s.dv;
}

export function newDeltaNetState(s: DeltaNetShape, batch: number): DeltaNetState {
  return { conv: new Float32Array(batch * (s.convKernel - 1) * convWidth(s)), recurrent: new Float32Array(batch * s.vHeads * s.dk * s.dv) };
}

/** torch's softplus (beta 1, threshold 20): log(1 + e^x), x itself above 20. */
function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * The mixer's output heads [batch * seq, vHeads dv] (what out_proj reads) from the projections
 * of `seq` new tokens per sequence: mixed [rows, convDim] (W_qkv x), z [rows, vHeads dv],
 * b and a [rows, vHeads]. `state` holds the sequences' past (zeros: none) and is advanced past
 * these tokens.
 */
export function deltaNetHeads(k: Kernels, s: DeltaNetShape, w: DeltaNetWeights, eps: number, batch: number, seq: number,
  mixed: Float32Array, z: Float32Array, b: Float32Array, a: Float32Array, state: DeltaNetState): Float32Array {
  const { kHeads, vHeads, dk, dv, convKernel: K } = s;
  const C = convWidth(s);
  const keyDim = kHeads * dk, valueDim = vHeads * dv;
  const rows = batch * seq;
  const q = new Float32Array(rows * keyDim), key = new Float32Array(rows * keyDim), v = new Float32Array(rows * valueDim);
  const decay = new Float32Array(rows * vHeads), beta = new Float32Array(rows * vHeads);
  const conv = new Float32Array(rows * C);
  k.causalConvSilu(mixed, batch, seq, C, K, w.conv, state.conv, conv);
  const qScale = 1 / Math.sqrt(dk);
  for (let r = 0; r < rows; r++) {
    const x = conv.subarray(r * C, (r + 1) * C);
    // Unit-length query and key heads (l2norm: x / sqrt(|x|^2 + 1e-6)), the query / sqrt(dk).
    for (let h = 0; h < 2 * kHeads; h++) {
      let ss = 0;
      for (let i = 0; i < dk; i++) ss += x[h * dk + i]! ** 2;
      const inv = (h < kHeads ? qScale : 1) / Math.sqrt(ss + 1e-6);
      const to = h < kHeads ? q : key, at = r * keyDim + (h % kHeads) * dk;
      for (let i = 0; i < dk; i++) to[at + i] = x[h * dk + i]! * inv;
    }
    v.set(x.subarray(2 * keyDim), r * valueDim);
    for (let h = 0; h < vHeads; h++) {
      beta[r * vHeads + h] = 1 / (1 + Math.exp(-b[r * vHeads + h]!));
      decay[r * vHeads + h] = Math.exp(w.negA[h]! * softplus(a[r * vHeads + h]! + w.dtBias[h]!));
    }
  }
  const out = new Float32Array(rows * valueDim);
  k.gatedDeltaRule(q, key, v, decay, beta, batch, seq, kHeads, vHeads, dk, dv, state.recurrent, out);
  // The gated RMSNorm per value head: RMSNorm(o) w silu(z).
  for (let r = 0; r < rows * vHeads; r++) {
    const at = r * dv;
    let ms = 0;
    for (let j = 0; j < dv; j++) ms += out[at + j]! ** 2;
    const rms = 1 / Math.sqrt(ms / dv + eps);
    for (let j = 0; j < dv; j++) out[at + j] = out[at + j]! * rms * w.norm[j]! * silu(z[at + j]!);
  }
  return out;
}
