/**
 * Mamba-2 (Dao & Gu 2024), the state-space layers of Granite 4.0's -H models in place of most
 * attention layers (modeling_granitemoehybrid.py's GraniteMoeHybridMambaLayer). From the normed
 * stream h_t it projects
 *
 *   [z; xBC; dt] = W_in h_t,   [x; B; C] = silu(causal depthwise conv over t of xBC + bias),
 *   dt = softplus(dt + dt_bias),   a = exp(dt A) (A = -exp(A_log), per head),
 *
 * and scans each head (head_dim channels of x, reading the B and C of its group) with a state
 * S [d_state, head_dim]:
 *
 *   S <- a S + B (dt x)^T;   y = S^T C + D x,
 *
 * then the gate z: in Mamba-2's own way (and Granite 4.0-H's) a gated RMSNorm over all heads
 * together, RMSNorm(y silu(z)) w; Falcon-H1 (modeling_falcon_h1.py's FalconH1Mixer) gates
 * without a norm, y silu(z), or with mamba_rms_norm RMS-norms each of its n_groups groups of
 * channels, before the gate or after it (MambaShape.gate). Then the output
 * projection. The convolution's last kernel - 1 inputs and each head's S carry over in the cache
 * for generation. The convolution, the SiLUs and the scan run on the kernels (causalConv,
 * activate, ssmScan); the backward (mambaBackward, for end-to-end training) on ssmScanBackward,
 * around it plain loops.
 */
import { Activation } from "../core/kernel-api.js";
import type { Kernels } from "../core/kernels.js";
import { causalConvInputGrad } from "./causal-conv.js";
import { softplus } from "./gated-deltanet.js";
import type { WeightMatrix } from "./model.js";

/** A Mamba-2 layer's shapes (LmConfig.mamba). */
export interface MambaShape {
  heads: number;
  headDim: number;
  groups: number;
  dState: number;
  convKernel: number;
  /**
   * How the heads y (after the skip) meet the gate z before out_proj: "gate-then-norm",
   * RMSNorm(y silu(z)) w; "norm-then-gate", RMSNorm(y) w silu(z); "gate", y silu(z) and no norm.
   */
  gate: MambaGate;
  /** The RMSNorm's groups of channels, each normed on its own (1: all heads together). */
  normGroups: number;
}

export type MambaGate = "gate-then-norm" | "norm-then-gate" | "gate";

export interface MambaWeights {
  /** [inner + convWidth + heads, dModel]: z, then x, B and C, then dt (in_proj). */
  win: WeightMatrix;
  /** [convWidth, convKernel] and [convWidth] (conv1d; its bias zeros where it has none). */
  conv: Float32Array;
  convBias: Float32Array;
  /** [heads]: dt_bias, A = -exp(A_log), and D (the skip). */
  dtBias: Float32Array;
  A: Float32Array;
  D: Float32Array;
  /** [inner]: the gated RMSNorm's weight (empty with gate "gate"). */
  norm: Float32Array;
  /** [dModel, inner] (out_proj). */
  wout: WeightMatrix;
}

/** One layer's carried state for `batch` sequences: the convolution's last inputs and each head's S. */
export interface MambaState {
  conv: Float32Array;
  ssm: Float32Array;
}

export function innerWidth(s: MambaShape): number {
  return s.heads * s.headDim;
}

/** The convolution's channels: x, B and C. */
export function mambaConvWidth(s: MambaShape): number {
  return innerWidth(s) + 2 * s.groups * s.dState;
}

export function newMambaState(s: MambaShape, batch: number): MambaState {
  return { conv: new Float32Array(batch * (s.convKernel - 1) * mambaConvWidth(s)), ssm: new Float32Array(batch * s.heads * s.dState * s.headDim) };
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** A projection row [z; xBC; dt]: its width, where xBC and dt start, and the convolution's channels C. */
function layout(s: MambaShape) {
  const inner = innerWidth(s), C = mambaConvWidth(s);
  return { inner, C, width: inner + C + s.heads, xBC: inner, dt: inner + C };
}

/**
 * The heads y [rows, inner] (after the skip), in place, through the gate and the norm
 * (MambaShape.gate), given siluZ = silu(z) [rows, inner].
 */
function gateRows(s: MambaShape, norm: Float32Array, eps: number, rows: number, y: Float32Array, siluZ: Float32Array): void {
  const inner = y.length / rows, m = inner / s.normGroups, before = s.gate === "norm-then-gate";
  for (let r = 0; r < rows; r++) {
    const o = r * inner;
    if (!before) for (let c = 0; c < inner; c++) y[o + c]! *= siluZ[o + c]!;
    if (s.gate === "gate") continue;
    for (let g0 = o; g0 < o + inner; g0 += m) {
      let ms = 0;
      for (let c = g0; c < g0 + m; c++) ms += y[c]! ** 2;
      const inv = 1 / Math.sqrt(ms / m + eps);
      for (let c = g0; c < g0 + m; c++) y[c] = y[c]! * inv * norm[c - o]! * (before ? siluZ[c]! : 1);
    }
  }
}

/**
 * One token's gateRows backward: d loss / d y into dY and d loss / d z into dZ, from d loss / d out. With
 * v the norm's input (y silu(z) or y) and n = v / rms(v) w over a group of m channels,
 * dv = (w dn - v <w dn, v> / (m rms^2)) / rms.
 */
function gateRowBackward(s: MambaShape, norm: Float32Array, eps: number, y: Float64Array, z: Float64Array, dOut: ArrayLike<number>,
  dY: Float64Array, dZ: Float64Array): void {
  const inner = y.length, m = inner / s.normGroups;
  if (s.gate === "gate") {
    for (let c = 0; c < inner; c++) {
      const sg = sigmoid(z[c]!);
      dY[c] = dOut[c]! * z[c]! * sg;
      dZ[c] = dOut[c]! * y[c]! * sg * (1 + z[c]! * (1 - sg));
    }
    return;
  }
  const before = s.gate === "norm-then-gate";
  for (let g0 = 0; g0 < inner; g0 += m) {
    let ms = 0, dot = 0;
    const v = (c: number) => (before ? y[c]! : y[c]! * z[c]! * sigmoid(z[c]!));
    for (let c = g0; c < g0 + m; c++) ms += v(c) ** 2;
    const inv = 1 / Math.sqrt(ms / m + eps);
    // d loss / d the normed value (before the gate when the gate comes after the norm).
    const dn = (c: number) => dOut[c]! * (before ? z[c]! * sigmoid(z[c]!) : 1);
    for (let c = g0; c < g0 + m; c++) dot += dn(c) * norm[c]! * v(c);
    for (let c = g0; c < g0 + m; c++) {
      const dv = inv * dn(c) * norm[c]! - inv ** 3 * v(c) * dot / m;
      const sg = sigmoid(z[c]!), silu = z[c]! * sg, dSilu = sg * (1 + z[c]! * (1 - sg));
      if (before) {
        dY[c] = dv;
        dZ[c] = dOut[c]! * v(c) * inv * norm[c]! * dSilu;
      } else {
        dY[c] = dv * silu;
        dZ[c] = dv * y[c]! * dSilu;
      }
    }
  }
}

/**
 * xBC's causal convolution plus its bias, before the SiLU [rows, convWidth], from the
 * projections; `history` (the cache's last inputs) is advanced past these tokens.
 */
function convolveXbc(k: Kernels, s: MambaShape, w: MambaWeights, batch: number, seq: number, proj: Float32Array,
  history: Float32Array): Float32Array {
  const { C, width, xBC } = layout(s);
  const rows = batch * seq;
  const xbc = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) xbc.set(proj.subarray(r * width + xBC, r * width + xBC + C), r * C);
  const out = new Float32Array(rows * C);
  k.causalConv(xbc, batch, seq, C, s.convKernel, w.conv, history, false, out);
  for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) out[r * C + c]! += w.convBias[c]!;
  return out;
}

/**
 * The scan's inputs from the projections and x, B and C after the SiLU (act [rows, convWidth]):
 * dt before its softplus and after, decay = exp(dt A) [rows, heads], u = dt x, B and C.
 */
function scanInputs(s: MambaShape, w: MambaWeights, rows: number, proj: Float32Array, act: Float32Array) {
  const { inner, C, width, dt: dtAt } = layout(s);
  const { heads: H, headDim: P } = s, gN = s.groups * s.dState;
  const dtRaw = new Float64Array(rows * H), dt = new Float64Array(rows * H), decay = new Float32Array(rows * H);
  const u = new Float32Array(rows * inner), B = new Float32Array(rows * gN), Cm = new Float32Array(rows * gN);
  for (let r = 0; r < rows; r++) {
    B.set(act.subarray(r * C + inner, r * C + inner + gN), r * gN);
    Cm.set(act.subarray(r * C + inner + gN, (r + 1) * C), r * gN);
    for (let h = 0; h < H; h++) {
      const e = r * H + h;
      dtRaw[e] = proj[r * width + dtAt + h]! + w.dtBias[h]!;
      dt[e] = softplus(dtRaw[e]!);
      decay[e] = Math.exp(dt[e]! * w.A[h]!);
      for (let j = 0; j < P; j++) u[r * inner + h * P + j] = dt[e]! * act[r * C + h * P + j]!;
    }
  }
  return { dtRaw, dt, decay, u, B, Cm };
}

/**
 * The normed, gated heads [rows, inner] (what out_proj reads) from the projections `proj`
 * [rows, inner + convWidth + heads] of `seq` new tokens per sequence; `state` holds the
 * sequences' past (zeros: none) and is advanced past these tokens.
 */
export function mambaMix(k: Kernels, s: MambaShape, w: MambaWeights, eps: number, batch: number, seq: number, proj: Float32Array,
  state: MambaState): Float32Array {
  const { inner, C, width } = layout(s);
  const rows = batch * seq;
  // x, B and C: the convolution plus its bias, then SiLU (on the kernels).
  const conv = convolveXbc(k, s, w, batch, seq, proj, state.conv);
  k.activate(conv, Activation.Silu);
  const { u, B, Cm, decay } = scanInputs(s, w, rows, proj, conv);
  const y = new Float32Array(rows * inner);
  k.ssmScan(u, B, Cm, decay, batch, seq, s.heads, s.headDim, s.groups, s.dState, state.ssm, y);
  // y + D x, then the gate (silu(z) on the kernels) and the norm.
  const siluZ = new Float32Array(rows * inner);
  for (let r = 0; r < rows; r++) {
    siluZ.set(proj.subarray(r * width, r * width + inner), r * inner);
    for (let h = 0; h < s.heads; h++) {
      for (let j = 0; j < s.headDim; j++) y[r * inner + h * s.headDim + j]! += w.D[h]! * conv[r * C + h * s.headDim + j]!;
    }
  }
  k.activate(siluZ, Activation.Silu);
  gateRows(s, w.norm, eps, rows, y, siluZ);
  return y;
}

/**
 * d loss / d proj [rows, inner + convWidth + heads] from d loss / d the normed heads dOut
 * [rows, inner] (mambaMix from no past): back through the gate and the norm, the skip, the scan
 * through time (the kernel ssmScanBackward: each head's states recomputed), dt's softplus and
 * the decay, the SiLU and the convolution. With u = dt x and a = exp(dt A), the scan's
 * gradients in u and a give dx = du dt (+ D dy, the skip) and ddt = <du, x> + da a A.
 */
export function mambaBackward(k: Kernels, s: MambaShape, w: MambaWeights, eps: number, batch: number, seq: number, proj: Float32Array,
  dOut: Float32Array): Float32Array {
  const { inner, C, width, xBC, dt: dtAt } = layout(s);
  const { heads: H, headDim: P, groups: G, dState: N, convKernel: K } = s;
  const rows = batch * seq, gN = G * N, perGroup = H / G;
  const dProj = new Float32Array(rows * width);
  // The forward again: the convolution and its SiLU (exact here, where mambaMix runs the kernels'
  // close approximation), and the scan's inputs as mambaMix computes them.
  const pre = convolveXbc(k, s, w, batch, seq, proj, new Float32Array(batch * (K - 1) * C));
  const act = pre.map((v) => v * sigmoid(v));
  const { dtRaw, dt, decay, u, B, Cm } = scanInputs(s, w, rows, proj, act);
  // Scan outputs (before the skip), for the norm's backward.
  const y = new Float32Array(rows * inner);
  k.ssmScan(u, B, Cm, decay, batch, seq, H, P, G, N, new Float32Array(batch * H * N * P), y);
  // The gate and the norm (gateRowBackward). dY: d loss / d (y + D x).
  const dY = new Float32Array(rows * inner);
  const yx = new Float64Array(inner), z = new Float64Array(inner), dZ = new Float64Array(inner), dYRow = new Float64Array(inner);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < inner; c++) {
      yx[c] = y[r * inner + c]! + w.D[Math.floor(c / P)]! * act[r * C + c]!;
      z[c] = proj[r * width + c]!;
    }
    gateRowBackward(s, w.norm, eps, yx, z, dOut.subarray(r * inner, (r + 1) * inner), dYRow, dZ);
    dY.set(dYRow, r * inner);
    for (let c = 0; c < inner; c++) dProj[r * width + c] = dZ[c]!;
  }
  // The scan through time; dAct gathers d loss / d (x, B, C) after the SiLU.
  const du = new Float32Array(rows * inner), dBh = new Float32Array(rows * H * N), dCh = new Float32Array(rows * H * N);
  const dDecay = new Float32Array(rows * H);
  k.ssmScanBackward(u, B, Cm, decay, dY, batch, seq, H, P, G, N, du, dBh, dCh, dDecay);
  const dAct = new Float32Array(rows * C);
  const dDt = new Float64Array(rows * H);
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < H; h++) {
      const e = r * H + h;
      let dUx = 0;
      for (let j = 0; j < P; j++) {
        const c = h * P + j;
        // u = dt x; and the skip D x.
        dAct[r * C + c] = du[r * inner + c]! * dt[e]! + dY[r * inner + c]! * w.D[h]!;
        dUx += du[r * inner + c]! * act[r * C + c]!;
      }
      // a = exp(dt A): d a / d dt = a A.
      dDt[e] = dUx + dDecay[e]! * decay[e]! * w.A[h]!;
      // B and C are the group's: its heads' gradients add.
      const g = Math.floor(h / perGroup);
      for (let i = 0; i < N; i++) {
        dAct[r * C + inner + g * N + i]! += dBh[e * N + i]!;
        dAct[r * C + inner + gN + g * N + i]! += dCh[e * N + i]!;
      }
    }
  }
  for (let e = 0; e < rows * H; e++) dProj[Math.floor(e / H) * width + dtAt + (e % H)] = dDt[e]! * sigmoid(dtRaw[e]!);
  // Through the SiLU, then the convolution's taps, to xBC.
  k.activationBackward(pre, dAct, Activation.Silu);
  causalConvInputGrad(dAct, batch, seq, C, K, w.conv, dProj, width, xBC);
  return dProj;
}
