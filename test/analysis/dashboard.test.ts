/**
 * Feature dashboards against a brute-force recount: the same contexts run through the model
 * by hand, every position encoded densely, and each dashboard field recomputed from that.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dashboardHtml } from "../../src/analysis/dashboard-html.js";
import { buildDashboards, parseLatentList } from "../../src/analysis/dashboard.js";
import { Rng } from "../../src/core/rng.js";
import { openContexts } from "../../src/lm/dataset.js";
import { loadModel } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { toDense } from "../../src/sae/sparse-code.js";
import { tempDir } from "../helpers.js";
import { writeTinyNeox } from "../lm/fixtures.js";

const dir = tempDir();
const textPath = join(dir, "stories.txt");
writeFileSync(textPath, Array.from({ length: 40 }, (_, i) =>
  `Once upon a time there was a cat number ${i}. The cat sat on the mat and ate ${i % 7} fish.`).join("<|endoftext|>"));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe("feature dashboards", async () => {
  const loaded = await loadModel(writeTinyNeox(join(dir, "model"), { seed: 6 }));
  const { model, tokenizer } = loaded;
  const d = model.cfg.dModel;
  const ctx = 16;
  const hook = "blocks.0.hook_resid_post";
  const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 24, k: 4 }));
  const rng = new Rng(2);
  for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
  const latents = [0, 5, 11, 23];
  const contexts = () => openContexts(loaded, textPath, { ctx, prependBos: true }).contexts;

  it("every field agrees with a brute-force recount over the same positions", async () => {
    const dash = await buildDashboards(model, tokenizer, sae, contexts(), { hook, latents, tokens: 150, ctx, batch: 3, topExamples: 5, window: [3, 2] });
    // By hand: the first 10 contexts (150 / 15 non-BOS positions), BOS left out.
    const all = (await collect(contexts())).slice(0, 10);
    expect(dash.contexts).toBe(10);
    expect(dash.tokens).toBe(150);
    const dense: number[][] = all.map((c) => {
      let act: Float32Array | null = null;
      model.forward(c, 1, ctx, { output: "none", hooks: { [hook]: (a) => { act = a.slice(); } } });
      return [...toDense(sae.encode(act!.subarray(d), ctx - 1))];
    });
    const valueAt = (c: number, t: number, j: number) => (t === 0 ? 0 : dense[c]![(t - 1) * 24 + j]!);
    for (const [s, j] of latents.entries()) {
      const l = dash.latents[s]!;
      const fired: Array<{ c: number; t: number; v: number }> = [];
      for (let c = 0; c < 10; c++) for (let t = 1; t < ctx; t++) if (valueAt(c, t, j) !== 0) fired.push({ c, t, v: valueAt(c, t, j) });
      expect(l.latent).toBe(j);
      expect(l.density).toBeCloseTo(fired.length / 150, 12);
      expect(l.max_activation).toBeCloseTo(Math.max(0, ...fired.map((f) => Math.abs(f.v))), 6);
      expect(l.histogram.counts.reduce((a, b) => a + b, 0)).toBe(fired.length);
      // Top examples: the strongest position of each context, strongest contexts first.
      const bestPerContext = new Map<number, { t: number; v: number }>();
      for (const f of fired) if (!bestPerContext.has(f.c) || f.v > bestPerContext.get(f.c)!.v) bestPerContext.set(f.c, f);
      const expected = [...bestPerContext.entries()].sort((a, b) => b[1].v - a[1].v).slice(0, 5);
      expect(l.top_examples.map((e) => [e.context, e.position])).toEqual(expected.map(([c, f]) => [c, f.t]));
      for (const e of l.top_examples) {
        expect(e.tokens).toEqual([...all[e.context]!.subarray(e.position - e.focus, e.position - e.focus + e.tokens.length)]);
        expect(e.acts.map((a, w) => a - valueAt(e.context, e.position - e.focus + w, j)).every((x) => Math.abs(x) < 1e-6)).toBe(true);
        expect(e.text).toEqual(e.tokens.map((id) => tokenizer!.decode([id])));
      }
      // Quantile groups partition the activations, weakest group first.
      const groups = l.quantile_examples;
      for (let q = 1; q < groups.length; q++) expect(groups[q]!.range[0]).toBeGreaterThanOrEqual(groups[q - 1]!.range[1]);
      // Logit effects: W_U W_dec[j], the largest and smallest over the vocabulary.
      const V = model.cfg.vocabSize;
      const W_dec = sae.params.get("W_dec")!.data;
      const effect = Array.from({ length: V }, (_, v) => {
        let s2 = 0;
        for (let c = 0; c < d; c++) s2 += model.weights.unembed[v * d + c]! * W_dec[j * d + c]!;
        return s2;
      });
      const order = [...effect.keys()].sort((a, b) => effect[b]! - effect[a]!);
      expect(l.logits.top.map((t) => t.token)).toEqual(order.slice(0, 10));
      expect(l.logits.bottom.map((t) => t.token)).toEqual(order.slice(-10).reverse());
      expect(l.logits.top[0]!.value).toBeCloseTo(effect[order[0]!]!, 4);
    }
    const html = dashboardHtml(dash, { model: "tiny", sae: "random", dataset: "stories.txt" });
    expect(html.match(/<section id="latent-/g)).toHaveLength(4);
    expect(html).toContain('href="#latent-23"');
  });

  it("reads latent lists and refuses bad ones", () => {
    expect(parseLatentList("0-3,9,2", 16)).toEqual([0, 1, 2, 3, 9]);
    expect(() => parseLatentList("5-2", 16)).toThrow(/runs backwards/);
    expect(() => parseLatentList("0-16", 16)).toThrow(/latent 16 is outside 0..15/);
    expect(() => parseLatentList("a", 16)).toThrow(/not a latent list/);
  });
});
