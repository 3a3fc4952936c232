/**
 * The trainer end to end on synthetic data: ground-truth recovery, determinism, exact
 * resume after a crash (in process and with SIGKILL), the unit-norm decoder constraint,
 * and bad data.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { availableParallelism } from "node:os";
import { matmulPrecision, setThreads } from "../../src/core/kernels.js";
import { packageRoot } from "../../src/core/native.js";
import { ArraySource } from "../../src/data/array-source.js";
import { ARCHITECTURES, type SaeConfig, defaultConfig } from "../../src/sae/config.js";
import { SPARSITY_FILE, loadSae } from "../../src/sae/saelens.js";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "../../src/core/safetensors.js";
import { VaeaseSae } from "../../src/sae/vaease.js";
import { subspaceActiveDims } from "../../src/synthetic/score.js";
import { SubspacesSource } from "../../src/synthetic/subspaces.js";
import { SuperpositionSource, scoreFeatureRecovery } from "../../src/synthetic/superposition.js";
import { ReconstructionMetrics } from "../../src/eval/metrics.js";
import { createSae, withInferenceK } from "../../src/sae/registry.js";
import { checkpointPath, loadCheckpoint } from "../../src/train/checkpoint.js";
import { saesIn } from "../../src/sae/open.js";
import { decayedK } from "../../src/train/core.js";
import { lrAt } from "../../src/train/schedule.js";
import { METRICS_FILE, type MetricsRecord, SNAPSHOTS_DIR, type TrainOptions, evenSaveSteps, logSaveSteps, trainSae } from "../../src/train/trainer.js";
import { tempDir } from "../helpers.js";

const dir = tempDir();
const bin = join(packageRoot(), "bin", "saekit.js");

describe("training on synthetic ground truth", () => {
  it("topk recovers >= 90% of 512 superposed features at cos > 0.9 (d=64, m=1024, k=8)", () => {
    const source = new SuperpositionSource({ d: 64, nFeatures: 512, meanActive: 4, seed: 1 });
    const cfg = defaultConfig({ architecture: "topk", d_in: 64, d_sae: 1024, k: 8 });
    // It starts from nothing it could know (test/synthetic: an SAE seeded like the data
    // recovers 0% at init); 1000 steps find every feature.
    const r = trainSae(cfg, source, { steps: 1000, batchSize: 1024, lr: 3e-3, seed: 1, progress: false });
    const score = scoreFeatureRecovery(source.features, r.sae.params.get("W_dec")!.data, 64);
    expect(score.recovered).toBeGreaterThanOrEqual(0.9);
    expect(score.mmcs).toBeGreaterThan(0.95);
    expect(r.last!.l0).toBeLessThanOrEqual(8);
  });

  it("at matmul precision medium (bfloat16 products) topk recovers the features as well, and the precision in effect is left as it was", () => {
    const source = new SuperpositionSource({ d: 64, nFeatures: 512, meanActive: 4, seed: 1 });
    const cfg = defaultConfig({ architecture: "topk", d_in: 64, d_sae: 1024, k: 8 });
    const r = trainSae(cfg, source, { steps: 1000, batchSize: 1024, lr: 3e-3, seed: 1, progress: false, matmulPrecision: "medium" });
    const score = scoreFeatureRecovery(source.features, r.sae.params.get("W_dec")!.data, 64);
    expect(score.recovered).toBeGreaterThanOrEqual(0.9);
    expect(score.mmcs).toBeGreaterThan(0.95);
    expect(matmulPrecision()).toBe("highest");
  });

  it("Multi-TopK keeps a k = 4 SAE working at k = 16, where plain TopK falls apart, at the same k = 4 FVU", () => {
    const fvuAt = (multi: boolean) => {
      const cfg = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 256, k: 4, multi_topk: multi });
      const source = new SuperpositionSource({ d: 32, nFeatures: 200, meanActive: 8, seed: 1 });
      const r = trainSae(cfg, source, { steps: 600, batchSize: 256, lr: 3e-3, seed: 1, progress: false });
      const rows = 4096;
      const x = new Float32Array(rows * 32);
      source.next(x, rows);
      // The trained weights run with another k, as a user running the SAE wider would.
      return (k: number) => {
        const sae = withInferenceK(r.sae, k);
        const rec = new ReconstructionMetrics(32);
        rec.add(x, sae.decode(sae.encode(x, rows)), rows);
        return rec.result().fvu;
      };
    };
    const plain = fvuAt(false), multi = fvuAt(true);
    expect(multi(16)).toBeLessThan(0.5 * plain(16));
    expect(plain(16)).toBeGreaterThan(plain(4));
    expect(multi(4)).toBeLessThan(1.15 * plain(4));
    expect(() => withInferenceK(createSae(defaultConfig({ architecture: "batchtopk", d_in: 8, d_sae: 16, k: 2 })), 8)).toThrow(/a batchtopk SAE does not select a fixed k per token at inference/);
  });

  it("vaease finds 4 +- 1 active dimensions on each of 3 four-dimensional subspaces", () => {
    const source = new SubspacesSource({ seed: 0 });
    const cfg = defaultConfig({ architecture: "vaease", d_in: 40, d_sae: 20, hidden: [64, 64] });
    const r = trainSae(cfg, source, { steps: 1500, batchSize: 512, lr: 5e-3, clipGradNorm: 0, seed: 0, progress: false });
    const dims = subspaceActiveDims(r.sae as VaeaseSae, source, 2000);
    for (const ad of dims.perSubspace) expect(Math.abs(ad - 4)).toBeLessThanOrEqual(1);
    expect(r.last!.fvu).toBeLessThan(0.2);
  });

  it("on features that fire both ways, TopK spends a +f and a -f latent on many, AbsTopK one on each, and reconstructs better", () => {
    // The AbsTopK paper's point: a non-negative code splits a bidirectional axis in two.
    const d = 32;
    const run = (architecture: "topk" | "abstopk") => {
      const source = new SuperpositionSource({ d, nFeatures: 128, meanActive: 3, negative: 0.5, seed: 1 });
      const r = trainSae(defaultConfig({ architecture, d_in: d, d_sae: 256, k: 4 }), source,
        { steps: 800, batchSize: 512, lr: 2e-3, seed: 0, progress: false });
      const W_dec = r.sae.params.get("W_dec")!.data;
      return { r, W_dec, score: scoreFeatureRecovery(source.features, W_dec, d), features: source.features };
    };
    const topk = run("topk"), abs = run("abstopk");
    expect(topk.score.latents_per_feature).toBeGreaterThan(1.2);
    expect(abs.score.latents_per_feature).toBeLessThan(1.05);
    expect(abs.score.recovered).toBeGreaterThan(topk.score.recovered);
    expect(abs.r.last!.fvu).toBeLessThan(topk.r.last!.fvu - 0.03);
    // TopK's two latents of a feature point opposite ways.
    let pairs = 0;
    for (let i = 0; i < 128; i++) {
      const signs: number[] = [];
      for (let j = 0; j < 256; j++) {
        let dot = 0, norm = 0;
        for (let c = 0; c < d; c++) { dot += topk.features[i * d + c]! * topk.W_dec[j * d + c]!; norm += topk.W_dec[j * d + c]! ** 2; }
        const cos = dot / Math.sqrt(norm);
        if (Math.abs(cos) > 0.9) signs.push(Math.sign(cos));
      }
      if (signs.length === 2) { pairs++; expect(signs[0]).toBe(-signs[1]!); }
    }
    expect(pairs).toBeGreaterThan(20);
  });

  it("a plain VAE (no gate) keeps one set of dimensions for every input: those of the three subspaces together", () => {
    const source = new SubspacesSource({ seed: 0 });
    // The subspaces' coordinates (4 of 40 each) may overlap: their union is what the VAE needs.
    const union = new Set(source.coords.flat()).size;
    expect(union).toBeGreaterThan(8);
    const cfg = defaultConfig({ architecture: "vaease", d_in: 40, d_sae: 20, hidden: [64, 64], gate: false });
    const r = trainSae(cfg, source, { steps: 800, batchSize: 512, lr: 5e-3, clipGradNorm: 0, seed: 0, progress: false });
    const dims = subspaceActiveDims(r.sae as VaeaseSae, source, 2000);
    for (const ad of dims.perSubspace) expect(ad).toBeCloseTo(union, 0);
    expect(dims.std).toBeLessThan(0.5); // the same count for every input
    expect(r.last!.fvu).toBeLessThan(0.2);
  });
});

describe("a diverging run", () => {
  it("stops with the step and what to change, writing no SAE", () => {
    const out = join(dir, "diverged");
    const cfg = defaultConfig({ architecture: "relu", d_in: 16, d_sae: 64, l1_coefficient: 1 });
    expect(() => trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 32, seed: 1 }), {
      steps: 20, batchSize: 64, lr: 1e30, seed: 1, outDir: out, progress: false,
    })).toThrow(/^the loss became (NaN|Infinity) at step \d+; lower the learning rate or normalise the inputs \(--lr, --normalize expected_norm\)$/);
    expect(existsSync(join(out, "sae_weights.safetensors"))).toBe(false);
  });
});

describe("runs are reproducible and resumable", () => {
  const opts = { steps: 60, batchSize: 256, lr: 2e-3, seed: 5, logEvery: 7, checkpointEvery: 20, deadAfterTokens: 2000, progress: false };
  const cfgs = [
    defaultConfig({ architecture: "topk", d_in: 32, d_sae: 128, k: 4, aux_k: 16 }),
    defaultConfig({ architecture: "vsae", d_in: 32, d_sae: 128, k: 4, beta: 0.01, kl_warmup_steps: 10 }),
    defaultConfig({ architecture: "batchtopk", d_in: 32, d_sae: 128, k: 4 }),
    defaultConfig({ architecture: "matryoshka", d_in: 32, d_sae: 128, k: 4, aux_k: 16 }),
    defaultConfig({ architecture: "gated", d_in: 32, d_sae: 128, l1_coefficient: 0.5 }),
    defaultConfig({ architecture: "relu", d_in: 32, d_sae: 128, l1_coefficient: 0.5 }),
    // p updates at steps 10, 22, 35, 47 and 60: the resumed run redoes steps 40 to 46, then updates at 47.
    defaultConfig({ architecture: "panneal", d_in: 32, d_sae: 128, l1_coefficient: 0.5, anneal_start: 10, n_sparsity_updates: 5, sparsity_queue_length: 4 }),
    defaultConfig({ architecture: "gated_anneal", d_in: 32, d_sae: 128, l1_coefficient: 0.5, anneal_start: 10, n_sparsity_updates: 5, sparsity_queue_length: 4 }),
    defaultConfig({ architecture: "jumprelu", d_in: 32, d_sae: 128 }),
    defaultConfig({ architecture: "abstopk", d_in: 32, d_sae: 128, k: 4 }),
    // Its scalar gamma leaves an odd number of float32 values before the int64 counters.
    defaultConfig({ architecture: "vaease", d_in: 32, d_sae: 128 }),
    defaultConfig({ architecture: "mp", d_in: 32, d_sae: 128, max_iterations: 6 }),
  ];
  it("covers every architecture", () => {
    expect(cfgs.map((c) => c.architecture).sort()).toEqual([...ARCHITECTURES].sort());
  });
  // Every architecture, and dead-latent resampling (every 10 steps: before the crash and after the resume).
  const cases: Array<[string, SaeConfig, Partial<TrainOptions>]> = [
    ...cfgs.map((cfg): [string, SaeConfig, Partial<TrainOptions>] => [cfg.architecture, cfg, {}]),
    ["relu with resampling", defaultConfig({ architecture: "relu", d_in: 32, d_sae: 128, l1_coefficient: 4 }), { resampleEvery: 10 }],
    // sparsify's Schedule-Free SignSGD: its iterate, average and weight sum resume too.
    ["topk with signum", cfgs[0]!, { optimizer: "signum", lr: undefined }],
    // sparsify's k decay, resumed mid-decay.
    ["abstopk with k decay", defaultConfig({ architecture: "abstopk", d_in: 32, d_sae: 128, k: 4 }), { kDecaySteps: 50 }],
    // sparsify's Muon: its momentum and the biases' Adam moments resume too, and resampling restarts them.
    ["topk with muon", cfgs[0]!, { optimizer: "muon", lr: undefined }],
    ["relu with muon and resampling", defaultConfig({ architecture: "relu", d_in: 32, d_sae: 128, l1_coefficient: 4 }), { optimizer: "muon", resampleEvery: 10 }],
    ["relu with signum and resampling", defaultConfig({ architecture: "relu", d_in: 32, d_sae: 128, l1_coefficient: 4 }), { optimizer: "signum", lr: 2e-3, resampleEvery: 10 }],
  ];
  for (const [name, cfg, extra] of cases) {
    it(`${name}: a run stopped mid-way and resumed ends bit-identical, metrics included`, () => {
      const whole = join(dir, `whole-${name.replace(/ /g, "-")}`);
      const split = join(dir, `split-${name.replace(/ /g, "-")}`);
      const run = { ...opts, ...extra };
      trainSae(cfg, new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 }), { ...run, outDir: whole });
      // "Crash" after 47 steps: the last checkpoint is at 40, so 7 steps are redone.
      trainSae(cfg, new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 }), { ...run, outDir: split, stopAfter: 47 });
      expect(existsSync(join(split, "sae_weights.safetensors"))).toBe(false);
      trainSae(cfg, new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 }), { ...run, outDir: split, resume: true });
      expect(readFileSync(join(split, "sae_weights.safetensors")).equals(readFileSync(join(whole, "sae_weights.safetensors")))).toBe(true);
      expect(readFileSync(checkpointPath(split)).equals(readFileSync(checkpointPath(whole)))).toBe(true);
      expect(readFileSync(join(split, SPARSITY_FILE)).equals(readFileSync(join(whole, SPARSITY_FILE)))).toBe(true);
      const strip = (p: string) => readFileSync(join(p, METRICS_FILE), "utf8").trim().split("\n")
        .map((l) => { const { tokens_per_s: _t, ...rest } = JSON.parse(l); return rest; });
      expect(strip(split)).toEqual(strip(whole));
    });
  }

  it("save-best keeps in best/ the SAE of the checkpoint with the lowest step loss, and resumes to the same best/", () => {
    // L1 warming up over the run raises the loss it trains on: an early checkpoint wins.
    const cfg = defaultConfig({ architecture: "relu", d_in: 32, d_sae: 128, l1_coefficient: 3, l1_warmup_steps: 60 });
    const source = () => new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 });
    const run = { ...opts, logEvery: 1, checkpointEvery: 10, saveBest: true };
    const whole = join(dir, "best-whole"), split = join(dir, "best-split");
    trainSae(cfg, source(), { ...run, outDir: whole });
    const losses = readFileSync(join(whole, METRICS_FILE), "utf8").trim().split("\n").map((l) => JSON.parse(l).loss as number);
    expect(losses).toHaveLength(60);
    const checkpoints = [10, 20, 30, 40, 50, 60];
    const bestStep = checkpoints.reduce((a, b) => (losses[b - 1]! < losses[a - 1]! ? b : a));
    const info = JSON.parse(readFileSync(join(whole, "best", "cfg.json"), "utf8")).saekit.training;
    expect(info.best_step).toBe(bestStep);
    expect(info.best_loss).toBeCloseTo(losses[bestStep - 1]!, 10);
    expect(bestStep).toBeLessThan(60);
    // A loadable SAE, and not the final one.
    const best = loadSae(join(whole, "best")).sae;
    expect(best.params.get("W_dec")!.data).not.toEqual(loadSae(whole).sae.params.get("W_dec")!.data);
    // Stopped after the best checkpoint and resumed: the same best/, to the byte.
    trainSae(cfg, source(), { ...run, outDir: split, stopAfter: bestStep + 5 });
    trainSae(cfg, source(), { ...run, outDir: split, resume: true });
    for (const file of ["cfg.json", "sae_weights.safetensors"]) {
      expect(readFileSync(join(split, "best", file)).equals(readFileSync(join(whole, "best", file))), file).toBe(true);
    }
    // Without the option nothing is kept there.
    const plain = join(dir, "best-off");
    trainSae(cfg, source(), { ...opts, outDir: plain });
    expect(existsSync(join(plain, "best"))).toBe(false);
  });

  it("evenSaveSteps takes SAELens' n_checkpoints thresholds: multiples of total / n below the total, the first step past each, one a step", () => {
    // 10 tokens, n = 3: thresholds 3, 6, 9, passed after 4, 7 and 10 tokens.
    expect(evenSaveSteps(10, 1, 3)).toEqual([4, 7, 10]);
    // 6000 tokens, n = 4: thresholds 1500, 3000, 4500 (n - 1 of them: n divides the total).
    expect(evenSaveSteps(60, 100, 4)).toEqual([16, 31, 46]);
    // Nine thresholds of 5 tokens each, batches of 10: one is taken a step until the run ends.
    expect(evenSaveSteps(5, 10, 10)).toEqual([1, 2, 3, 4, 5]);
    expect(() => evenSaveSteps(5, 10, 51)).toThrow(/n_checkpoints must be a positive integer no larger than the run's 50 tokens, got 51/);
  });

  it("logSaveSteps spaces n - 1 steps evenly in log(step): ceil(steps^(i / n)), repeats dropped", () => {
    // 10000^(i/4) = 10, 100, 1000.
    expect(logSaveSteps(10000, 4)).toEqual([10, 100, 1000]);
    // 1000^(i/6) = 3.16, 10, 31.6, 100, 316.2.
    expect(logSaveSteps(1000, 6)).toEqual([4, 10, 32, 100, 317]);
    // Few steps: 5^(i/10) rounds up to 2, 2, ... 5: each step once.
    expect(logSaveSteps(5, 10)).toEqual([2, 3, 4, 5]);
    expect(logSaveSteps(100, 1)).toEqual([]);
  });

  it("saveSteps keeps the SAE of those steps in checkpoints/<tokens>, as the run held it then, and a resumed run writes the same files", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 128, k: 4 });
    const source = () => new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 });
    const run = { ...opts, checkpointEvery: 20, saveSteps: [45, 20] };
    const whole = join(dir, "snapshots-whole"), split = join(dir, "snapshots-split");
    trainSae(cfg, source(), { ...run, outDir: whole });
    const snapshots = join(whole, SNAPSHOTS_DIR);
    expect(saesIn(snapshots)).toEqual([20, 45].map((step) => String(step * opts.batchSize)));
    expect(JSON.parse(readFileSync(join(snapshots, "5120", "cfg.json"), "utf8")).saekit.training).toMatchObject({ step: 20, tokens: 5120, steps: 60 });
    // Stopped at the checkpoint of step 20: the snapshot holds the weights it holds.
    trainSae(cfg, source(), { ...run, outDir: split, stopAfter: 20 });
    const held = loadCheckpoint(split).params;
    const saved = loadSae(join(split, SNAPSHOTS_DIR, "5120")).sae.params;
    for (const name of ["W_enc", "W_dec", "b_enc", "b_dec"]) expect(saved.get(name)!.data, name).toEqual(held.get(name)!.data);
    expect(existsSync(join(split, SNAPSHOTS_DIR, "11520"))).toBe(false);
    trainSae(cfg, source(), { ...run, outDir: split, resume: true });
    for (const tokens of ["5120", "11520"]) {
      for (const file of ["cfg.json", "sae_weights.safetensors", SPARSITY_FILE]) {
        expect(readFileSync(join(split, SNAPSHOTS_DIR, tokens, file)).equals(readFileSync(join(snapshots, tokens, file))), `${tokens}/${file}`).toBe(true);
      }
    }
    expect(() => trainSae(cfg, source(), { ...opts, saveSteps: [61] })).toThrow(/saveSteps: 61 is not a step of the run \(1 to 60\)/);
    expect(() => trainSae(cfg, source(), { ...opts, saveSteps: [0] })).toThrow(/saveSteps: 0 is not a step/);
  });

  it("a fresh run refuses a folder holding another run, loses nothing there, and replaces it only with overwrite", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 128, k: 4 });
    const source = () => new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 });
    const out = join(dir, "guarded");
    trainSae(cfg, source(), { ...opts, outDir: out, saveSteps: [30] });
    const weights = readFileSync(join(out, "sae_weights.safetensors"));
    const metrics = readFileSync(join(out, METRICS_FILE), "utf8");
    expect(() => trainSae(cfg, source(), { ...opts, seed: 6, outDir: out }))
      .toThrow(/holds a trained SAE already \(metrics\.jsonl, checkpoint\.safetensors, cfg\.json, sae_weights\.safetensors, sparsity\.safetensors, checkpoints\); resume it \(--resume\), replace it \(--overwrite\)/);
    expect(readFileSync(join(out, "sae_weights.safetensors")).equals(weights)).toBe(true);
    expect(readFileSync(join(out, METRICS_FILE), "utf8")).toBe(metrics);
    // Replaced: the other run's files go, snapshots included, and the new run's come.
    trainSae(cfg, source(), { ...opts, seed: 6, outDir: out, overwrite: true });
    expect(readFileSync(join(out, "sae_weights.safetensors")).equals(weights)).toBe(false);
    expect(existsSync(join(out, SNAPSHOTS_DIR))).toBe(false);
    // A run killed before its first checkpoint left only metrics: refused afresh, started over by resuming.
    const early = join(dir, "guarded-early");
    trainSae(cfg, source(), { ...opts, outDir: early, stopAfter: 10 });
    expect(existsSync(checkpointPath(early))).toBe(false);
    expect(() => trainSae(cfg, source(), { ...opts, outDir: early })).toThrow(/holds a run already \(metrics\.jsonl\); replace it \(--overwrite\)/);
    trainSae(cfg, source(), { ...opts, outDir: early, resume: true });
    // ... to the run trained in one go: the first one here, before it was replaced.
    expect(readFileSync(join(early, "sae_weights.safetensors")).equals(weights)).toBe(true);
  });

  it("a run at matmul precision medium records it, resumes at it whatever precision is in effect, and differs from a float32 run", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 32, d_sae: 128, k: 4, aux_k: 16 });
    const source = () => new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 });
    const whole = join(dir, "medium-whole"), split = join(dir, "medium-split"), highest = join(dir, "medium-vs-highest");
    trainSae(cfg, source(), { ...opts, outDir: whole, matmulPrecision: "medium" });
    trainSae(cfg, source(), { ...opts, outDir: split, matmulPrecision: "medium", stopAfter: 47 });
    trainSae(cfg, source(), { ...opts, outDir: split, resume: true }); // the options in effect say highest
    trainSae(cfg, source(), { ...opts, outDir: highest });
    const weights = (p: string) => readFileSync(join(p, "sae_weights.safetensors"));
    expect(weights(split).equals(weights(whole))).toBe(true);
    expect(weights(highest).equals(weights(whole))).toBe(false);
    const training = (p: string) => JSON.parse(readFileSync(join(p, "cfg.json"), "utf8")).saekit.training.matmul_precision;
    expect([training(whole), training(split), training(highest)]).toEqual(["medium", "medium", "highest"]);
    expect(() => trainSae(cfg, source(), { ...opts, matmulPrecision: "low" as "medium" })).toThrow(/matmulPrecision must be one of highest, medium/);
  });

  it("every architecture trains at matmul precision medium to float32's FVU", () => {
    // The products' inputs lose 16 mantissa bits; what the SAE learns must not depend on them.
    for (const cfg of cfgs) {
      const fvu = (matmulPrecision: "highest" | "medium") => trainSae(cfg, new SuperpositionSource({ d: 32, nFeatures: 64, seed: 2 }),
        { steps: 200, batchSize: 256, lr: 2e-3, seed: 5, progress: false, matmulPrecision }).last!.fvu;
      const highest = fvu("highest"), medium = fvu("medium");
      expect(medium, cfg.architecture).not.toBe(highest);
      expect(Math.abs(medium - highest), cfg.architecture).toBeLessThan(0.01 * Math.max(highest, 0.1));
    }
  });

  /** A small CLI training run into `out`, and what resuming it must give: the clean run's folder, to the byte. */
  const cliTrain = (out: string, steps: number, checkpointEvery: number) => [bin, "train", "--data", "synthetic:superposition",
    "--synth-d", "32", "--synth-features", "96", "--arch", "topk", "--d-sae", "256", "--k", "6", "--steps", `${steps}`, "--batch", "512",
    "--checkpoint-every", `${checkpointEvery}`, "--log-every", "25", "--threads", "1", "--out", out];
  const expectResumedAsClean = (args: string[], run: string, clean: string) => {
    expect(existsSync(join(run, "sae_weights.safetensors"))).toBe(false);
    const resumed = spawnSync(process.execPath, [...args, "--resume"], { encoding: "utf8" });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(readFileSync(join(run, "sae_weights.safetensors")).equals(readFileSync(join(clean, "sae_weights.safetensors")))).toBe(true);
    // The same files, and no temporary a kill may have left half-written.
    expect(readdirSync(run).sort()).toEqual(readdirSync(clean).sort());
  };

  it("a CLI run killed with SIGKILL and resumed with --resume ends bit-identical", async () => {
    const clean = join(dir, "cli-clean");
    const killed = join(dir, "cli-killed");
    expect(spawnSync(process.execPath, cliTrain(clean, 300, 25), { encoding: "utf8" }).status).toBe(0);
    const child = spawn(process.execPath, cliTrain(killed, 300, 25), { stdio: "ignore" });
    const exited = new Promise<void>((res) => child.on("exit", () => res()));
    // Kill as soon as the first checkpoint lands, mid-run.
    while (!existsSync(checkpointPath(killed))) await new Promise((r) => setTimeout(r, 5));
    child.kill("SIGKILL");
    await exited;
    expectResumedAsClean(cliTrain(killed, 300, 25), killed, clean);
  });

  it("a CLI run stopped with Ctrl-C checkpoints the steps done, says how to go on, and resumes bit-identically", async () => {
    // --checkpoint-every 0: no checkpoint before the end but the one Ctrl-C makes.
    const clean = join(dir, "int-clean");
    const stopped = join(dir, "int-stopped");
    expect(spawnSync(process.execPath, cliTrain(clean, 1000, 0), { encoding: "utf8" }).status).toBe(0);
    const child = spawn(process.execPath, cliTrain(stopped, 1000, 0), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b) => (stderr += b));
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
    while (!existsSync(join(stopped, "metrics.jsonl"))) await new Promise((r) => setTimeout(r, 5));
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/training stopped at step \d+ of 1000; checkpointed in .*int-stopped: rerun with --resume to continue/);
    expect(existsSync(checkpointPath(stopped))).toBe(true);
    expectResumedAsClean(cliTrain(stopped, 1000, 0), stopped, clean);
    // The metrics too: the half-filled window at the stop went into the checkpoint.
    const metrics = (run: string) => readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n")
      .map((l) => { const { tokens_per_s: _t, ...rest } = JSON.parse(l); return rest; });
    expect(metrics(stopped)).toEqual(metrics(clean));
  });

  it("the thread count does not change the result, at either matmul precision", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 48, d_sae: 300, k: 5 });
    const run = (threads: number, precision: "highest" | "medium") => {
      setThreads(threads);
      const r = trainSae(cfg, new SuperpositionSource({ d: 48, nFeatures: 100, seed: 3 }), { steps: 15, batchSize: 300, lr: 1e-3, progress: false, matmulPrecision: precision });
      return Buffer.from(r.sae.params.get("W_enc")!.data.slice().buffer);
    };
    for (const precision of ["highest", "medium"] as const) {
      const one = run(1, precision);
      const two = run(2, precision);
      setThreads(availableParallelism());
      expect(one.equals(two), precision).toBe(true);
    }
  });
});

describe("feature sparsity (SAELens' sparsity.safetensors)", () => {
  const cfg = defaultConfig({ architecture: "topk", d_in: 16, d_sae: 64, k: 3 });
  const source = () => new SuperpositionSource({ d: 16, nFeatures: 40, seed: 6 });
  const densities = (s: Float32Array) => [...s].map((v) => 10 ** v - 1e-10);

  it("is each latent's firing frequency over the final window: the densities sum to that window's mean L0", () => {
    const out = join(dir, "sparsity");
    const logs: MetricsRecord[] = [];
    // 30 steps in windows of 10 (the last one is steps 20-29); one metrics record per window.
    const r = trainSae(cfg, source(), {
      steps: 30, batchSize: 64, lr: 1e-2, logEvery: 10, featureSamplingWindow: 10, outDir: out, progress: false, onLog: (m) => logs.push(m),
    });
    const { logFeatureSparsity } = loadSae(out);
    expect([...logFeatureSparsity!]).toEqual([...r.logFeatureSparsity]);
    const density = densities(logFeatureSparsity!);
    expect(density.reduce((a, b) => a + b, 0)).toBeCloseTo(logs[2]!.l0, 4);
    for (let j = 0; j < 64; j++) {
      expect(density[j]!).toBeGreaterThanOrEqual(-1e-12);
      expect(density[j]!).toBeLessThanOrEqual(1);
      // Fired in the last batch: counted; silent for the whole window: log10(1e-10).
      if (r.tokensSinceFired[j] === 0) expect(density[j]!).toBeGreaterThan(0);
      if (r.tokensSinceFired[j]! >= 10 * 64) expect(logFeatureSparsity![j]).toBeCloseTo(-10, 6);
    }
    // A run shorter than the window counts all of it.
    const whole: MetricsRecord[] = [];
    const short = trainSae(cfg, source(), { steps: 30, batchSize: 64, lr: 1e-2, logEvery: 30, progress: false, onLog: (m) => whole.push(m) });
    expect(densities(short.logFeatureSparsity).reduce((a, b) => a + b, 0)).toBeCloseTo(whole[0]!.l0, 4);
  });

  it("a checkpoint from before the sparsity window resumes, counting from the resume", () => {
    const out = join(dir, "old-checkpoint");
    const opts = { steps: 20, batchSize: 64, lr: 1e-2, checkpointEvery: 10, outDir: out, progress: false };
    trainSae(cfg, source(), { ...opts, stopAfter: 12 });
    // Rewrite the checkpoint as saekit wrote it before: no fire_counts, no sparsityTokens.
    const file = SafetensorsFile.open(checkpointPath(out));
    const meta = JSON.parse(file.metadata.saekit!);
    delete meta.sparsityTokens;
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of file.names()) {
      if (name === "fire_counts") continue;
      tensors[name] = name === "tokens_since_fired" ? { dtype: "I64", shape: [64], data: file.readInts(name).data } : file.read(name);
    }
    writeSafetensors(checkpointPath(out), tensors, { saekit: JSON.stringify(meta) });
    const r = trainSae(cfg, source(), { ...opts, resume: true });
    expect(r.steps).toBe(20);
    const density = densities(loadSae(out).logFeatureSparsity!);
    expect(density.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 1); // steps 10-19 of a k = 3 TopK
  });
});

describe("training constraints and bad input", () => {
  it("a unit-norm decoder stays unit-norm", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 16, d_sae: 64, k: 3, decoder_norm: "unit" });
    const r = trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 40, seed: 4 }), { steps: 30, batchSize: 128, lr: 1e-2, progress: false });
    const W = r.sae.params.get("W_dec")!.data;
    for (let j = 0; j < 64; j++) expect(Math.abs(Math.hypot(...W.subarray(j * 16, (j + 1) * 16)) - 1)).toBeLessThan(1e-5);
  });

  it("steps at the scheduled learning rate: the cosine schedule's value is what each step logs", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: 16, d_sae: 64, k: 3 });
    const logged: MetricsRecord[] = [];
    const o = { steps: 40, batchSize: 64, lr: 1e-2, lrWarmupSteps: 4, lrDecayStart: 36, lrSchedule: "cosine", lrEnd: 1e-3, logEvery: 1 } as const;
    trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 40, seed: 4 }), { ...o, progress: false, onLog: (m) => logged.push(m) });
    const schedule = { lr: o.lr, steps: o.steps, warmupSteps: 4, decayStart: 36, kind: "cosine", lrEnd: 1e-3 } as const;
    expect(logged.map((m) => m.lr)).toEqual(Array.from({ length: 40 }, (_, t) => lrAt(schedule, t)));
    expect(logged[20]!.lr).toBeCloseTo(1e-3 + (1e-2 - 1e-3) * (1 + Math.cos((16 * Math.PI) / 32)) / 2, 12);
    expect(() => trainSae(cfg, new SuperpositionSource({ d: 16, nFeatures: 40, seed: 4 }), { ...o, lrEnd: 0, progress: false }))
      .toThrow(/starts from lr_end, which is 0/);
  });

  it("a k decay (sparsify's) selects k = min(d_sae, 10 d_in) at first and the SAE's k from the end of the decay on", () => {
    expect([0, 5, 9, 10, 30].map((t) => decayedK(64, 8, 10, t))).toEqual([64, 36, 14, 8, 8]);
    const cfg = defaultConfig({ architecture: "abstopk", d_in: 4, d_sae: 64, k: 3 });
    const logged: MetricsRecord[] = [];
    trainSae(cfg, new SuperpositionSource({ d: 4, nFeatures: 20, seed: 4 }), { steps: 14, batchSize: 32, lr: 1e-3, kDecaySteps: 10, logEvery: 1,
      progress: false, onLog: (m) => logged.push(m) });
    // AbsTopK's L0 is exactly its k: 40 (10 d_in) down to 3.
    const ks = Array.from({ length: 14 }, (_, t) => decayedK(40, 3, 10, t));
    expect(logged.map((m) => m.k)).toEqual(ks);
    expect(logged.map((m) => m.l0)).toEqual(ks);
    expect(() => trainSae(defaultConfig({ architecture: "relu", d_in: 4, d_sae: 8 }), new SuperpositionSource({ d: 4, nFeatures: 20 }), { steps: 2, batchSize: 8, kDecaySteps: 5, progress: false }))
      .toThrow(/a k decay is for TopK and AbsTopK SAEs .* not relu/);
  });

  it("input normalisation is folded into the saved weights", () => {
    const out = join(dir, "scaled");
    const data = new Float32Array(512 * 8).map((_, i) => Math.sin(i * 0.37) * 30);
    const cfg = defaultConfig({ architecture: "topk", d_in: 8, d_sae: 32, k: 3 });
    const r = trainSae(cfg, new ArraySource(data, 8), { steps: 10, batchSize: 64, lr: 1e-3, outDir: out, normalizeActivations: "expected_norm", progress: false });
    expect(r.inputScale).not.toBe(1);
    const x = data.subarray(0, 8 * 16);
    const scaled = x.map((v) => v * r.inputScale);
    const inMemory = r.sae.decode(r.sae.encode(scaled, 16)).slice();
    const { sae } = loadSae(out);
    const fromDisk = sae.decode(sae.encode(x, 16));
    for (let i = 0; i < inMemory.length; i++) expect(fromDisk[i]!).toBeCloseTo(inMemory[i]! / r.inputScale, 3);
  });

  it("evaluates every evalEvery steps and at the last, on the SAE as saved, without changing the training", () => {
    const data = new Float32Array(512 * 8).map((_, i) => Math.sin(i * 0.37) * 30);
    const cfg = defaultConfig({ architecture: "topk", d_in: 8, d_sae: 32, k: 3 });
    const x = data.subarray(0, 8 * 16);
    const seen: Array<{ step: number; xHat: Float32Array }> = [];
    const records: MetricsRecord[] = [];
    const base = { steps: 10, batchSize: 64, lr: 1e-3, logEvery: 5, normalizeActivations: "expected_norm" as const, progress: false };
    const out = join(dir, "evaluated");
    const r = trainSae(cfg, new ArraySource(data, 8), {
      ...base, outDir: out, evalEvery: 4, onLog: (m) => records.push({ ...m }),
      evaluate: (sae) => {
        seen.push({ step: records.length, xHat: sae.decode(sae.encode(x, 16)).slice() });
        return { probe: seen.length };
      },
    });
    // Steps 4 and 8 (evaluations), 5 and 10 (logs; 10 is also the last, evaluated).
    expect(records.map((m) => [m.step, m.probe])).toEqual([[4, 1], [5, undefined], [8, 2], [10, 3]]);
    // At the last step it saw the SAE as saved: raw inputs, the input scale folded in.
    const { sae } = loadSae(out);
    const saved = sae.decode(sae.encode(x, 16));
    for (let i = 0; i < saved.length; i++) expect(seen[2]!.xHat[i]!).toBeCloseTo(saved[i]!, 4);
    const plain = trainSae(cfg, new ArraySource(data, 8), base);
    for (const [name, t] of plain.sae.params) expect(r.sae.params.get(name)!.data, name).toEqual(t.data);
    expect(() => trainSae(cfg, new ArraySource(data, 8), { ...base, evalEvery: -1 })).toThrow(/evalEvery must be a non-negative integer/);
  });

  it("NaN activations stop the run with a message naming the problem", () => {
    const data = new Float32Array(100 * 4).fill(1);
    data[203] = NaN;
    const cfg = defaultConfig({ architecture: "topk", d_in: 4, d_sae: 8, k: 2 });
    expect(() => trainSae(cfg, new ArraySource(data, 4, 0, {}, false), { steps: 5, batchSize: 10, lr: 1e-3, progress: false }))
      .toThrow(/non-finite activation NaN/);
  });

  it("refuses to resume a checkpoint of another architecture", () => {
    const out = join(dir, "mismatch");
    const source = () => new SuperpositionSource({ d: 16, nFeatures: 20 });
    trainSae(defaultConfig({ architecture: "topk", d_in: 16, d_sae: 32, k: 2 }), source(), { steps: 4, batchSize: 32, lr: 1e-3, outDir: out, progress: false });
    expect(() => trainSae(defaultConfig({ architecture: "relu", d_in: 16, d_sae: 32 }), source(), { steps: 4, batchSize: 32, lr: 1e-3, outDir: out, resume: true, progress: false }))
      .toThrow(/checkpoint is a topk SAE 16x32, not the requested relu/);
  });

  it("says which settings a resumed run keeps instead of the ones given, and how often it goes over fixed data", () => {
    const out = join(dir, "resume-notice");
    const data = new Float32Array(100 * 16);
    new SuperpositionSource({ d: 16, nFeatures: 20 }).sample(data, 100);
    const base = { batchSize: 32, lr: 1e-3, outDir: out, progress: false, checkpointEvery: 2 };
    const notices: string[] = [];
    const onNotice = (m: string) => notices.push(m);
    const cfg = (k: number) => defaultConfig({ architecture: "topk", d_in: 16, d_sae: 32, k });
    trainSae(cfg(2), new ArraySource(data, 16), { ...base, steps: 4, onNotice });
    // 4 x 32 rows from 100: 1.28 passes.
    expect(notices).toEqual(["4 steps x 32 rows = 128 rows from 100: 1.3 passes over the data (each reshuffled)"]);
    notices.length = 0;
    const again = trainSae(cfg(4), new ArraySource(data, 16), { ...base, steps: 6, lr: 2e-3, resume: true, onNotice });
    expect(again.steps).toBe(4); // the run's own length
    expect(again.sae.cfg).toMatchObject({ k: 2 });
    expect(notices).toHaveLength(2);
    expect(notices[0]).toContain("resuming continues the run with the settings it started with");
    expect(notices[0]).toMatch(/k 4 \(the run's: 2\).*steps 6 \(the run's: 4\).*lr 0\.002 \(the run's: 0\.001\)/);
    notices.length = 0;
    trainSae(cfg(2), new ArraySource(data, 16), { ...base, steps: 4, resume: true, onNotice });
    expect(notices.filter((m) => m.includes("resuming"))).toEqual([]); // the same settings: nothing to say
  });
});
