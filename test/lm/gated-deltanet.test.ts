/**
 * Qwen3.5's Gated DeltaNet (src/lm/gated-deltanet.ts) against a float64 forward written from
 * modeling_qwen3_5.py's recurrent form: the mixer's heads, its state carried across calls, and
 * its backward against central differences of that forward.
 */
import { describe, expect, it } from "vitest";
import { kernels } from "../../src/core/kernels.js";
import { Rng } from "../../src/core/rng.js";
import { convWidth, type DeltaNetShape, type DeltaNetWeights, deltaNetBackward, deltaNetHeads, newDeltaNetState } from "../../src/lm/gated-deltanet.js";
import { worstCentralDifference } from "../helpers.js";

const shape: DeltaNetShape = { kHeads: 2, vHeads: 4, dk: 5, dv: 3, convKernel: 3 };
const C = convWidth(shape), V = shape.vHeads * shape.dv, eps = 1e-6;
const batch = 2, seq = 6, rows = batch * seq;

const silu = (x: number) => x / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

function setup(seed: number) {
  const rng = new Rng(seed);
  const rnd = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * rng.normal());
  // Only the mixer's own parameters matter here (the projections are the caller's).
  const w = {
    conv: rnd(C * shape.convKernel, 0.5), dtBias: rnd(shape.vHeads, 0.3), negA: rnd(shape.vHeads, 0.3).map((v) => -Math.exp(v)),
    norm: rnd(shape.dv, 0.1).map((v) => 1 + v),
  } as DeltaNetWeights;
  return { w, mixed: rnd(rows * C), z: rnd(rows * V), b: rnd(rows * shape.vHeads), a: rnd(rows * shape.vHeads), rnd };
}

/** The heads [rows, V] in float64, token by token from an empty state. */
function reference(w: DeltaNetWeights, mixed: ArrayLike<number>, z: ArrayLike<number>, b: ArrayLike<number>, a: ArrayLike<number>): Float64Array {
  const { kHeads, vHeads, dk, dv, convKernel: K } = shape;
  const keyDim = kHeads * dk, out = new Float64Array(rows * V);
  for (let bi = 0; bi < batch; bi++) {
    const S = Array.from({ length: vHeads }, () => new Float64Array(dk * dv));
    for (let t = 0; t < seq; t++) {
      const r = bi * seq + t;
      const x = Float64Array.from({ length: C }, (_, c) => {
        let acc = 0;
        for (let j = 0; j < K; j++) if (t - (K - 1) + j >= 0) acc += w.conv[c * K + j]! * mixed[(r - (K - 1) + j) * C + c]!;
        return silu(acc);
      });
      const unit = (at: number, scale: number) => {
        const n = Math.sqrt(x.subarray(at, at + dk).reduce((s, v) => s + v * v, 0) + 1e-6);
        return x.subarray(at, at + dk).map((v) => (scale * v) / n);
      };
      for (let h = 0; h < vHeads; h++) {
        const g = Math.floor(h / (vHeads / kHeads));
        const q = unit(g * dk, 1 / Math.sqrt(dk)), k = unit(keyDim + g * dk, 1), v = x.subarray(2 * keyDim + h * dv, 2 * keyDim + (h + 1) * dv);
        const beta = 1 / (1 + Math.exp(-b[r * vHeads + h]!)), decay = Math.exp(w.negA[h]! * softplus(a[r * vHeads + h]! + w.dtBias[h]!));
        const Sh = S[h]!;
        for (let i = 0; i < dk * dv; i++) Sh[i]! *= decay;
        const recalled = Array.from({ length: dv }, (_, j) => k.reduce((s, ki, i) => s + Sh[i * dv + j]! * ki, 0));
        for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) Sh[i * dv + j]! += k[i]! * beta * (v[j]! - recalled[j]!);
        const o = Array.from({ length: dv }, (_, j) => q.reduce((s, qi, i) => s + Sh[i * dv + j]! * qi, 0));
        const inv = 1 / Math.sqrt(o.reduce((s, u) => s + u * u, 0) / dv + eps);
        for (let j = 0; j < dv; j++) out[r * V + h * dv + j] = o[j]! * inv * w.norm[j]! * silu(z[r * V + h * dv + j]!);
      }
    }
  }
  return out;
}

describe("the Gated DeltaNet", () => {
  it("gives the float64 recurrence's heads, and the same from its state when fed in two parts", () => {
    const { w, mixed, z, b, a } = setup(1);
    const want = reference(w, mixed, z, b, a);
    const got = deltaNetHeads(kernels(), shape, w, eps, batch, seq, mixed, z, b, a, newDeltaNetState(shape, batch));
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThan(1e-5);
    // One sequence, 4 tokens then 2, through its state: the same heads.
    const state = newDeltaNetState(shape, 1);
    const part = (t0: number, n: number) => deltaNetHeads(kernels(), shape, w, eps, 1, n, mixed.subarray(t0 * C, (t0 + n) * C),
      z.subarray(t0 * V, (t0 + n) * V), b.subarray(t0 * shape.vHeads), a.subarray(t0 * shape.vHeads), state);
    const joined = new Float32Array(seq * V);
    joined.set(part(0, 4));
    joined.set(part(4, 2), 4 * V);
    for (let i = 0; i < seq * V; i++) expect(joined[i]).toBeCloseTo(got[i]!, 6);
  });

  it("its backward is the central difference of the float64 forward in every input", () => {
    const { w, mixed, z, b, a, rnd } = setup(2);
    const R = rnd(rows * V);
    const inputs = { mixed: Float64Array.from(mixed), z: Float64Array.from(z), b: Float64Array.from(b), a: Float64Array.from(a) };
    const loss = () => reference(w, inputs.mixed, inputs.z, inputs.b, inputs.a).reduce((s, v, i) => s + v * R[i]!, 0);
    const grads = deltaNetBackward(kernels(), shape, w, eps, batch, seq, mixed, z, b, a, R);
    for (const key of ["mixed", "z", "b", "a"] as const) {
      expect(worstCentralDifference(inputs[key], loss, grads[key], 3), key).toBeLessThan(1e-6);
    }
  });
});
