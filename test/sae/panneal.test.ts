/**
 * p-annealing's schedule, beyond its gradients (gradients.test.ts): where p changes and to
 * what, how the coefficient is rescaled to keep the penalty's size, what the trainer logs,
 * and the runs it refuses; and the gated SAE annealed the same way (gated_anneal).
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { type GatedAnnealConfig, type PAnnealConfig, defaultConfig } from "../../src/sae/config.js";
import type { GatedAnnealSae } from "../../src/sae/gated-anneal.js";
import { annealSchedule } from "../../src/sae/p-annealing.js";
import { PAnnealSae } from "../../src/sae/panneal.js";
import { createSae } from "../../src/sae/registry.js";
import { zerosLike } from "../../src/sae/sae.js";
import { loadSae, saveSae } from "../../src/sae/saelens.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { type MetricsRecord, trainSae } from "../../src/train/trainer.js";
import { tempDir } from "../helpers.js";

const D = 8;
const M = 24;
const B = 16;

function panneal(input: Partial<PAnnealConfig> = {}): PAnnealSae {
  const sae = createSae(defaultConfig({ architecture: "panneal", d_in: D, d_sae: M, ...input })) as PAnnealSae;
  const rng = new Rng(3);
  for (const [name, t] of sae.params) rng.fillNormal(t.data, name.startsWith("b_") ? 0.1 : 0.5);
  return sae;
}

/** mean over tokens of sum_j (f_j ||W_dec_j||)^p (Lp^p), in float64 from the inference code. */
function penalty(sae: PAnnealSae, x: Float32Array, p: number): number {
  const W = sae.params.get("W_dec")!.data;
  const code = sae.encode(x, B);
  let total = 0;
  for (let e = 0; e < code.rowPtr[B]!; e++) {
    const j = code.idx[e]!;
    total += (code.val[e]! * Math.hypot(...W.subarray(j * D, (j + 1) * D))) ** p;
  }
  return total / B;
}

describe("p-annealing's schedule", () => {
  it("spaces the updates as an integer linspace from anneal_start to the run's end, and p from p_start to p_end", () => {
    const cfg = defaultConfig({ architecture: "panneal", d_in: D, d_sae: M, anneal_start: 10, n_sparsity_updates: 4, p_end: 0.1 }) as PAnnealConfig;
    const s = annealSchedule(cfg, 41);
    expect(s.updateSteps).toEqual([10, 20, 30, 41]); // 10 + i * 31 / 3, floored
    expect(s.pValues.map((p) => +p.toFixed(12))).toEqual([1, 0.7, 0.4, 0.1]);
    expect(annealSchedule({ ...cfg, anneal_end: 13 }).updateSteps).toEqual([10, 11, 12, 13]);
    expect(annealSchedule({ ...cfg, n_sparsity_updates: 1 }, 41)).toEqual({ updateSteps: [10], pValues: [1] });
  });

  it("refuses schedules that cannot work, naming the setting", () => {
    const cfg = defaultConfig({ architecture: "panneal", d_in: D, d_sae: M, anneal_start: 10, n_sparsity_updates: 4 }) as PAnnealConfig;
    expect(() => annealSchedule(cfg)).toThrow(/needs the run's length/);
    expect(() => annealSchedule({ ...cfg, anneal_end: 5 })).toThrow(/end at step 5, before it starts \(anneal_start 10\)/);
    expect(() => annealSchedule({ ...cfg, anneal_end: 12 })).toThrow(/4 updates of p do not fit in steps 10 to 12/);
    expect(() => panneal({ anneal_start: 30 }).startRun(20)).toThrow(/end at step 20, before it starts \(anneal_start 30\)/);
    expect(() => panneal({ anneal_start: 15, anneal_end: 1000 }).startRun(20)).toThrow(/p would stay at 1 for all 20 steps \(its first change is at step 124; .*--anneal-start/);
    expect(() => defaultConfig({ architecture: "panneal", d_in: D, d_sae: M, p_end: 0 })).toThrow(/p_end must be a positive number/);
    expect(() => defaultConfig({ architecture: "panneal", d_in: D, d_sae: M, sparsity_function: "L2" })).toThrow(/sparsity_function must be/);
  });

  it("moves p at the update steps and rescales the coefficient by the penalties' ratio over the queued batches", () => {
    // Fixed parameters and batch: every step's penalties are the same, so after the second
    // update alpha = alpha0 * P_1 / P_p1 exactly, and the weighted penalty keeps its size.
    const sae = panneal({ l1_coefficient: 0.3, anneal_start: 2, anneal_end: 8, n_sparsity_updates: 3, p_end: 0.4, sparsity_queue_length: 2 });
    sae.startRun(100);
    const x = new Rng(9).fillNormal(new Float32Array(B * D));
    const grads = zerosLike(sae.params);
    const seen: Array<{ p: number; coefficient: number; loggedP: number }> = [];
    for (let step = 0; step < 10; step++) {
      const stats = sae.lossAndGrad({ x, batch: B, step, seed: 0, dead: null }, grads);
      seen.push({ ...sae.annealing, loggedP: stats.schedule!.p! });
      sae.afterStep();
    }
    // Updates after steps 2 (p stays 1; the next p, 0.7, is measured from step 3), 5 (p = 0.7)
    // and 8 (p = 0.4): each takes effect at the following step.
    expect(seen.map((s) => +s.p.toFixed(6))).toEqual([1, 1, 1, 1, 1, 1, 0.7, 0.7, 0.7, 0.4]);
    expect(seen.map((s) => s.loggedP)).toEqual(seen.map((s) => s.p)); // the metrics log what the loss used
    expect(seen[5]!.coefficient).toBeCloseTo(0.3, 6);
    const a1 = 0.3 * (penalty(sae, x, 1) / penalty(sae, x, 0.7));
    expect(seen[6]!.coefficient / a1).toBeCloseTo(1, 5);
    expect(seen[9]!.coefficient / (a1 * (penalty(sae, x, 0.7) / penalty(sae, x, 0.4)))).toBeCloseTo(1, 5);
    // The weighted penalty of this batch is unchanged by the updates.
    expect(seen[9]!.coefficient * penalty(sae, x, 0.4)).toBeCloseTo(0.3 * penalty(sae, x, 1), 5);
  });

  it("trains: the metrics log p and the coefficient, and it saves as a SAELens standard SAE that loads back as panneal", () => {
    const cfg = defaultConfig({ architecture: "panneal", d_in: 16, d_sae: 64, l1_coefficient: 0.05, anneal_start: 20, n_sparsity_updates: 4, p_end: 0.25 });
    const logs: MetricsRecord[] = [];
    const out = tempDir("panneal");
    trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 48, seed: 2 }), {
      steps: 80, batchSize: 128, lr: 3e-3, logEvery: 1, progress: false, outDir: out, onLog: (m) => logs.push(m),
    });
    // Updates at 20, 40, 60 and 80 (never reached): p = 1, 0.75, 0.5 after them.
    expect(logs.map((m) => +(m.p as number).toFixed(6)).filter((p, i, all) => i === 0 || p !== all[i - 1])).toEqual([1, 0.75, 0.5]);
    expect(logs[0]!.sparsity_coefficient).toBeCloseTo(0.05, 6);
    expect(logs.at(-1)!.sparsity_coefficient).not.toBeCloseTo(0.05, 3);
    const loaded = loadSae(out);
    expect(loaded.raw.architecture).toBe("standard");
    expect(loaded.sae.cfg).toEqual(cfg);
    const reloaded = join(out, "again");
    saveSae(reloaded, loaded.sae);
    expect(loadSae(reloaded).sae.cfg.architecture).toBe("panneal");
  });

  it("gated_anneal: at p = 1 the gated SAE's loss and gradients; its gate's penalty anneals on schedule; saved as SAELens gated, loaded back as gated_anneal", () => {
    const common = { d_in: D, d_sae: M, l1_coefficient: 0.3, decoder_norm: "none" };
    const gated = createSae(defaultConfig({ architecture: "gated", ...common }));
    const annealed = createSae(defaultConfig({ architecture: "gated_anneal", ...common, anneal_start: 2, anneal_end: 8, n_sparsity_updates: 3, p_end: 0.4 })) as GatedAnnealSae;
    const rng = new Rng(5);
    for (const [name, t] of gated.params) {
      rng.fillNormal(t.data, name.startsWith("b_") || name === "r_mag" ? 0.1 : 0.5);
      annealed.params.get(name)!.data.set(t.data);
    }
    annealed.startRun(100);
    const x = new Rng(9).fillNormal(new Float32Array(B * D));
    const gG = zerosLike(gated.params);
    const gA = zerosLike(annealed.params);
    const sG = gated.lossAndGrad({ x, batch: B, step: 0, seed: 0, dead: null }, gG);
    const sA = annealed.lossAndGrad({ x, batch: B, step: 0, seed: 0, dead: null }, gA);
    expect(sA.terms.sparsity).toBeCloseTo(sG.terms.l1!, 6);
    expect(sA.loss).toBeCloseTo(sG.loss, 6);
    for (const [name, g] of gG) {
      const other = gA.get(name)!.data;
      let worst = 0;
      for (let i = 0; i < g.data.length; i++) worst = Math.max(worst, Math.abs(other[i]! - g.data[i]!) / (1e-6 + Math.abs(g.data[i]!)));
      expect(worst, name).toBeLessThan(1e-4);
    }
    annealed.afterStep();
    const ps: number[] = [];
    for (let step = 1; step < 10; step++) {
      ps.push(+annealed.lossAndGrad({ x, batch: B, step, seed: 0, dead: null }, gA).schedule!.p!.toFixed(6));
      annealed.afterStep();
    }
    expect(ps).toEqual([1, 1, 1, 1, 1, 0.7, 0.7, 0.7, 0.4]);
    expect(annealed.annealing.coefficient).not.toBeCloseTo(0.3, 3);

    const cfg = defaultConfig({ architecture: "gated_anneal", d_in: 16, d_sae: 64, l1_coefficient: 0.05, anneal_start: 20, n_sparsity_updates: 4, p_end: 0.25 }) as GatedAnnealConfig;
    const logs: MetricsRecord[] = [];
    const out = tempDir("gated-anneal");
    trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 48, seed: 2 }), {
      steps: 80, batchSize: 128, lr: 3e-3, logEvery: 1, progress: false, outDir: out, onLog: (m) => logs.push(m),
    });
    expect(logs.map((m) => +(m.p as number).toFixed(6)).filter((p, i, all) => i === 0 || p !== all[i - 1])).toEqual([1, 0.75, 0.5]);
    expect(Number.isFinite(logs.at(-1)!.loss)).toBe(true);
    const loaded = loadSae(out);
    expect(loaded.raw.architecture).toBe("gated");
    expect(loaded.sae.cfg).toEqual(cfg);
    // The gated SAE SAELens would run: the same code on the same inputs.
    const asGated = createSae(defaultConfig({ architecture: "gated", d_in: 16, d_sae: 64 }), loaded.sae.params);
    const probe = new Rng(4).fillNormal(new Float32Array(32 * 16));
    expect(asGated.encode(probe, 32)).toEqual(loaded.sae.encode(probe, 32));
  });
});
