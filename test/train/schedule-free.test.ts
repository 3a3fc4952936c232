/**
 * sparsify's default optimizer, Schedule-Free SignSGD ("signum"): the update against a
 * float64 transcription of the schedulefree package's reference wrapper around SignSGD, its
 * place in the trainer (the run ends with the average x, resumes exactly) and what it learns.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { SafetensorsFile } from "../../src/core/safetensors.js";
import { Tensor } from "../../src/core/tensor.js";
import { defaultConfig } from "../../src/sae/config.js";
import type { ParamSet } from "../../src/sae/sae.js";
import { loadSae } from "../../src/sae/saelens.js";
import { SuperpositionSource, scoreFeatureRecovery } from "../../src/synthetic/superposition.js";
import { loadCheckpoint } from "../../src/train/checkpoint.js";
import { createOptimizer } from "../../src/train/optimizer.js";
import { SCHEDULE_FREE_MOMENTUM, ScheduleFreeSignSgd, signumDefaultLr } from "../../src/train/schedule-free.js";
import { type MetricsRecord, trainSae } from "../../src/train/trainer.js";
import { maxAbsDiff, randn, tempDir } from "../helpers.js";

/**
 * ScheduleFreeWrapperReference (momentum, weight_decay_at_y, r = 0, weight_lr_power = 2)
 * around sparsify's SignSGD, line by line, in float64, on one flat parameter vector.
 */
class ReferenceWrapper {
  z: Float64Array;
  x: Float64Array;
  y: Float64Array;
  p: Float64Array;
  k = 0;
  lrMax = 0;
  weightSum = 0;
  constructor(p0: Float32Array, readonly momentum: number, readonly weightDecayAtY: number) {
    this.p = Float64Array.from(p0);
    this.z = Float64Array.from(p0);
    this.x = Float64Array.from(p0);
    this.y = Float64Array.from(p0);
  }
  step(grad: Float32Array, lr: number): void {
    const { p, y, z, x } = this;
    for (let i = 0; i < p.length; i++) {
      if (this.weightDecayAtY !== 0) z[i] = z[i]! - lr * this.weightDecayAtY * y[i]!;
      p[i] = z[i]!; // copy z into the parameter buffer
      p[i] = p[i]! - lr * Math.sign(grad[i]!); // the base optimizer: SignSGD
    }
    this.lrMax = Math.max(lr, this.lrMax);
    const weight = (this.k + 1) ** 0 * this.lrMax ** 2;
    this.weightSum += weight;
    const ckp1 = weight / this.weightSum;
    for (let i = 0; i < p.length; i++) {
      z[i] = p[i]!;
      x[i] = x[i]! + ckp1 * (z[i]! - x[i]!);
      y[i] = x[i]! + (1 - this.momentum) * (z[i]! - x[i]!);
      p[i] = y[i]!;
    }
    this.k++;
  }
}

function params(values: Float32Array): ParamSet {
  return new Map([["W", new Tensor([values.length], values)]]);
}

describe("Schedule-Free SignSGD", () => {
  it("steps as the schedulefree reference wrapper around SignSGD does, through a warm-up and a decay, with weight decay at y", () => {
    const rng = new Rng(3);
    const n = 513;
    const start = randn(rng, n);
    const ps = params(start.slice());
    const opt = new ScheduleFreeSignSgd(ps, 0.01);
    const ref = new ReferenceWrapper(start, SCHEDULE_FREE_MOMENTUM, 0.01);
    const lrs = [1e-3, 2e-3, 3e-3, 3e-3, 3e-3, 2e-3, 1e-3, 5e-4];
    lrs.forEach((lr, t) => {
      const g = randn(rng, n);
      for (let i = t; i < n; i += 50) g[i] = 0;
      opt.step(ps, params(g), lr);
      ref.step(g, lr);
    });
    expect(maxAbsDiff(ps.get("W")!.data, ref.p)).toBeLessThan(1e-6);
    expect(maxAbsDiff(opt.z.get("W")!.data, ref.z)).toBeLessThan(1e-6);
    expect(maxAbsDiff(opt.finalWeights().get("W")!.data, ref.x)).toBeLessThan(1e-6);
    // The state a checkpoint keeps restores the same optimizer.
    const again = createOptimizer("signum", ps, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }, opt.state());
    // Each step weighs in (largest lr so far)^2: 1e-3, 2e-3, then 3e-3 for the last six.
    expect(again.state().scalars.lr_max).toBe(3e-3);
    expect(again.state().scalars.weight_sum).toBeCloseTo(1e-6 + 4e-6 + 6 * 9e-6, 15);
  });

  it("restarts a resampled latent's rows from its new parameters; Adam zeroes its moments", () => {
    const m = 3;
    const ps: ParamSet = new Map([["W_dec", new Tensor([m, 2], Float32Array.of(1, 2, 3, 4, 5, 6))], ["b_dec", new Tensor([2], Float32Array.of(7, 8))]]);
    const opt = new ScheduleFreeSignSgd(ps);
    opt.step(ps, new Map([["W_dec", new Tensor([m, 2], new Float32Array(6).fill(1))], ["b_dec", new Tensor([2], Float32Array.of(1, 1))]]), 0.5);
    ps.get("W_dec")!.data.set([10, 20], 2); // latent 1 resampled
    opt.restartRows(ps, 1, m);
    expect(Array.from(opt.z.get("W_dec")!.data.subarray(2, 4))).toEqual([10, 20]);
    expect(Array.from(opt.x.get("W_dec")!.data.subarray(2, 4))).toEqual([10, 20]);
    expect(Array.from(opt.x.get("W_dec")!.data.subarray(0, 2))).toEqual([0.5, 1.5]); // others untouched
    expect(Array.from(opt.x.get("b_dec")!.data)).toEqual([6.5, 7.5]);
    const adam = createOptimizer("adam", ps);
    adam.step(ps, new Map([["W_dec", new Tensor([m, 2], new Float32Array(6).fill(1))], ["b_dec", new Tensor([2], Float32Array.of(1, 1))]]), 0.1, 0);
    adam.restartRows(ps, 1, m);
    const moments = adam.state().tensors;
    expect(Array.from(moments.adam_m!.get("W_dec")!.data, (v) => v > 0.09 && v < 0.11)).toEqual([true, true, false, false, true, true]);
    expect(Array.from(moments.adam_m!.get("W_dec")!.data.subarray(2, 4))).toEqual([0, 0]);
    expect(() => createOptimizer("adam", ps, undefined, opt.state())).toThrow(/no Adam moments/);
    expect(() => createOptimizer("signum", ps, undefined, adam.state())).toThrow(/no Schedule-Free state/);
  });

  it("in the trainer: sparsify's default lr, constant (no warm-up, no decay), recovers every superposed feature", () => {
    const source = new SuperpositionSource({ d: 64, nFeatures: 512, meanActive: 4, seed: 1 });
    const cfg = defaultConfig({ architecture: "topk", d_in: 64, d_sae: 1024, k: 8 });
    const logged: MetricsRecord[] = [];
    const r = trainSae(cfg, source, { steps: 1000, batchSize: 1024, optimizer: "signum", seed: 1, logEvery: 100, progress: false, onLog: (m) => logged.push(m) });
    expect(signumDefaultLr(1024)).toBeCloseTo(0.02, 12);
    expect(new Set(logged.map((m) => m.lr))).toEqual(new Set([signumDefaultLr(1024)]));
    const score = scoreFeatureRecovery(source.features, r.sae.params.get("W_dec")!.data, 64);
    expect(score.recovered).toBeGreaterThanOrEqual(0.9);
    expect(score.mmcs).toBeGreaterThan(0.95);
  });

  it("the run ends with the average x: the saved SAE is the checkpoint's x, not the point y it trained at", () => {
    const out = join(tempDir(), "signum");
    const cfg = defaultConfig({ architecture: "topk", d_in: 16, d_sae: 64, k: 3 });
    const r = trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 40, seed: 4 }), { steps: 30, batchSize: 128, optimizer: "signum", outDir: out, progress: false });
    const c = loadCheckpoint(out);
    expect(c.meta.options.optimizer).toBe("signum");
    expect(Object.keys(c.optimizer.tensors).sort()).toEqual(["sf_x", "sf_z"]);
    expect(c.optimizer.scalars.weight_sum).toBeCloseTo(30 * signumDefaultLr(64) ** 2, 12);
    const saved = SafetensorsFile.open(join(out, "sae_weights.safetensors"));
    for (const name of ["W_dec", "b_enc", "b_dec"]) {
      const x = c.optimizer.tensors.sf_x!.get(name)!.data;
      expect(Array.from(saved.read(name).data), name).toEqual(Array.from(x));
      expect(Array.from(r.sae.params.get(name)!.data), name).toEqual(Array.from(x));
      expect(maxAbsDiff(c.params.get(name)!.data, x), name).toBeGreaterThan(0); // y differs from x
    }
    // SAELens' W_enc is [d_in, d_sae]: saekit's [d_sae, d_in] transposed.
    const W_enc = saved.read("W_enc").data;
    const x = c.optimizer.tensors.sf_x!.get("W_enc")!.data;
    expect(W_enc[1 * 64 + 5]).toBe(x[5 * 16 + 1]);
    expect(JSON.parse(readFileSync(join(out, "cfg.json"), "utf8")).saekit.training).toMatchObject({ optimizer: "signum", lr: signumDefaultLr(64) });
    expect(loadSae(out).sae.cfg.d_sae).toBe(64);
  });

  it("refuses an optimizer it does not know", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 8, d_sae: 16, k: 2 });
    expect(() => trainSae(cfg, new SuperpositionSource({ d: 8, nFeatures: 10 }), { steps: 2, batchSize: 8, optimizer: "sgd" as "adam", progress: false }))
      .toThrow(/unknown optimizer "sgd" \(known: adam, signum, muon\)/);
  });
});
