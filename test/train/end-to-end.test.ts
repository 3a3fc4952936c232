/**
 * End-to-end training's stand-in target (core.ts): for every architecture it trains, the
 * SAE's own backward with target x_hat - (B / 2) g must give exactly the gradient of
 * g . x_hat(theta) plus the SAE's sparsity terms. Checked two ways: the gradient is affine in
 * g (nothing else reads the stand-in), and its g-part matches finite differences of
 * g . x_hat in the decoder and biases. A quadratic stands in for the model's loss.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { type SaeConfigInput, defaultConfig } from "../../src/sae/config.js";
import { setDenseCodeDensity } from "../../src/sae/dense-code.js";
import { createSae } from "../../src/sae/registry.js";
import { type ParamSet, type Sae, type TrainStep, zerosLike } from "../../src/sae/sae.js";
import { checkEndToEnd, type Downstream, endToEndLossAndGrad } from "../../src/train/core.js";

const D = 6;
const M = 14;
const B = 5;

function randomSae(input: Partial<SaeConfigInput> & { architecture: SaeConfigInput["architecture"] }): Sae {
  const sae = createSae(defaultConfig({ d_in: D, d_sae: M, ...input }));
  const rng = new Rng(3);
  for (const [name, t] of sae.params) {
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * (name.startsWith("b_") ? 0.1 : 0.5);
  }
  if (sae.params.has("log_threshold")) sae.params.get("log_threshold")!.data.fill(Math.log(0.15));
  return sae;
}

/** A model loss L(x_hat) = c . x_hat + 0.5 scale ||x_hat||^2, its gradient c + scale x_hat. */
function quadratic(c: Float32Array, scale: number): Downstream {
  return {
    settings: { loss_fn: "quadratic" },
    lossAndGrad(_x, xHat) {
      let loss = 0;
      const grad = new Float32Array(xHat.length);
      for (let i = 0; i < xHat.length; i++) {
        loss += c[i]! * xHat[i]! + 0.5 * scale * xHat[i]! ** 2;
        grad[i] = c[i]! + scale * xHat[i]!;
      }
      return { loss, terms: { ce_loss: loss }, grad };
    },
  };
}

function gradsFor(sae: Sae, s: TrainStep, downstream: Downstream): ParamSet {
  const grads = zerosLike(sae.params);
  endToEndLossAndGrad(sae, s, downstream, grads);
  return grads;
}

const cases: Array<[string, Partial<SaeConfigInput> & { architecture: SaeConfigInput["architecture"] }]> = [
  ["relu", { architecture: "relu", l1_coefficient: 0.3 }],
  ["panneal", { architecture: "panneal", l1_coefficient: 0.3, p_start: 0.7, anneal_end: 100 }],
  ["topk + AuxK", { architecture: "topk", k: 3, aux_k: 3, aux_alpha: 0.5 }],
  ["batchtopk + AuxK", { architecture: "batchtopk", k: 3, aux_k: 3, aux_alpha: 0.5 }],
  ["abstopk", { architecture: "abstopk", k: 3 }],
  ["jumprelu", { architecture: "jumprelu", l0_coefficient: 0.2, bandwidth: 0.5 }],
  ["vsae (noise, KL on all latents) + AuxK", { architecture: "vsae", k: 3, kl_scope: "all", beta: 0.5, aux_k: 3, aux_alpha: 0.5 }],
];

describe("end-to-end training's stand-in target", () => {
  it.each(cases)("%s: passes the model's gradient to the weights, exactly", (_name, input) => {
    const sae = randomSae(input);
    const rng = new Rng(9);
    const x = rng.fillNormal(new Float32Array(B * D));
    const dead = Uint8Array.from({ length: M }, (_, j) => (j % 2 === 0 ? 1 : 0));
    const s: TrainStep = { x, batch: B, step: 5, seed: 1, dead };
    const c = rng.fillNormal(new Float32Array(B * D));
    const zero = gradsFor(sae, s, quadratic(new Float32Array(B * D), 0));
    const once = gradsFor(sae, s, quadratic(c, 0));
    const twice = gradsFor(sae, s, quadratic(c.map((v) => 2 * v), 0));
    // Affine in g: what the stand-in carries enters nothing but the error term.
    for (const [name, g0] of zero) {
      const g1 = once.get(name)!.data;
      const g2 = twice.get(name)!.data;
      for (let i = 0; i < g0.data.length; i++) {
        expect(Math.abs(g2[i]! - g0.data[i]! - 2 * (g1[i]! - g0.data[i]!)), `${name}[${i}]`).toBeLessThan(1e-4 * (1 + Math.abs(g1[i]!)));
      }
    }
    // Its g-part is the gradient of c . x_hat(theta): finite differences where x_hat is smooth.
    const cDotXHat = () => {
      const xHat = sae.lossAndGrad(s, zerosLike(sae.params)).xHat;
      let v = 0;
      for (let i = 0; i < B * D; i++) v += c[i]! * xHat[i]!;
      return v;
    };
    for (const name of ["W_dec", "b_dec", "b_enc"]) {
      const t = sae.params.get(name)!.data;
      for (const i of [0, 3, Math.floor(t.length / 2), t.length - 1]) {
        const keep = t[i]!;
        const h = 1e-2;
        t[i] = keep + h;
        const plus = cDotXHat();
        t[i] = keep - h;
        const minus = cDotXHat();
        t[i] = keep;
        const numeric = (plus - minus) / (2 * h);
        const analytic = once.get(name)!.data[i]! - zero.get(name)!.data[i]!;
        expect(Math.abs(numeric - analytic), `${name}[${i}]: numeric ${numeric}, analytic ${analytic}`).toBeLessThan(2e-3 * (1 + Math.abs(numeric)));
      }
    }
  });

  it("reports the model's loss in the error's place and the true reconstruction error", () => {
    const sae = randomSae({ architecture: "topk", k: 3, aux_k: 3, aux_alpha: 0.5 });
    const x = new Rng(2).fillNormal(new Float32Array(B * D));
    const s: TrainStep = { x, batch: B, step: 0, seed: 1, dead: new Uint8Array(M).fill(1) };
    const plain = sae.lossAndGrad(s, zerosLike(sae.params));
    const sse = plain.sumSquaredError;
    const aux = plain.terms.aux!;
    const stats = endToEndLossAndGrad(sae, s, quadratic(new Float32Array(B * D).fill(0.1), 1), zerosLike(sae.params));
    expect(Object.keys(stats.terms)).toEqual(["ce_loss", "mse", "aux"]);
    expect(stats.sumSquaredError).toBeCloseTo(sse, 4);
    expect(stats.terms.mse).toBeCloseTo(sse / B, 5);
    // AuxK fits the true residual x - x_hat, not the stand-in's.
    expect(stats.terms.aux).toBeCloseTo(aux, 6);
    expect(stats.loss).toBeCloseTo(stats.terms.ce_loss! + aux, 5);
  });

  /**
   * One end-to-end step on the code kernels chosen by `density` (dense-code.ts), checking
   * that the model's loss ran once, at the step's own x_hat; `between` runs before the
   * density is restored.
   */
  function stepOnce(sae: Sae, density: number, between: (s: TrainStep) => void = () => {}): void {
    const x = new Rng(4).fillNormal(new Float32Array(B * D));
    const s: TrainStep = { x, batch: B, step: 2, seed: 1, dead: new Uint8Array(M).fill(1) };
    const seen: Float32Array[] = [];
    const downstream = quadratic(new Rng(5).fillNormal(new Float32Array(B * D)), 0.5);
    const counting: Downstream = { settings: {}, lossAndGrad: (x, xHat, b) => (seen.push(xHat.slice()), downstream.lossAndGrad(x, xHat, b)) };
    const previous = setDenseCodeDensity(density);
    try {
      const stats = endToEndLossAndGrad(sae, s, counting, zerosLike(sae.params));
      expect(seen).toHaveLength(1);
      expect([...seen[0]!]).toEqual([...stats.xHat.subarray(0, B * D)]);
      between(s);
    } finally {
      setDenseCodeDensity(previous);
    }
  }

  it.each(cases)("%s: one pass, the model's loss taken once at the step's own reconstruction", (_name, input) => {
    const sae = randomSae(input);
    let encodes = 0;
    // Count the step's matrix products (the encoder's among them), on the sparse code
    // kernels: on a code this dense the GEMM twins (dense-code.ts) would decode once more
    // for the stand-in, as the sparse kernels do, and that decode would count as well.
    const k = (sae as unknown as { k: Record<string, unknown> & { sgemm: (...a: unknown[]) => void } }).k;
    Object.defineProperty(sae, "k", { value: { ...k, sgemm: (...a: unknown[]) => { encodes++; k.sgemm(...a); } } });
    stepOnce(sae, Infinity, (s) => {
      // The plain step's GEMMs, no more: the encoder ran once.
      const plainCount = encodes;
      expect(plainCount).toBeGreaterThan(0);
      encodes = 0;
      sae.lossAndGrad(s, zerosLike(sae.params));
      expect(plainCount).toBe(encodes);
    });
  });

  it.each(cases)("%s: on the dense GEMM twins too, the model's loss is taken at the step's own reconstruction", (_name, input) => {
    stepOnce(randomSae(input), 0);
  });

  it("refuses a step that never made the stand-in (an architecture end-to-end training does not take)", () => {
    const sae = randomSae({ architecture: "vaease" });
    const s: TrainStep = { x: new Rng(6).fillNormal(new Float32Array(B * D)), batch: B, step: 0, seed: 1, dead: null };
    expect(() => endToEndLossAndGrad(sae, s, quadratic(new Float32Array(B * D), 1), zerosLike(sae.params)))
      .toThrow(/vaease SAE's step did not make the end-to-end stand-in target/);
  });

  it("refuses the architectures whose loss reads the target beyond the error", () => {
    for (const architecture of ["vaease", "matryoshka", "gated", "gated_anneal", "mp"] as const) {
      const cfg = defaultConfig({ d_in: D, d_sae: M, architecture, ...(architecture === "matryoshka" ? { k: 2 } : {}) });
      expect(() => checkEndToEnd(cfg), architecture).toThrow(/end-to-end training .* trains relu, panneal, topk/);
    }
    expect(() => checkEndToEnd(defaultConfig({ d_in: D, d_sae: M, architecture: "topk", k: 2, multi_topk: true }))).toThrow(/Multi-TopK/);
  });
});
