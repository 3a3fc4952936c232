/**
 * Dead-latent resampling: the rows it writes (against the recipe in resample.ts), what it
 * leaves alone, and what it does to a run whose L1 penalty kills latents.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { markFired } from "../../src/sae/sparse-code.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { Adam } from "../../src/train/adam.js";
import { resampleDeadLatents } from "../../src/train/resample.js";
import { type MetricsRecord, trainSae } from "../../src/train/trainer.js";

describe("dead-latent resampling", () => {
  it("points each dead latent at a distinct badly reconstructed row and resets its Adam state", () => {
    const d = 8, m = 20, B = 64;
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 3 }));
    const rng = new Rng(1);
    for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
    const adam = new Adam(sae.params);
    for (const t of [...adam.m.values(), ...adam.v.values()]) t.data.fill(0.5);
    const x = rng.fillNormal(new Float32Array(B * d));
    const dead = Uint8Array.from({ length: m }, (_, j) => (j % 4 === 1 ? 1 : 0));
    const before = new Map([...sae.params].map(([n, t]) => [n, t.data.slice()]));
    const norms = (name: string) => Array.from({ length: m }, (_, j) => Math.hypot(...before.get(name)!.subarray(j * d, (j + 1) * d)));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const encAlive = mean(norms("W_enc").filter((_, j) => !dead[j]));
    const decAlive = mean(norms("W_dec").filter((_, j) => !dead[j]));

    const resampled = resampleDeadLatents(sae, adam, x, B, dead, 7, 100);
    expect(resampled).toEqual([1, 5, 9, 13, 17]);
    const W_enc = sae.params.get("W_enc")!.data, W_dec = sae.params.get("W_dec")!.data;
    const rowsUsed = new Set<number>();
    for (const j of resampled) {
      const dir = Array.from(W_dec.subarray(j * d, (j + 1) * d));
      expect(Math.hypot(...dir)).toBeCloseTo(decAlive, 5);
      // Parallel to one row of the batch, a different one for each latent.
      const b = [...Array(B).keys()].find((r) => {
        const row = Array.from(x.subarray(r * d, (r + 1) * d));
        const n = Math.hypot(...row);
        return row.every((v, c) => Math.abs((v / n) * decAlive - dir[c]!) < 1e-5);
      });
      expect(b).toBeDefined();
      rowsUsed.add(b!);
      for (let c = 0; c < d; c++) expect(W_enc[j * d + c]).toBeCloseTo((dir[c]! / decAlive) * 0.2 * encAlive, 5);
      expect(sae.params.get("b_enc")!.data[j]).toBe(0);
      for (const t of [...adam.m.values(), ...adam.v.values()]) {
        if (t.shape[0] === m) expect(t.data.subarray(j * (t.numel / m), (j + 1) * (t.numel / m)).every((v) => v === 0)).toBe(true);
      }
    }
    expect(rowsUsed.size).toBe(resampled.length);
    // Live latents and the shared bias are untouched, and so is their Adam state.
    for (const [name, t] of sae.params) {
      const old = before.get(name)!;
      const width = t.shape[0] === m ? t.numel / m : 0;
      for (let i = 0; i < t.numel; i++) {
        if (width && dead[Math.floor(i / width)]) continue;
        expect(t.data[i], `${name}[${i}]`).toBe(old[i]);
      }
    }
    expect(adam.m.get("b_dec")!.data.every((v) => v === 0.5)).toBe(true);
    // Nothing dead, nothing to do.
    expect(resampleDeadLatents(sae, adam, x, B, new Uint8Array(m), 7, 100)).toEqual([]);
  });

  it("keeps latents alive under an L1 penalty strong enough to kill nearly all of them", () => {
    // Resampled at steps 100, 200, ..., 600, then 50 more steps of training.
    const run = (resampleEvery: number) => {
      const source = new SuperpositionSource({ d: 16, nFeatures: 64, seed: 3 });
      const cfg = defaultConfig({ architecture: "relu", d_in: 16, d_sae: 128, l1_coefficient: 8 });
      const logs: MetricsRecord[] = [];
      const r = trainSae(cfg, source, { steps: 650, batchSize: 256, lr: 3e-3, seed: 2, progress: false, resampleEvery, logEvery: 100, onLog: (m) => logs.push(m) });
      const x = new Float32Array(4096 * 16);
      source.next(x, 4096);
      const fired = markFired(r.sae.encode(x, 4096), new Uint8Array(128));
      return { alive: fired.reduce((a, v) => a + v, 0) / 128, resampled: logs.map((m) => m.resampled) };
    };
    const without = run(0);
    const withResampling = run(100);
    // Measured: 0.04 of the latents fire on held-out data without, 0.30 with.
    expect(without.alive).toBeLessThan(0.1);
    expect(withResampling.alive).toBeGreaterThan(without.alive + 0.2);
    // Each metrics record counts the latents resampled in its window (measured: 1 at step
    // 100, then 69, 79, 99, 96, 92, and 0 after step 600).
    expect(without.resampled.every((n) => n === undefined)).toBe(true);
    expect(withResampling.resampled.slice(1, 6).every((n) => n! > 0)).toBe(true);
    expect(withResampling.resampled[6]).toBe(0);
  });
});
