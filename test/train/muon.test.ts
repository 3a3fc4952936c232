/**
 * sparsify's Muon: the Newton-Schulz orthogonalization against the scalar polynomial it
 * applies to each singular value, the whole update against a float64 transcription of
 * sparsify's Muon step (Adam on the biases), and what it learns in the trainer.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { Tensor } from "../../src/core/tensor.js";
import { defaultConfig } from "../../src/sae/config.js";
import { type ParamSet, cloneParams } from "../../src/sae/sae.js";
import { SuperpositionSource, scoreFeatureRecovery } from "../../src/synthetic/superposition.js";
import { Adam } from "../../src/train/adam.js";
import { MUON_MOMENTUM, Muon, newtonSchulz } from "../../src/train/muon.js";
import { createOptimizer } from "../../src/train/optimizer.js";
import { trainSae } from "../../src/train/trainer.js";

/** n orthonormal columns of length len (Gram-Schmidt on random vectors), column-major. */
function orthonormal(rng: Rng, len: number, n: number): Float64Array[] {
  const cols: Float64Array[] = [];
  while (cols.length < n) {
    const v = Float64Array.from({ length: len }, () => rng.normal());
    for (const c of cols) {
      let dot = 0;
      for (let i = 0; i < len; i++) dot += v[i]! * c[i]!;
      for (let i = 0; i < len; i++) v[i]! -= dot * c[i]!;
    }
    const norm = Math.hypot(...v);
    cols.push(v.map((x) => x / norm));
  }
  return cols;
}

/** sum_i s_i u_i v_i^T as a row-major [rows, cols] matrix. */
function fromSvd(u: Float64Array[], s: number[], v: Float64Array[], rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  s.forEach((si, i) => {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c]! += si * u[i]![r]! * v[i]![c]!;
  });
  return out;
}

/** The quintic a x + b x^3 + c x^5, five times: what Newton-Schulz does to each singular value. */
function quintic5(x: number): number {
  for (let i = 0; i < 5; i++) x = 3.4445 * x - 4.775 * x ** 3 + 2.0315 * x ** 5;
  return x;
}

describe("Newton-Schulz orthogonalization", () => {
  for (const [rows, cols] of [[5, 9], [9, 5], [6, 6], [40, 6]] as const) {
    it(`maps each singular value s of a ${rows} x ${cols} matrix to the quintic iterated on s / ||G||_F, keeping the singular vectors`, () => {
      const rng = new Rng(rows * 10 + cols);
      const n = Math.min(rows, cols);
      const s = [3, 1.2, 0.5, 0.2, 0.05, 0.01].slice(0, n);
      const u = orthonormal(rng, rows, n);
      const v = orthonormal(rng, cols, n);
      const G = Float32Array.from(fromSvd(u, s, v, rows, cols));
      const frobenius = Math.hypot(...s);
      const want = fromSvd(u, s.map((si) => quintic5(si / frobenius)), v, rows, cols);
      const got = newtonSchulz(G, rows, cols);
      let err = 0;
      let norm = 0;
      for (let i = 0; i < want.length; i++) {
        err += (got[i]! - want[i]!) ** 2;
        norm += want[i]! ** 2;
      }
      expect(Math.sqrt(err / norm)).toBeLessThan(1e-5);
      // Singular values spread over three orders of magnitude come out within 0.6..1.2.
      for (const si of s) expect(quintic5(si / frobenius)).toBeGreaterThan(0.6);
    });
  }
});

/** sparsify's Muon.step on one matrix, in float64: decay, momentum, Nesterov, NS5 (float64 twin), scaled step. */
class ReferenceMuon {
  buf: Float64Array;
  constructor(readonly rows: number, readonly cols: number, readonly weightDecay: number) {
    this.buf = new Float64Array(rows * cols);
  }
  step(p: Float64Array, g: Float32Array, lr: number): void {
    for (let i = 0; i < p.length; i++) p[i]! *= 1 - lr * this.weightDecay;
    const beta = MUON_MOMENTUM;
    const u = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      this.buf[i] = this.buf[i]! + (1 - beta) * (g[i]! - this.buf[i]!); // lerp_(g, 1 - beta)
      u[i] = g[i]! + beta * (this.buf[i]! - g[i]!); // g.lerp_(buf, beta)
    }
    const x = ns64(u, this.rows, this.cols);
    const scale = 0.2 * Math.sqrt(Math.max(this.rows, this.cols));
    for (let i = 0; i < p.length; i++) p[i]! -= lr * scale * x[i]!;
  }
}

/** The iteration as sparsify writes it, transposing a tall matrix, in float64. */
function ns64(g: Float64Array, rows: number, cols: number): Float64Array {
  const tall = rows > cols;
  const [r, c] = tall ? [cols, rows] : [rows, cols];
  let X = new Float64Array(r * c);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) X[tall ? j * c + i : i * c + j] = g[i * cols + j]!;
  const norm = Math.hypot(...X) + 1e-7;
  X = X.map((v) => v / norm);
  const mul = (A: Float64Array, B: Float64Array, n: number, k: number, m: number, bt = false) => {
    const out = new Float64Array(n * m);
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
      let sum = 0;
      for (let t = 0; t < k; t++) sum += A[i * k + t]! * (bt ? B[j * k + t]! : B[t * m + j]!);
      out[i * m + j] = sum;
    }
    return out;
  };
  for (let s = 0; s < 5; s++) {
    const A = mul(X, X, r, c, r, true);
    const AA = mul(A, A, r, r, r);
    const B = A.map((v, i) => -4.775 * v + 2.0315 * AA[i]!);
    const BX = mul(B, X, r, r, c);
    X = X.map((v, i) => 3.4445 * v + BX[i]!);
  }
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = X[tall ? j * c + i : i * c + j]!;
  return out;
}

describe("Muon", () => {
  it("steps the matrices as sparsify's Muon does and the other parameters with Adam, over several steps", () => {
    const rng = new Rng(5);
    // Tall (the iteration on G^T G) and square.
    const shapes: Record<string, number[]> = { W_enc: [12, 5], W_dec: [12, 5], W_skip: [5, 5], b_enc: [12], b_dec: [5] };
    const params: ParamSet = new Map(Object.entries(shapes).map(([n, s]) => [n, new Tensor(s, rng.fillNormal(new Float32Array(s.reduce((a, b) => a * b)), 0.5))]));
    const adamParams: ParamSet = new Map([...params].filter(([n]) => n.startsWith("b_")).map(([n, t]) => [n, t.clone()]));
    const reference = new Map(["W_enc", "W_dec", "W_skip"].map((n) => [n, { p: Float64Array.from(params.get(n)!.data), muon: new ReferenceMuon(shapes[n]![0]!, 5, 0.1) }]));
    const muon = createOptimizer("muon", params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
    const adam = new Adam(adamParams);
    for (let step = 0; step < 4; step++) {
      const lr = 0.01 * (1 - step / 4);
      const grads: ParamSet = new Map([...params].map(([n, t]) => [n, new Tensor(t.shape, rng.fillNormal(new Float32Array(t.numel)))]));
      muon.step(params, grads, lr, step);
      adam.step(adamParams, grads, lr, step);
      for (const [n, r] of reference) r.muon.step(r.p, grads.get(n)!.data, lr);
    }
    for (const [n, r] of reference) {
      const got = params.get(n)!.data;
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - r.p[i]!), n).toBeLessThan(1e-5);
    }
    for (const [n, t] of adamParams) expect(params.get(n)!.data).toEqual(t.data);
  });

  it("keeps its momentum and Adam's moments in its state, and a restored copy goes on identically", () => {
    const rng = new Rng(8);
    const make = () => new Map([["W", new Tensor([6, 4], new Rng(1).fillNormal(new Float32Array(24)))], ["b", new Tensor([6], new Float32Array(6).fill(0.1))]]) as ParamSet;
    const [a, b] = [make(), make()];
    const grads = () => new Map([["W", new Tensor([6, 4], rng.fillNormal(new Float32Array(24)))], ["b", new Tensor([6], rng.fillNormal(new Float32Array(6)))]]) as ParamSet;
    const first = new Muon(a);
    const g0 = grads();
    first.step(a, g0, 1e-2, 0);
    new Muon(b).step(b, g0, 1e-2, 0);
    const state = first.state();
    expect(Object.keys(state.tensors).sort()).toEqual(["adam_m", "adam_v", "muon_m"]);
    // What a checkpoint would hold: copies.
    const saved = { tensors: Object.fromEntries(Object.entries(state.tensors).map(([n, set]) => [n, cloneParams(set)])), scalars: {} };
    const restored = new Muon(b, 0.1, undefined, saved);
    const g1 = grads();
    first.step(a, g1, 1e-2, 1);
    restored.step(b, g1, 1e-2, 1);
    expect(b.get("W")!.data).toEqual(a.get("W")!.data);
    expect(b.get("b")!.data).toEqual(a.get("b")!.data);
    expect(() => new Muon(b, 0.1, undefined, { tensors: {}, scalars: {} })).toThrow(/no Muon momentum/);
  });

  it("trains a TopK SAE on superposed features, decaying its rate to 0 from the start", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 128, k: 4 });
    const source = new SuperpositionSource({ d: 32, nFeatures: 64, seed: 3 });
    const r = trainSae(cfg, source, { steps: 300, batchSize: 256, optimizer: "muon", lr: 2e-2, seed: 1, logEvery: 50, progress: false });
    expect(r.last!.lr).toBeCloseTo(2e-2 / 300, 10); // the last step's rate, on the way to 0
    expect(r.last!.fvu).toBeLessThan(0.2);
    expect(scoreFeatureRecovery(source.features, r.sae.params.get("W_dec")!.data, 32).mmcs).toBeGreaterThan(0.8);
  });
});
