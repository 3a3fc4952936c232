/**
 * The matching pursuit SAE: codes on a dictionary where the answer is known, SAELens'
 * stopping rules, codes equal to a plain float64 pursuit, SAELens-format files both ways
 * (with the input scale folded in), and training that finds superposed features. Its
 * gradients are checked with every architecture's in gradients.test.ts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { saeConfigFromOptions } from "../../src/cli/train.js";
import { Rng } from "../../src/core/rng.js";
import { readSafetensors, writeSafetensors } from "../../src/core/safetensors.js";
import { Tensor } from "../../src/core/tensor.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae, withInferenceK } from "../../src/sae/registry.js";
import { loadSae, saveSae } from "../../src/sae/saelens.js";
import type { Sae } from "../../src/sae/sae.js";
import { type SparseCode, toDense } from "../../src/sae/sparse-code.js";
import { InMemoryTraining } from "../../src/train/in-memory.js";
import { trainSaes } from "../../src/train/trainer.js";
import { ArraySource } from "../../src/data/array-source.js";
import { SuperpositionSource, scoreFeatureRecovery } from "../../src/synthetic/superposition.js";
import { maxAbsDiff, randn, tempDir } from "../helpers.js";

const dir = tempDir();

function mpSae(W: number[][], b_dec: number[], extra: Record<string, unknown> = {}): Sae {
  const d = W[0]!.length;
  return createSae(defaultConfig({ architecture: "mp", d_in: d, d_sae: W.length, ...extra }),
    new Map([["W_dec", new Tensor([W.length, d], Float32Array.from(W.flat()))], ["b_dec", new Tensor([d], Float32Array.from(b_dec))]]));
}

const entries = (code: SparseCode, b: number) =>
  Array.from({ length: code.rowPtr[b + 1]! - code.rowPtr[b]! }, (_, i) => [code.idx[code.rowPtr[b]! + i]!, code.val[code.rowPtr[b]! + i]!]);

/** A plain float64 pursuit, as SAELens' loop reads: returns the dense code. */
function pursuit64(W: Float32Array, m: number, d: number, r: Float64Array, maxIterations: number, threshold: number): Float64Array {
  const f = new Float64Array(m);
  for (let t = 0; t < maxIterations; t++) {
    let best = 0, bestCorr = -Infinity;
    for (let j = 0; j < m; j++) {
      let c = 0;
      for (let i = 0; i < d; i++) c += r[i]! * W[j * d + i]!;
      if (c > bestCorr) { bestCorr = c; best = j; }
    }
    const a = Math.max(0, bestCorr);
    const grew = a > 0 && f[best] === 0;
    f[best]! += a;
    for (let i = 0; i < d; i++) r[i]! -= a * W[best * d + i]!;
    if (!grew || Math.hypot(...r) < threshold) break;
  }
  return f;
}

describe("matching pursuit SAE", () => {
  it("on an orthonormal dictionary, takes the positive coordinates largest first and stops at a closed ReLU", () => {
    const I = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
    const sae = mpSae(I, [0.5, 0, 0, 0]);
    const x = Float32Array.from([3.5, -1, 2, 0, /* second token */ -1, -2, 0, -3]);
    const code = sae.encode(x, 2);
    // x - b_dec = (3, -1, 2, 0): latent 0 takes 3, latent 2 takes 2; then every correlation is <= 0.
    expect(entries(code, 0)).toEqual([[0, 3], [2, 2]]);
    expect(entries(code, 1)).toEqual([]); // nothing positive to take
    expect([...sae.decode(code)]).toEqual([3.5, 0, 2, 0, 0.5, 0, 0, 0]);
    // As SAELens' tied decoder: without b_dec on the input, b_dec is not added back either.
    const raw = mpSae(I, [0.5, 0, 0, 0], { apply_b_dec_to_input: false });
    const rawCode = raw.encode(x, 2);
    expect(entries(rawCode, 0)).toEqual([[0, 3.5], [2, 2]]);
    expect([...raw.decode(rawCode)]).toEqual([3.5, 0, 2, 0, 0, 0, 0, 0]);
  });

  it("stops when a latent is chosen again (its amount still counts), at the residual threshold, and at max_iterations", () => {
    // Two atoms 120 degrees apart, so taking the second gives back some of the first.
    const W = [[1, 0], [-0.5, Math.sqrt(3) / 2]];
    const x = Float32Array.from([2, 1]);
    const free = mpSae(W, [0, 0], { residual_threshold: 0, max_iterations: 5 }).encode(x, 1);
    // Step 1: latent 0 takes 2, leaving (0, 1); step 2: latent 1 takes sqrt(3)/2, leaving
    // (sqrt(3)/4, 1/4); step 3 picks latent 0 again, taking sqrt(3)/4: the support stopped
    // growing, so the pursuit ends, with that step's amount added.
    expect(entries(free, 0).map(([j]) => j)).toEqual([0, 1]);
    expect(entries(free, 0)[0]![1]).toBeCloseTo(2 + Math.sqrt(3) / 4, 6);
    expect(entries(free, 0)[1]![1]).toBeCloseTo(Math.sqrt(3) / 2, 6);
    expect(entries(mpSae(W, [0, 0], { max_iterations: 1 }).encode(x, 1), 0)).toEqual([[0, 2]]);
    // train --k and eval --sae-k mean at most k steps; a library config with a k is refused.
    const fromCli = saeConfigFromOptions({ arch: "mp", k: 4 }, 8, 100);
    expect(fromCli).toMatchObject({ architecture: "mp", max_iterations: 4 });
    expect("k" in fromCli).toBe(false);
    expect(() => defaultConfig({ architecture: "mp", d_in: 4, d_sae: 8, k: 2 })).toThrow(/a matching pursuit has no k/);
    expect(entries(withInferenceK(mpSae(W, [0, 0], { max_iterations: 5 }), 1).encode(x, 1), 0)).toEqual([[0, 2]]);
    // After step 1 the residual (0, 1) has norm 1: a threshold above that stops there.
    expect(entries(mpSae(W, [0, 0], { residual_threshold: 1.01 }).encode(x, 1), 0)).toEqual([[0, 2]]);
  });

  it("gives the codes of a plain float64 pursuit on random unit-norm dictionaries", () => {
    const rng = new Rng(3);
    const [d, m, batch] = [24, 96, 50];
    const W = randn(rng, m * d);
    for (let j = 0; j < m; j++) {
      const row = W.subarray(j * d, (j + 1) * d);
      const n = Math.hypot(...row);
      row.forEach((v, i) => { row[i] = v / n; });
    }
    const b_dec = randn(rng, d, 0.1);
    for (const [maxIterations, threshold] of [[24, 0.01], [5, 0], [24, 1.5]] as const) {
      const sae = createSae(defaultConfig({ architecture: "mp", d_in: d, d_sae: m, max_iterations: maxIterations, residual_threshold: threshold }),
        new Map([["W_dec", new Tensor([m, d], W)], ["b_dec", new Tensor([d], b_dec)]]));
      const x = randn(rng, batch * d);
      const got = toDense(sae.encode(x, batch));
      let l0 = 0;
      for (let b = 0; b < batch; b++) {
        const r = Float64Array.from(x.subarray(b * d, (b + 1) * d), (v, i) => v - b_dec[i]!);
        const want = pursuit64(W, m, d, r, maxIterations, threshold);
        for (let j = 0; j < m; j++) {
          expect(got[b * m + j] !== 0, `token ${b} latent ${j}`).toBe(want[j] !== 0);
          expect(Math.abs(got[b * m + j]! - want[j]!)).toBeLessThan(1e-4);
          if (want[j] !== 0) l0++;
        }
      }
      if (maxIterations === 5) expect(l0 / batch).toBeLessThanOrEqual(5);
      expect(l0 / batch).toBeGreaterThan(1); // the pursuits run several steps
    }
  });

  it("is written as SAELens' matching_pursuit (W_dec and b_dec, its whole state dict) and read back from SAELens' own cfg.json", () => {
    const sae = createSae(defaultConfig({ architecture: "mp", d_in: 4, d_sae: 6, max_iterations: 3 }));
    new Rng(5).fillNormal(sae.params.get("W_dec")!.data, 0.5);
    const out = join(dir, "mp");
    saveSae(out, sae, { inputScale: 2 });
    const { raw } = loadSae(out);
    expect(raw).toMatchObject({ architecture: "matching_pursuit", d_in: 4, d_sae: 6, residual_threshold: 0.005, max_iterations: 3 });
    const weights = readSafetensors(join(out, "sae_weights.safetensors")).tensors;
    expect([...weights.keys()].sort()).toEqual(["W_dec", "b_dec"]);

    // The same tensors under a cfg.json as SAELens writes it (max_iterations None).
    const lens = join(dir, "mp-lens");
    mkdirSync(lens, { recursive: true });
    writeFileSync(join(lens, "cfg.json"), JSON.stringify({
      architecture: "matching_pursuit", d_in: 4, d_sae: 6, dtype: "float32", device: "cpu", apply_b_dec_to_input: true,
      normalize_activations: "none", reshape_activations: "none", residual_threshold: 0.05, max_iterations: null, metadata: {},
    }));
    writeSafetensors(join(lens, "sae_weights.safetensors"), Object.fromEntries(weights));
    const loaded = loadSae(lens).sae;
    expect(loaded.cfg).toMatchObject({ architecture: "mp", residual_threshold: 0.05, max_iterations: 4, apply_b_dec_to_input: true });
    expect([...loaded.params.keys()].sort()).toEqual(["W_dec", "b_dec"]);
  });

  it("folds an input scale into b_dec and the residual threshold: the saved SAE takes raw activations", () => {
    const sae = createSae(defaultConfig({ architecture: "mp", d_in: 8, d_sae: 20, residual_threshold: 0.3 }));
    const rng = new Rng(8);
    const W = sae.params.get("W_dec")!.data;
    rng.fillNormal(W);
    for (let j = 0; j < 20; j++) { const row = W.subarray(j * 8, j * 8 + 8); const n = Math.hypot(...row); row.forEach((v, i) => { row[i] = v / n; }); }
    rng.fillNormal(sae.params.get("b_dec")!.data, 0.2);
    const s = 2.5;
    const out = join(dir, "mp-scaled");
    saveSae(out, sae, { inputScale: s });
    const raw = randn(rng, 30 * 8);
    const scaled = Float32Array.from(raw, (v) => v * s);
    const want = Float32Array.from(sae.decode(sae.encode(scaled, 30)), (v) => v / s);
    const loaded = loadSae(out).sae;
    expect(maxAbsDiff(loaded.decode(loaded.encode(raw, 30)), want)).toBeLessThan(1e-5);
  });

  it("refuses to be trained as a transcoder: its pursuit subtracts output-space rows from the input", () => {
    const cfg = defaultConfig({ architecture: "mp", d_in: 4, d_sae: 8, apply_b_dec_to_input: false });
    // Rows of [input | target], as a store harvested with --target-hook gives them.
    const pairs = new ArraySource(randn(new Rng(1), 64 * 8), 8);
    expect(() => trainSaes([{ cfg, options: { steps: 1, batchSize: 16, lr: 1e-3, progress: false }, part: { offset: 0, targetOffset: 4 } }], pairs))
      .toThrow(/a matching pursuit cannot be a transcoder/);
  });

  it("trains on superposed features: unit-norm atoms that match the true ones, few latents per token", () => {
    const source = new SuperpositionSource({ d: 32, nFeatures: 96, seed: 4 });
    const rows = 16384;
    const data = new Float32Array(rows * 32);
    source.next(data, rows);
    // At most 6 steps per token (measured: every feature recovered, FVU 0.05, L0 5.6).
    const run = new InMemoryTraining(defaultConfig({ architecture: "mp", d_in: 32, d_sae: 192, max_iterations: 6 }),
      { data, rows, d: 32 }, { steps: 300, batchSize: 1024, lr: 1e-2, seed: 1 });
    const last = run.run(300).at(-1)!;
    const score = scoreFeatureRecovery(source.features, run.sae.params.get("W_dec")!.data, 32);
    expect(score.recovered).toBeGreaterThan(0.9);
    expect(last.fvu).toBeLessThan(0.1);
    expect(last.l0).toBeLessThanOrEqual(6);
  });
});
