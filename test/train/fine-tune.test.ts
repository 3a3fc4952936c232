/**
 * Fine-tuning (train --from; the initialSae of trainSae and InMemoryTraining): the run
 * starts from the given SAE's weights, with the input scale of the new run folded out of
 * them and back in at save, and leaves the given SAE as it was; the CLI's config is the
 * starting SAE's, changed only by the options given.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import { loadSae, saveSae } from "../../src/sae/saelens.js";
import { fineTuneConfig } from "../../src/cli/train.js";
import { kernels } from "../../src/core/kernels.js";
import { defaultConfig } from "../../src/sae/config.js";
import type { Sae } from "../../src/sae/sae.js";
import { withInputScaleFolded } from "../../src/sae/saelens-format.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { InMemoryTraining } from "../../src/train/in-memory.js";
import { type MetricsRecord, trainSae } from "../../src/train/trainer.js";
import { maxAbsDiff, tempDir } from "../helpers.js";

const data = () => new SuperpositionSource({ d: 32, nFeatures: 96, seed: 2 });
const snapshot = (sae: Sae) => new Map([...sae.params].map(([n, t]) => [n, t.data.slice()]));

describe("fine-tuning", () => {
  const cfg = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 128, k: 4 });
  const trained = trainSae(cfg, data(), { steps: 300, batchSize: 256, lr: 3e-3, seed: 1, progress: false }).sae;

  for (const normalize of ["none", "expected_norm"] as const) {
    it(`starts from the given SAE: the same reconstructions (inputs normalised: ${normalize === "expected_norm"})`, () => {
      const before = snapshot(trained);
      const rows = 512;
      const x = new Float32Array(rows * 32);
      data().next(x, rows);
      const want = trained.decode(trained.encode(x, rows)).slice();
      // A vanishing learning rate: the run must hand back the SAE it started from, folded
      // back to raw inputs (with normalisation its own weights work on scaled ones and keep
      // the unit-norm decoder rows).
      const still = trainSae(cfg, data(), { steps: 3, batchSize: 256, lr: 1e-12, seed: 5, progress: false, normalizeActivations: normalize, initialSae: trained });
      expect(still.inputScale === 1).toBe(normalize === "none");
      const norms = new Float32Array(128);
      kernels().rowNorms(still.sae.params.get("W_dec")!.data, 128, 32, norms);
      for (const n of norms) expect(Math.abs(n - 1)).toBeLessThan(1e-5);
      const back = withInputScaleFolded(still.sae, still.inputScale);
      expect(maxAbsDiff(back.decode(back.encode(x, rows)), want)).toBeLessThan(1e-4);
      // Training on changes the copy, never the SAE it was given.
      trainSae(cfg, data(), { steps: 5, batchSize: 256, lr: 3e-3, seed: 5, progress: false, normalizeActivations: normalize, initialSae: trained });
      for (const [name, t] of trained.params) expect(t.data, name).toEqual(before.get(name));
    });
  }

  it("in memory (what a web page runs): the same start", () => {
    const rows = 2048;
    const x = new Float32Array(rows * 32);
    data().next(x, rows);
    const want = trained.decode(trained.encode(x, rows)).slice();
    const run = new InMemoryTraining(cfg, { data: x, rows, d: 32 }, { steps: 2, batchSize: 256, lr: 1e-12, normalizeActivations: "expected_norm", initialSae: trained });
    expect(run.inputScale).not.toBe(1);
    run.run(2);
    const back = run.result();
    expect(maxAbsDiff(back.decode(back.encode(x, rows)), want)).toBeLessThan(1e-4);
  });

  it("begins where the SAE it starts from left off, not where a fresh one does", () => {
    const firstLoss = (initialSae?: Sae) => {
      const logs: MetricsRecord[] = [];
      trainSae(cfg, data(), { steps: 2, batchSize: 256, lr: 3e-3, seed: 5, logEvery: 1, progress: false, initialSae, onLog: (m) => logs.push(m) });
      return logs[0]!.fvu;
    };
    const fresh = firstLoss(), continued = firstLoss(trained);
    expect(continued).toBeLessThan(0.5 * fresh);
  });

  it("refuses an SAE of another architecture or size, and one that normalises each token", () => {
    const other = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 64, k: 4 });
    expect(() => trainSae(other, data(), { steps: 1, batchSize: 64, lr: 1e-3, progress: false, initialSae: trained }))
      .toThrow(/the SAE to fine-tune is a topk SAE 32x128; this run trains a topk SAE 32x64/);
    // An SAE read from another tool with a per-token normalisation is for inference only.
    const layerNormed = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 128, k: 4, input_normalization: "layer_norm" });
    expect(() => trainSae(layerNormed, data(), { steps: 3, batchSize: 64, lr: 1e-3, progress: false }))
      .toThrow(/saekit does not train SAEs with a per-token input normalisation \(layer_norm\)/);
  });

  it("saekit train --from: fine-tunes a saved SAE at another k, and says what cannot change", () => {
    const dir = tempDir();
    saveSae(join(dir, "start"), trained);
    const train = (...extra: string[]) => spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "train",
      "--data", "synthetic:superposition", "--synth-d", "32", "--synth-features", "96", "--from", join(dir, "start"),
      "--steps", "3", "--batch", "64", "--threads", "1", "--out", join(dir, "tuned"), ...extra], { encoding: "utf8" });
    const ok = train("--k", "2");
    expect(ok.status, ok.stderr).toBe(0);
    expect(loadSae(join(dir, "tuned")).sae.cfg).toEqual({ ...cfg, k: 2 });
    const bad = train("--arch", "relu");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--from is a topk SAE of 32 x 128; --arch relu cannot change that/);
  });

  it("the CLI's config: the starting SAE's, changed by the options given", () => {
    expect(fineTuneConfig(cfg, { k: 8, auxK: 3 }, 32)).toEqual({ ...cfg, k: 8, aux_k: 3 });
    expect(fineTuneConfig(cfg, {}, 32)).toEqual(cfg);
    const mp = defaultConfig({ architecture: "mp", d_in: 32, d_sae: 128, max_iterations: 6 });
    expect(fineTuneConfig(mp, { k: 3 }, 32)).toEqual({ ...mp, max_iterations: 3 });
    expect(() => fineTuneConfig(cfg, { arch: "relu" }, 32)).toThrow(/--from is a topk SAE of 32 x 128; --arch relu cannot change that/);
    expect(() => fineTuneConfig(cfg, { dSae: 256 }, 32)).toThrow(/--d-sae 256 cannot change that/);
    expect(() => fineTuneConfig(cfg, { expansionFactor: 8 }, 32)).toThrow(/--expansion-factor 8 cannot change that/);
    expect(fineTuneConfig(cfg, { expansionFactor: 4 }, 32).d_sae).toBe(128); // 4 x 32: the SAE's own size
    expect(() => fineTuneConfig(cfg, {}, 64)).toThrow(/it reads activations of width 32, the data has width 64/);
  });
});
