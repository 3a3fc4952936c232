/**
 * exploreActivations: its metrics and latent analysis from one pass of the SAE agree with
 * the separate calls (ReconstructionMetrics, analyzeLatents), and latentDetail with a recount.
 */
import { describe, expect, it } from "vitest";
import { exploreActivations, latentDetail } from "../../src/analysis/explore.js";
import { analyzeLatents } from "../../src/analysis/latents.js";
import { Rng } from "../../src/core/rng.js";
import { ReconstructionMetrics } from "../../src/eval/metrics.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { toDense } from "../../src/sae/sparse-code.js";

describe("exploreActivations", () => {
  const d = 8, m = 32, rows = 500;
  const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 3 }));
  const rng = new Rng(4);
  for (const t of sae.params.values()) rng.fillNormal(t.data, 0.4);
  const data = rng.fillNormal(new Float32Array(rows * d));
  const acts = { data, rows, d };

  it("gives the metrics and the analysis of the separate calls, batch by batch", () => {
    const e = exploreActivations(sae, acts, { batch: 128 });
    expect(e.analysis).toEqual(analyzeLatents(sae, data, rows, { maxPoints: 0, batch: 128 }));
    const rec = new ReconstructionMetrics(d);
    rec.add(data, sae.decode(sae.encode(data, rows)), rows);
    expect(e.reconstruction.fvu).toBeCloseTo(rec.result().fvu, 10);
    expect(Object.keys(e.figures)).toEqual(["density", "max-activations"]);
  });

  it("latentDetail lists the rows where the latent fires hardest", () => {
    const dense = toDense(sae.encode(data, rows));
    const j = 5;
    const fired = [...Array(rows).keys()].filter((r) => dense[r * m + j] !== 0)
      .sort((a, b) => Math.abs(dense[b * m + j]!) - Math.abs(dense[a * m + j]!) || a - b);
    const detail = latentDetail(sae, acts, j, { top: 7, batch: 100 });
    expect(detail.top.map((t) => t.row)).toEqual(fired.slice(0, 7));
    expect(detail.histogram.counts.reduce((a, b) => a + b, 0)).toBe(fired.length);
  });
});
