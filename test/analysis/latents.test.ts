/** The vSAE paper's latent analyses on an SAE whose every activation is known by hand, and the report files. */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { analyzeLatents } from "../../src/analysis/latents.js";
import { writeAnalysisReport } from "../../src/analysis/report.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { tempDir } from "../helpers.js";

const dir = tempDir();

/**
 * ReLU SAE on R^2 without biases: latent 0 reads x0, latent 1 reads x1, latent 2 reads -x0,
 * latent 3 has a zero encoder and bias -1 (never fires). Decoder rows: e0, e1, -e0, e1.
 */
function handSae() {
  const sae = createSae(defaultConfig({ architecture: "relu", d_in: 2, d_sae: 4 }));
  sae.params.get("W_enc")!.data.set([1, 0, 0, 1, -1, 0, 0, 0]);
  sae.params.get("b_enc")!.data.set([0, 0, 0, -1]);
  sae.params.get("W_dec")!.data.set([1, 0, 0, 1, -1, 0, 0, 1]);
  return sae;
}
// Rows: latent 0 fires 1 and 3; latent 1 fires 2; latent 2 fires 1.
const x = Float32Array.from([1, 0, 3, 0, 0, 2, -1, 0]);

describe("latent analysis", () => {
  it("max activation, utilization, mean activation and the living fraction by hand", () => {
    const r = analyzeLatents(handSae(), x, 4, { batch: 3 });
    expect(r.max_activation).toEqual([3, 2, 1, 0]);
    expect(r.utilization).toEqual([0.5, 0.25, 0.25, 0]);
    expect(r.mean_activation).toEqual([2, 2, 1, 0]);
    expect(r.living).toBe(3);
    expect(r.living_fraction).toBe(0.75);
    // 50 bins over [0, 3]: max 3 -> last bin, 2 -> bin 33, 1 -> bin 16; the dead latent is left out.
    const h = r.max_activation_histogram;
    expect(h.edges[50]).toBe(3);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(3);
    expect([h.counts[49], h.counts[33], h.counts[16]]).toEqual([1, 1, 1]);
    // Three living latents, each its own cluster.
    expect(r.tsne!.latent).toEqual([0, 1, 2]);
    expect(r.clusters.map((c) => c.size).sort()).toEqual([1, 1, 1]);
    const clusterOf0 = r.tsne!.cluster[0]!;
    expect(r.clusters[clusterOf0]).toMatchObject({ size: 1, mean_utilization: 0.5, mean_activation: 2 });
    // Decoder directions e0, e1, -e0: each one's closest other is at cosine 0 (e1 for the
    // two opposite ones; for e1, e0 and -e0 tie and the lower latent wins).
    expect(r.decoder_similarity).toMatchObject({ max_cosine: [0, 0, 0], nearest: [1, 0, 1], mean_max_cosine: 0 });
    expect(r.decoder_similarity!.histogram.edges[0]).toBe(0);
    expect(r.decoder_similarity!.histogram.counts[0]).toBe(3);
    // e0 and -e0 are each other's antipode; e1's most opposite is at cosine 0 (a tie, the lower latent).
    expect(r.decoder_similarity).toMatchObject({ min_cosine: [-1, 0, -1], opposite: [2, 0, 0], antipodal_fraction: 2 / 3 });
    expect(r.decoder_similarity!.mean_min_cosine).toBeCloseTo(-2 / 3, 12);
  });

  it("decoder similarity: a latent that duplicates another's direction (scaled) is at cosine 1, a tilted one at its cosine", () => {
    const sae = handSae();
    // Latent 2 now decodes to 3 e0 (latent 0's direction), latent 1 to e0 + e1 (45 degrees from both).
    sae.params.get("W_dec")!.data.set([1, 0, 1, 1, 3, 0, 0, 1]);
    const r = analyzeLatents(sae, x, 4);
    const s = r.decoder_similarity!;
    expect(s.nearest).toEqual([2, 0, 0]);
    expect(s.max_cosine[0]).toBeCloseTo(1, 12);
    expect(s.max_cosine[1]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(s.max_cosine[2]).toBeCloseTo(1, 12);
    expect(s.mean_max_cosine).toBeCloseTo((2 + Math.SQRT1_2) / 3, 12);
    expect(s.histogram.counts[49]).toBe(2);
    expect(s.histogram.counts[35]).toBe(1);
    // Nothing points away from anything: the most opposite pairs are at 45 degrees.
    expect(s.opposite).toEqual([1, 0, 1]);
    s.min_cosine.forEach((v) => expect(v).toBeCloseTo(Math.SQRT1_2, 12));
    expect(s.antipodal_fraction).toBe(0);
  });

  it("samples at most maxPoints living latents for t-SNE, reproducibly", () => {
    const a = analyzeLatents(handSae(), x, 4, { maxPoints: 2, seed: 3 });
    expect(a.tsne!.latent).toHaveLength(2);
    expect(a.tsne!.latent.every((j) => j < 3)).toBe(true);
    expect(analyzeLatents(handSae(), x, 4, { maxPoints: 2, seed: 3 }).tsne).toEqual(a.tsne);
  });

  it("writes analysis.json, one SVG per figure and an HTML report with all of them", () => {
    const analysis = analyzeLatents(handSae(), x, 4);
    const out = join(dir, "report");
    const files = writeAnalysisReport(out, [{ name: "hand", source: "a hand-made SAE", analysis }]);
    expect(readdirSync(out).sort()).toEqual([...files].sort());
    const json = JSON.parse(readFileSync(join(out, "analysis.json"), "utf8"));
    expect(json[0]).toMatchObject({ name: "hand", living: 3, living_fraction: 0.75 });
    const scatter = readFileSync(join(out, "hand-tsne-clusters.svg"), "utf8");
    expect(scatter.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
    expect(scatter.trimEnd().endsWith("</svg>")).toBe(true);
    expect(scatter.match(/<circle /g)).toHaveLength(3);
    expect(files).toContain("hand-tsne-clusters.png");
    expect(readFileSync(join(out, "hand-tsne-clusters.png")).subarray(1, 4).toString("latin1")).toBe("PNG");
    const hist = readFileSync(join(out, "hand-max-activations.svg"), "utf8");
    expect(hist.match(/<rect [^>]*fill="#1f77b4"/g)).toHaveLength(50);
    const html = readFileSync(join(out, "report.html"), "utf8");
    expect(html.match(/<svg /g)).toHaveLength(6);
    expect(html).toContain("<td>hand</td><td>4</td><td>3</td><td>75.0%</td><td>4</td><td>0.000</td>");
    expect(readFileSync(join(out, "hand-decoder-similarity.svg"), "utf8")).toContain("mean cos 0.000");
  });
});
