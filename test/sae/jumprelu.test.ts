/**
 * What the JumpReLU training options do, beyond their gradients (gradients.test.ts): the
 * pre-activation loss brings latents the trainer counts dead back to life, and the tanh
 * sparsity loss prices a firing latent by its size.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { JumpReluSae } from "../../src/sae/jumprelu.js";
import { createSae } from "../../src/sae/registry.js";
import { zerosLike } from "../../src/sae/sae.js";
import { markFired } from "../../src/sae/sparse-code.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { Adam } from "../../src/train/adam.js";
import { type MetricsRecord, trainSae } from "../../src/train/trainer.js";

const D = 16;
const M = 32;
const DEAD = 8;

/** Trains with latents 0..DEAD-1 started far below their thresholds; returns how many fire after. */
function revived(preAct: number): number {
  const sae = createSae(defaultConfig({ architecture: "jumprelu", d_in: D, d_sae: M, l0_coefficient: 0.01, pre_act_loss_coefficient: preAct })) as JumpReluSae;
  const rng = new Rng(4);
  const W_dec = sae.params.get("W_dec")!.data;
  rng.fillNormal(W_dec, 0.25);
  const W_enc = sae.params.get("W_enc")!.data;
  W_enc.set(W_dec);
  sae.params.get("b_enc")!.data.fill(-5, 0, DEAD);
  const dead = Uint8Array.from({ length: M }, (_, j) => (j < DEAD ? 1 : 0));
  const source = new SuperpositionSource({ d: D, nFeatures: 48, seed: 2 });
  const adam = new Adam(sae.params);
  const grads = zerosLike(sae.params);
  const x = new Float32Array(256 * D);
  for (let step = 0; step < 300; step++) {
    source.next(x, 256);
    sae.lossAndGrad({ x, batch: 256, step, seed: 0, dead }, grads);
    adam.step(sae.params, grads, 1e-2, step);
  }
  source.next(x, 256);
  const fired = markFired(sae.encode(x, 256), new Uint8Array(M));
  return fired.subarray(0, DEAD).reduce((a, v) => a + v, 0);
}

describe("jumprelu training options", () => {
  it("its L0 penalty is the metrics' l0_loss, and l0 stays the L0 itself", () => {
    const cfg = defaultConfig({ architecture: "jumprelu", d_in: D, d_sae: M, l0_coefficient: 3 });
    const logs: MetricsRecord[] = [];
    trainSae(cfg, new SuperpositionSource({ d: D, nFeatures: 48, seed: 2 }), { steps: 20, batchSize: 64, lr: 1e-3, logEvery: 5, progress: false, onLog: (m) => logs.push(m) });
    for (const m of logs) {
      expect(m.l0).toBeLessThanOrEqual(M);
      expect(m.l0_loss).toBeCloseTo(3 * m.l0, 6); // the step penalty: l0_coefficient x L0
    }
  });

  it("the pre-activation loss revives dead latents; without it they stay dead", () => {
    expect(revived(0)).toBe(0);
    expect(revived(0.05)).toBeGreaterThanOrEqual(DEAD / 2);
  });

  it("the pre-activation loss's gradients equal its formula, over more tokens than one block of gathered columns", () => {
    // 2048 dead latents x 2100 tokens exceed the 2^22 pre-activations gathered at once.
    const d = 4, m = 2048, B = 2100, coef = 0.3;
    const rng = new Rng(6);
    const x = rng.fillNormal(new Float32Array(B * d));
    const dead = new Uint8Array(m).fill(1);
    dead[5] = 0; // a living latent gets nothing
    const gradsAt = (preAct: number) => {
      const sae = createSae(defaultConfig({ architecture: "jumprelu", d_in: d, d_sae: m, pre_act_loss_coefficient: preAct })) as JumpReluSae;
      for (const t of sae.params.values()) new Rng(7).fillNormal(t.data, 0.5);
      const grads = zerosLike(sae.params);
      const stats = sae.lossAndGrad({ x, batch: B, step: 0, seed: 0, dead }, grads);
      return { sae, grads, preAct: stats.terms.pre_act ?? 0 };
    };
    const off = gradsAt(0), on = gradsAt(coef);
    const P = (name: string) => on.sae.params.get(name)!.data;
    const [W_enc, b_enc, W_dec, b_dec, logTheta] = ["W_enc", "b_enc", "W_dec", "b_dec", "log_threshold"].map(P);
    // float64: per dead latent j, a/B sum_b relu(theta_j - z_bj) n_j and its gradients.
    const want = { loss: 0, W_enc: new Float64Array(m * d), b_enc: new Float64Array(m), logTheta: new Float64Array(m), W_dec: new Float64Array(m * d) };
    for (let j = 0; j < m; j++) {
      if (!dead[j]) continue;
      let norm = 0;
      for (let i = 0; i < d; i++) norm += W_dec![j * d + i]! ** 2;
      norm = Math.sqrt(norm);
      const theta = Math.exp(logTheta![j]!);
      let gap = 0;
      for (let b = 0; b < B; b++) {
        let z = b_enc![j]!;
        for (let i = 0; i < d; i++) z += W_enc![j * d + i]! * (x[b * d + i]! - b_dec![i]!);
        if (z >= theta) continue;
        gap += theta - z;
        want.b_enc[j]! -= (coef * norm) / B;
        want.logTheta[j]! += (coef * norm * theta) / B;
        for (let i = 0; i < d; i++) want.W_enc[j * d + i]! -= ((coef * norm) / B) * (x[b * d + i]! - b_dec![i]!);
      }
      want.loss += (coef * norm * gap) / B;
      for (let i = 0; i < d; i++) want.W_dec[j * d + i]! += ((coef * gap) / B) * (W_dec![j * d + i]! / norm);
    }
    expect(want.loss).toBeGreaterThan(0);
    expect(Math.abs(on.preAct - want.loss)).toBeLessThan(1e-4 * want.loss);
    for (const [name, expected] of [["W_enc", want.W_enc], ["b_enc", want.b_enc], ["log_threshold", want.logTheta], ["W_dec", want.W_dec]] as const) {
      const a = on.grads.get(name)!.data, b = off.grads.get(name)!.data;
      let worst = 0, scale = 0;
      for (let i = 0; i < expected.length; i++) {
        worst = Math.max(worst, Math.abs(a[i]! - b[i]! - expected[i]!));
        scale = Math.max(scale, Math.abs(expected[i]!));
      }
      expect(scale, name).toBeGreaterThan(0);
      expect(worst, name).toBeLessThan(1e-4 * scale);
    }
    expect(on.grads.get("b_enc")!.data[5]).toBe(off.grads.get("b_enc")!.data[5]);
  });

  it("the tanh sparsity loss charges tanh(c f ||W_dec_j||) per firing latent, the step loss 1", () => {
    const base = { architecture: "jumprelu" as const, d_in: D, d_sae: M, l0_coefficient: 0.5, init_threshold: 0.05 };
    const step = createSae(defaultConfig(base));
    const tanh = createSae(defaultConfig({ ...base, sparsity_loss_mode: "tanh", tanh_scale: 3 }), step.params);
    new Rng(9).fillNormal(step.params.get("W_enc")!.data, 0.5);
    new Rng(10).fillNormal(step.params.get("W_dec")!.data, 0.5);
    const x = new Rng(11).fillNormal(new Float32Array(8 * D));
    const s = { x, batch: 8, step: 0, seed: 0, dead: null };
    const a = step.lossAndGrad(s, zerosLike(step.params));
    const b = tanh.lossAndGrad(s, zerosLike(tanh.params));
    const code = step.encode(x, 8);
    const W = step.params.get("W_dec")!.data;
    let want = 0;
    for (let e = 0; e < code.rowPtr[8]!; e++) {
      const j = code.idx[e]!;
      want += Math.tanh(3 * code.val[e]! * Math.hypot(...W.subarray(j * D, (j + 1) * D)));
    }
    expect(a.terms.l0_loss).toBeCloseTo((0.5 * code.rowPtr[8]!) / 8, 6);
    expect(b.terms.l0_loss).toBeCloseTo((0.5 * want) / 8, 5);
    expect(b.terms.mse).toBe(a.terms.mse);
  });
});
