/**
 * Mamba-2 (src/lm/mamba2.ts) against a float64 forward written from
 * modeling_granitemoehybrid.py's layer as its recurrent form runs it (and, for the gate and
 * norm Falcon-H1 may have instead, modeling_falcon_h1.py's FalconH1RMSNormGated): the mixer's
 * normed heads, its state carried across calls, and its backward against central differences
 * of that forward.
 */
import { describe, expect, it } from "vitest";
import { kernels } from "../../src/core/kernels.js";
import { Rng } from "../../src/core/rng.js";
import { innerWidth, type MambaGate, type MambaShape, type MambaWeights, mambaBackward, mambaConvWidth, mambaMix, newMambaState } from "../../src/lm/mamba2.js";
import { worstCentralDifference } from "../helpers.js";

const shape: MambaShape = { heads: 4, headDim: 3, groups: 2, dState: 5, convKernel: 3, gate: "gate-then-norm", normGroups: 1 };
const inner = innerWidth(shape), C = mambaConvWidth(shape), width = inner + C + shape.heads, eps = 1e-6;
const batch = 2, seq = 6, rows = batch * seq;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

function setup(seed: number) {
  const rng = new Rng(seed);
  const rnd = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * rng.normal());
  const w = {
    conv: rnd(C * shape.convKernel, 0.5), convBias: rnd(C, 0.2), dtBias: rnd(shape.heads, 0.3), A: rnd(shape.heads, 0.3).map((v) => -Math.exp(v)),
    D: rnd(shape.heads, 0.5), norm: rnd(inner, 0.1).map((v) => 1 + v),
  } as MambaWeights;
  return { w, proj: rnd(rows * width), rnd };
}

/** The normed heads [rows, inner] in float64, token by token from an empty state. */
function reference(w: MambaWeights, proj: ArrayLike<number>, shape: MambaShape): Float64Array {
  const { heads: H, headDim: P, groups: G, dState: N, convKernel: K } = shape;
  const out = new Float64Array(rows * inner);
  for (let b = 0; b < batch; b++) {
    const S = Array.from({ length: H }, () => new Float64Array(N * P));
    for (let t = 0; t < seq; t++) {
      const r = b * seq + t;
      const act = Float64Array.from({ length: C }, (_, c) => {
        let v = w.convBias[c]!;
        for (let j = 0; j < K; j++) if (t - (K - 1) + j >= 0) v += w.conv[c * K + j]! * proj[(r - (K - 1) + j) * width + inner + c]!;
        return v * sigmoid(v);
      });
      const y = new Float64Array(inner);
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / G));
        const B = act.subarray(inner + g * N, inner + (g + 1) * N), Cv = act.subarray(inner + G * N + g * N, inner + G * N + (g + 1) * N);
        const dt = softplus(proj[r * width + inner + C + h]! + w.dtBias[h]!), a = Math.exp(dt * w.A[h]!);
        for (let i = 0; i < N; i++) for (let j = 0; j < P; j++) S[h]![i * P + j] = a * S[h]![i * P + j]! + B[i]! * dt * act[h * P + j]!;
        for (let j = 0; j < P; j++) {
          let o = 0;
          for (let i = 0; i < N; i++) o += S[h]![i * P + j]! * Cv[i]!;
          y[h * P + j] = o + w.D[h]! * act[h * P + j]!;
        }
      }
      const silu = (c: number) => proj[r * width + c]! * sigmoid(proj[r * width + c]!);
      // FalconH1RMSNormGated: without norm_before_gate y silu(z) is normed, with it y, then times silu(z); each group on its own.
      const before = shape.gate === "norm-then-gate";
      const v = y.map((yc, c) => (before ? yc : yc * silu(c)));
      const n = inner / shape.normGroups;
      for (let c = 0; c < inner; c++) {
        if (shape.gate === "gate") {
          out[r * inner + c] = v[c]!;
          continue;
        }
        const group = v.subarray(Math.floor(c / n) * n, (Math.floor(c / n) + 1) * n);
        const inv = 1 / Math.sqrt(group.reduce((s, e) => s + e * e, 0) / n + eps);
        out[r * inner + c] = v[c]! * inv * w.norm[c]! * (before ? silu(c) : 1);
      }
    }
  }
  return out;
}

describe("Mamba-2", () => {
  it("gives the float64 recurrence's normed heads, and the same from its state when fed in two parts", () => {
    const { w, proj } = setup(1);
    const want = reference(w, proj, shape);
    const got = mambaMix(kernels(), shape, w, eps, batch, seq, proj, newMambaState(shape, batch));
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThan(1e-5);
    const state = newMambaState(shape, 1);
    const part = (t0: number, n: number) => mambaMix(kernels(), shape, w, eps, 1, n, proj.subarray(t0 * width, (t0 + n) * width), state);
    const joined = new Float32Array(seq * inner);
    joined.set(part(0, 4));
    joined.set(part(4, 2), 4 * inner);
    for (let i = 0; i < seq * inner; i++) expect(joined[i]).toBeCloseTo(got[i]!, 5);
  });

  // Granite 4.0-H's gated norm, and Falcon-H1's: no norm, or one per group before or after the gate.
  const gates: Array<[MambaGate, number]> = [["gate-then-norm", 1], ["gate", 1], ["norm-then-gate", 2], ["gate-then-norm", 2]];
  it.each(gates)("with the gate %s and %i norm group(s): the float64 forward's heads, and its backward the central difference in every projection", (gate, normGroups) => {
    const s = { ...shape, gate, normGroups };
    const { w, proj, rnd } = setup(2);
    const want = reference(w, proj, s);
    const got = mambaMix(kernels(), s, w, eps, batch, seq, proj, newMambaState(s, batch));
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThan(1e-5);
    const R = rnd(rows * inner);
    const x = Float64Array.from(proj);
    const loss = () => reference(w, x, s).reduce((sum, v, i) => sum + v * R[i]!, 0);
    const grad = mambaBackward(kernels(), s, w, eps, batch, seq, proj, R);
    // The scan and its backward run on the kernels in float32: a few parts in a million.
    expect(worstCentralDifference(x, loss, grad)).toBeLessThan(1e-5);
  });

  it("the gate and norm settings change the heads (the cases above differ)", () => {
    const { w, proj } = setup(3);
    const outs = gates.map(([gate, normGroups]) => reference(w, proj, { ...shape, gate, normGroups }));
    for (let i = 1; i < outs.length; i++) expect(Math.max(...outs[i]!.map((v, j) => Math.abs(v - outs[0]![j]!)))).toBeGreaterThan(1e-2);
  });
});
