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
 * The convolution and the recurrence run on the kernels (causalConv, gatedDeltaRule: native,
 * threaded, with TypeScript twins), the projections on the model's matrix products; the norms
 * and the gates, a few operations per value, are written here, as is the backward
 * (deltaNetBackward, for end-to-end training) around its kernel gatedDeltaRuleBackward.
 */
import { Activation } from "../core/kernel-api.js";
import type { Kernels } from "../core/kernels.js";
import { causalConvInputGrad } from "./causal-conv.js";
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

/** torch's softplus (beta 1, threshold 20): log(1 + e^x), x itself above 20 (Mamba-2's dt too). */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * What the delta rule reads, from x [rows, convDim] (the convolution after its SiLU) and the
 * gates' projections b and a [rows, vHeads]: unit-length query and key heads (l2norm,
 * x / sqrt(|x|^2 + 1e-6)), the query also / sqrt(dk); the values; beta = sigmoid(b) and
 * decay = exp(-exp(A_log) softplus(a + dt_bias)). For the backward, each head's norm
 * sqrt(|x|^2 + 1e-6) [rows, 2 kHeads] and the softplus's argument [rows, vHeads].
 */
function ruleInputs(s: DeltaNetShape, w: DeltaNetWeights, rows: number, x: Float32Array, b: Float32Array, a: Float32Array) {
  const { kHeads, vHeads, dk, dv } = s;
  const C = convWidth(s), keyDim = kHeads * dk, valueDim = vHeads * dv;
  const q = new Float32Array(rows * keyDim), key = new Float32Array(rows * keyDim), v = new Float32Array(rows * valueDim);
  const beta = new Float32Array(rows * vHeads), decay = new Float32Array(rows * vHeads);
  const norms = new Float64Array(rows * 2 * kHeads), softArg = new Float64Array(rows * vHeads);
  const qScale = 1 / Math.sqrt(dk);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < 2 * kHeads; h++) {
      let ss = 0;
      for (let i = 0; i < dk; i++) ss += x[r * C + h * dk + i]! ** 2;
      const n = Math.sqrt(ss + 1e-6);
      norms[r * 2 * kHeads + h] = n;
      const inv = (h < kHeads ? qScale : 1) / n;
      const to = h < kHeads ? q : key, at = r * keyDim + (h % kHeads) * dk;
      for (let i = 0; i < dk; i++) to[at + i] = x[r * C + h * dk + i]! * inv;
    }
    v.set(x.subarray(r * C + 2 * keyDim, (r + 1) * C), r * valueDim);
    for (let h = 0; h < vHeads; h++) {
      const e = r * vHeads + h;
      beta[e] = 1 / (1 + Math.exp(-b[e]!));
      softArg[e] = a[e]! + w.dtBias[h]!;
      decay[e] = Math.exp(w.negA[h]! * softplus(softArg[e]!));
    }
  }
  return { q, key, v, beta, decay, norms, softArg };
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
  const C = convWidth(s), valueDim = vHeads * dv;
  const rows = batch * seq;
  const conv = new Float32Array(rows * C);
  k.causalConv(mixed, batch, seq, C, K, w.conv, state.conv, true, conv);
  const { q, key, v, beta, decay } = ruleInputs(s, w, rows, conv, b, a);
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

/** What deltaNetBackward gives: d loss / d each projection deltaNetHeads read. */
export interface DeltaNetGradients {
  mixed: Float32Array;
  z: Float32Array;
  b: Float32Array;
  a: Float32Array;
}

/**
 * The input gradients of deltaNetHeads (from no past state) for d loss / d its output
 * dOut [rows, vHeads dv]: back through the gated RMSNorm, the delta rule through time (the
 * kernel gatedDeltaRuleBackward: each value head's states recomputed), the L2 norms, the gates
 * and the convolution, for end-to-end training, which runs it once per step.
 */
export function deltaNetBackward(k: Kernels, s: DeltaNetShape, w: DeltaNetWeights, eps: number, batch: number, seq: number,
  mixed: Float32Array, z: Float32Array, b: Float32Array, a: Float32Array, dOut: Float32Array): DeltaNetGradients {
  const { kHeads, vHeads, dk, dv, convKernel: K } = s;
  const C = convWidth(s), keyDim = kHeads * dk, valueDim = vHeads * dv, rows = batch * seq, group = vHeads / kHeads;
  const g: DeltaNetGradients = {
    mixed: new Float32Array(rows * C), z: new Float32Array(rows * valueDim), b: new Float32Array(rows * vHeads), a: new Float32Array(rows * vHeads),
  };
  // The forward again, as deltaNetHeads runs it: the convolution's output c before its SiLU and
  // x = silu(c) after, what the rule reads (ruleInputs) and the rule's output o.
  const pre = new Float32Array(rows * C), x = new Float32Array(rows * C);
  k.causalConv(mixed, batch, seq, C, K, w.conv, new Float32Array(batch * (K - 1) * C), false, pre);
  x.set(pre);
  k.activate(x, Activation.Silu);
  const { q, key, v, beta, decay, norms, softArg } = ruleInputs(s, w, rows, x, b, a);
  const o = new Float32Array(rows * valueDim);
  k.gatedDeltaRule(q, key, v, decay, beta, batch, seq, kHeads, vHeads, dk, dv, new Float32Array(batch * vHeads * dk * dv), o);
  // The gated RMSNorm y = o / rms(o) w silu(z), per value head: dO = d loss / d o.
  const dO = new Float32Array(rows * valueDim);
  for (let e = 0; e < rows * vHeads; e++) {
    const at = e * dv;
    let ms = 0;
    for (let j = 0; j < dv; j++) ms += o[at + j]! ** 2;
    const inv = 1 / Math.sqrt(ms / dv + eps);
    let dot = 0;
    for (let j = 0; j < dv; j++) {
      const zj = z[at + j]!, sg = 1 / (1 + Math.exp(-zj));
      const u = dOut[at + j]! * w.norm[j]! * zj * sg; // dy w silu(z): the gradient of inv * o
      g.z[at + j] = dOut[at + j]! * o[at + j]! * inv * w.norm[j]! * sg * (1 + zj * (1 - sg));
      dO[at + j] = u;
      dot += u * o[at + j]!;
    }
    for (let j = 0; j < dv; j++) dO[at + j] = inv * dO[at + j]! - (inv ** 3) * o[at + j]! * dot / dv;
  }
  // The delta rule through time; then dqk gathers d loss / d the normed q and k (a key head's value heads summed).
  const dqH = new Float32Array(rows * vHeads * dk), dkH = new Float32Array(rows * vHeads * dk), dV = new Float32Array(rows * valueDim);
  const dDecay = new Float32Array(rows * vHeads), dBeta = new Float32Array(rows * vHeads);
  k.gatedDeltaRuleBackward(q, key, v, decay, beta, dO, batch, seq, kHeads, vHeads, dk, dv, dqH, dkH, dV, dDecay, dBeta);
  const dx = new Float32Array(rows * C); // d loss / d x (the convolution's SiLU output)
  const dqk = new Float64Array(rows * 2 * keyDim); // d loss / d the normed q and k
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < vHeads; h++) {
      const e = r * vHeads + h, kg = Math.floor(h / group);
      for (let i = 0; i < dk; i++) {
        dqk[r * 2 * keyDim + kg * dk + i]! += dqH[e * dk + i]!;
        dqk[r * 2 * keyDim + keyDim + kg * dk + i]! += dkH[e * dk + i]!;
      }
      for (let j = 0; j < dv; j++) dx[r * C + 2 * keyDim + h * dv + j] = dV[e * dv + j]!;
      const be = beta[e]!;
      g.b[e] = dBeta[e]! * be * (1 - be);
      // decay = exp(negA softplus(u)): d decay / du = decay negA sigmoid(u).
      g.a[e] = dDecay[e]! * decay[e]! * w.negA[h]! / (1 + Math.exp(-softArg[e]!));
    }
  }
  // The L2 norms (q also scaled by 1 / sqrt(dk)): n = sqrt(|x|^2 + 1e-6), y = s x / n, dx = s (dy / n - x (x . dy) / n^3).
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < 2 * kHeads; h++) {
      const n = norms[r * 2 * kHeads + h]!, scale = h < kHeads ? 1 / Math.sqrt(dk) : 1;
      let dot = 0;
      for (let i = 0; i < dk; i++) dot += x[r * C + h * dk + i]! * dqk[r * 2 * keyDim + h * dk + i]!;
      const along = dot / n ** 3;
      for (let i = 0; i < dk; i++) {
        dx[r * C + h * dk + i]! += scale * (dqk[r * 2 * keyDim + h * dk + i]! / n - x[r * C + h * dk + i]! * along);
      }
    }
  }
  // x = silu(c), c the convolution of mixed: through the SiLU, then the taps.
  k.activationBackward(pre, dx, Activation.Silu);
  causalConvInputGrad(dx, batch, seq, C, K, w.conv, g.mixed, C, 0);
  return g;
}
