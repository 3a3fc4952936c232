/**
 * Training in memory (what the web explorer runs) is trainSae without the files: the same
 * data, seed and options give the same weights, bit for bit, however the steps are split.
 */
import { describe, expect, it } from "vitest";
import { ArraySource } from "../../src/data/array-source.js";
import { defaultConfig } from "../../src/sae/config.js";
import { SuperpositionSource } from "../../src/synthetic/superposition.js";
import { InMemoryTraining } from "../../src/train/in-memory.js";
import { trainSae } from "../../src/train/trainer.js";

describe("in-memory training", () => {
  const d = 16;
  const rows = 3000;
  const data = new Float32Array(rows * d);
  new SuperpositionSource({ d, nFeatures: 48, seed: 4 }).next(data, rows);
  const acts = { data, rows, d };
  const opts = { steps: 40, batchSize: 128, lr: 2e-3, seed: 3, deadAfterTokens: 1000 };

  for (const [name, cfg] of [
    ["topk + AuxK", defaultConfig({ architecture: "topk", d_in: d, d_sae: 64, k: 4, aux_k: 8 })],
    ["jumprelu, normalized inputs", defaultConfig({ architecture: "jumprelu", d_in: d, d_sae: 64 })],
  ] as const) {
    it(`${name}: the same weights as trainSae, in steps of any size`, () => {
      const normalize = name.includes("normalized") ? "expected_norm" as const : "none" as const;
      const want = trainSae(cfg, new ArraySource(data, d, opts.seed), { ...opts, normalizeActivations: normalize, progress: false });
      const t = new InMemoryTraining(cfg, acts, { ...opts, normalizeActivations: normalize });
      const records = [...t.run(7), ...t.run(30), ...t.run(100)];
      expect(t.done).toBe(true);
      expect(records.map((r) => r.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(t.inputScale).toBe(want.inputScale);
      for (const [p, tensor] of t.sae.params) expect(Buffer.from(tensor.data.buffer).equals(Buffer.from(want.sae.params.get(p)!.data.buffer)), p).toBe(true);
      // The metrics a step reports: FVU falls as it learns.
      expect(records.at(-1)!.fvu).toBeLessThan(records[0]!.fvu);
      // result() takes raw inputs: the input scale is folded into its weights.
      const x = data.subarray(0, 10 * d);
      const scaled = Float32Array.from(x, (v) => v * t.inputScale);
      const a = t.result().decode(t.result().encode(x, 10)).slice();
      const b = t.sae.decode(t.sae.encode(scaled, 10)).map((v) => v / t.inputScale);
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 4);
    });
  }

  it("with muon and p-annealing: the same weights as trainSae (its weight decay and schedule, p's updates)", () => {
    const cfg = defaultConfig({ architecture: "panneal", d_in: d, d_sae: 64, l1_coefficient: 0.05, anneal_start: 10 });
    const o = { ...opts, optimizer: "muon" as const };
    const want = trainSae(cfg, new ArraySource(data, d, opts.seed), { ...o, progress: false });
    const t = new InMemoryTraining(cfg, acts, o);
    const records = [...t.run(17), ...t.run(100)];
    for (const [p, tensor] of t.result().params) expect(Array.from(tensor.data), p).toEqual(Array.from(want.sae.params.get(p)!.data));
    expect(records.at(-1)!.p).toBeLessThan(1); // annealed
  });

  it("with signum: the SAE trainSae saves (the running average), while training goes on from its own point", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: d, d_sae: 64, k: 4 });
    const o = { ...opts, optimizer: "signum" as const, lr: 1e-2 };
    const want = trainSae(cfg, new ArraySource(data, d, opts.seed), { ...o, progress: false });
    const t = new InMemoryTraining(cfg, acts, o);
    t.run(13);
    t.run(100);
    const result = t.result();
    for (const [p, tensor] of result.params) {
      expect(Array.from(tensor.data), p).toEqual(Array.from(want.sae.params.get(p)!.data));
      expect(Array.from(t.sae.params.get(p)!.data), p).not.toEqual(Array.from(tensor.data));
    }
  });
});
