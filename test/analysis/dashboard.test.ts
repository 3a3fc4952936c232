/**
 * Feature dashboards against a brute-force recount: the same contexts run through the model
 * by hand, every position encoded densely, and each dashboard field recomputed from that.
 */
import { describe, expect, it, vi } from "vitest";
import { dashboardHtml } from "../../src/analysis/dashboard-html.js";
import { buildDashboards, DashboardCache, parseLatentList } from "../../src/analysis/dashboard.js";
import { promptLatents, promptView } from "../../src/analysis/prompt-view.js";
import { createSae } from "../../src/sae/registry.js";
import { toDense } from "../../src/sae/sparse-code.js";
import { tempDir } from "../helpers.js";
import { dashboardFixture } from "./dashboard-fixture.js";

const dir = tempDir();

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe("feature dashboards", async () => {
  const { model, tokenizer, sae, ctx, hook, contexts } = await dashboardFixture(dir);
  const d = model.cfg.dModel;
  const latents = [0, 5, 11, 23];

  it("every field agrees with a brute-force recount over the same positions", async () => {
    const dash = await buildDashboards(model, tokenizer, sae, contexts(), { hook, latents, tokens: 150, ctx, batch: 3, topExamples: 5, window: [3, 2] });
    // By hand: the first 10 contexts (150 / 15 non-BOS positions), BOS left out.
    const all = (await collect(contexts())).slice(0, 10);
    expect(dash.contexts).toBe(10);
    expect(dash.tokens).toBe(150);
    const acts: Float32Array[] = [];
    const dense: number[][] = all.map((c) => {
      let act: Float32Array | null = null;
      model.forward(c, 1, ctx, { output: "none", hooks: { [hook]: (a) => { act = a.slice(); } } });
      acts.push(act!.subarray(d));
      return [...toDense(sae.encode(act!.subarray(d), ctx - 1))];
    });
    // Every non-BOS position: its activation and its dense code, for the feature tables.
    const xs = acts.flatMap((a) => Array.from({ length: ctx - 1 }, (_, t) => Array.from(a.subarray(t * d, (t + 1) * d))));
    const fs = dense.flatMap((row) => Array.from({ length: ctx - 1 }, (_, t) => row.slice(t * 24, (t + 1) * 24)));
    const pearson = (a: number[], b: number[]) => {
      const ma = a.reduce((x, y) => x + y, 0) / a.length, mb = b.reduce((x, y) => x + y, 0) / b.length;
      let ab = 0, aa = 0, bb = 0;
      a.forEach((v, i) => { ab += (v - ma) * (b[i]! - mb); aa += (v - ma) ** 2; bb += (b[i]! - mb) ** 2; });
      return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : NaN;
    };
    const top3 = (scores: number[], skip: number) =>
      [...scores.keys()].filter((i) => i !== skip && Number.isFinite(scores[i]!)).sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, 3);
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
      expect(groups.reduce((a, g) => a + g.count, 0)).toBe(fired.length);
      for (const g of groups) expect(g.count).toBeGreaterThanOrEqual(Math.floor(fired.length / groups.length));
      // Logit effects: W_U W_dec[j], the largest and smallest over the vocabulary.
      const V = model.cfg.vocabSize;
      const W_dec = sae.params.get("W_dec")!.data;
      const effect = Array.from({ length: V }, (_, v) => {
        let s2 = 0;
        for (let c = 0; c < d; c++) s2 += model.weights.unembed![v * d + c]! * W_dec[j * d + c]!;
        return s2;
      });
      const order = [...effect.keys()].sort((a, b) => effect[b]! - effect[a]!);
      expect(l.logits.top.map((t) => t.token)).toEqual(order.slice(0, 10));
      expect(l.logits.bottom.map((t) => t.token)).toEqual(order.slice(-10).reverse());
      expect(l.logits.top[0]!.value).toBeCloseTo(effect[order[0]!]!, 4);
      // Their histogram: every token of the vocabulary once, 40 bins from the smallest effect (or 0) up.
      expect(l.logits.histogram.counts).toHaveLength(40);
      expect(l.logits.histogram.counts.reduce((a, b) => a + b, 0)).toBe(V);
      expect(l.logits.histogram.edges[0]).toBeCloseTo(Math.min(0, effect[order[V - 1]!]!), 4);
      expect(l.logits.histogram.edges[40]).toBeCloseTo(Math.max(0, effect[order[0]!]!), 4);
      // Feature tables: decoder alignment, and Pearson correlations over the same positions.
      const row = Array.from(W_dec.subarray(j * d, (j + 1) * d));
      const l1 = row.reduce((a, v) => a + Math.abs(v), 0);
      const norm = Math.hypot(...row);
      expect(l.tables.neuron_alignment.map((r) => r.index)).toEqual(top3(row.map(Math.abs), -1));
      for (const r of l.tables.neuron_alignment) expect(r.l1_share).toBeCloseTo(Math.abs(row[r.index]!) / l1, 6);
      const fj = fs.map((f) => f[j]!);
      const neuronCorr = Array.from({ length: d }, (_, i) => pearson(fj, xs.map((x) => x[i]!)));
      expect(l.tables.correlated_neurons.map((r) => r.index)).toEqual(top3(neuronCorr, -1));
      for (const r of l.tables.correlated_neurons) {
        expect(r.pearson).toBeCloseTo(neuronCorr[r.index]!, 6);
        expect(r.cosine!).toBeCloseTo(row[r.index]! / norm, 6);
      }
      const featureCorr = Array.from({ length: 24 }, (_, k) => pearson(fj, fs.map((f) => f[k]!)));
      expect(l.tables.correlated_features.map((r) => r.index)).toEqual(top3(featureCorr, j));
      if (fired.length > 0) expect(l.tables.correlated_features).toHaveLength(3);
      for (const r of l.tables.correlated_features) {
        expect(r.pearson).toBeCloseTo(featureCorr[r.index]!, 6);
        const other = Array.from(W_dec.subarray(r.index * d, (r.index + 1) * d));
        expect(r.cosine!).toBeCloseTo(row.reduce((a, v, i) => a + v * other[i]!, 0) / (norm * Math.hypot(...other)), 6);
      }
    }
    // With a cache: filled by one call, read by the next (no model run, no encoding), the same dashboards.
    const cache = new DashboardCache();
    const opts = { hook, latents, tokens: 150, ctx, batch: 3, topExamples: 5, window: [3, 2] as [number, number], cache };
    expect(await buildDashboards(model, tokenizer, sae, contexts(), opts)).toEqual(dash);
    expect([0, 1, 2, 3, 4].map((b) => cache.get(b)?.x.length)).toEqual([45 * d, 45 * d, 45 * d, 15 * d, undefined]);
    expect(cache.get(3)!.code.batch).toBe(15);
    const forward = vi.spyOn(model, "activationAt");
    const encode = vi.spyOn(sae, "encode");
    expect(await buildDashboards(model, tokenizer, sae, contexts(), opts)).toEqual(dash);
    expect(forward).not.toHaveBeenCalled();
    expect(encode).not.toHaveBeenCalled();
    // A budget one byte short of everything: the last batch is not kept, and is computed again.
    const partial = new DashboardCache(cache.bytes - 1);
    await buildDashboards(model, tokenizer, sae, contexts(), { ...opts, cache: partial });
    expect(partial.get(3)).toBeUndefined();
    forward.mockClear();
    encode.mockClear();
    expect(await buildDashboards(model, tokenizer, sae, contexts(), { ...opts, cache: partial })).toEqual(dash);
    expect([forward.mock.calls.length, encode.mock.calls.length]).toEqual([1, 1]);
    forward.mockRestore();
    encode.mockRestore();
    await expect(buildDashboards(model, tokenizer, sae, contexts(), { ...opts, batch: 4 })).rejects.toThrow(/cache holds other contexts/);
    const html = dashboardHtml(dash, { model: "tiny", sae: "random", dataset: "stories.txt" });
    expect(html.match(/<section id="latent-/g)).toHaveLength(4);
    expect(html.match(/correlated features/g)).toHaveLength(4);
    expect(html).toContain('href="#latent-23"');
  });

  it("the prompt view: each token's strongest latents, and loss effects equal to ablating one by hand", () => {
    const tokens = Int32Array.from([0, ...tokenizer!.encode(" The cat sat on the mat")]);
    const T = tokens.length;
    const view = promptView(model, sae, tokens, (id) => tokenizer!.decode([id]), { hook, top: 3 });
    expect(view.map((t) => t.token)).toEqual([...tokens]);
    expect(view[0]!.top).toEqual([]); // BOS left out
    let act: Float32Array | null = null;
    const clean = model.forward(tokens, 1, T, { output: "final", hooks: { [hook]: (a) => { act = a.slice(); } } }).final!;
    const cleanLoss = model.nextTokenLosses(tokens, 1, T, clean);
    const dense = toDense(sae.encode(act!, T));
    const W_dec = sae.params.get("W_dec")!.data;
    for (const t of view.slice(1)) {
      // The strongest non-zero latents of the token, by |f|.
      const want = [...Array(24).keys()].filter((j) => dense[t.position * 24 + j] !== 0)
        .sort((a, b) => Math.abs(dense[t.position * 24 + b]!) - Math.abs(dense[t.position * 24 + a]!)).slice(0, 3);
      expect(t.top.map((l) => l.latent)).toEqual(want);
      expect(t.loss).toBe(t.position < T - 1 ? cleanLoss[t.position] : null);
    }
    const at = view.find((t) => t.position < T - 1 && t.top.length > 0)!;
    const l = at.top[0]!;
    const edited = model.forward(tokens, 1, T, {
      output: "final",
      hooks: { [hook]: (a) => { for (let c = 0; c < d; c++) a[at.position * d + c]! -= l.activation * W_dec[l.latent * d + c]!; } },
    }).final!;
    expect(l.loss_effect!).toBeCloseTo(model.nextTokenLosses(tokens, 1, T, edited)[at.position]! - cleanLoss[at.position]!, 4);
    expect(view.at(-1)!.top.every((x) => x.loss_effect === null)).toBe(true);
    // An SAE that layer-norms its input decodes a latent at the token's scale: that much is removed.
    const ln = createSae({ ...sae.cfg, input_normalization: "layer_norm" }, sae.params);
    const lnAt = promptView(model, ln, tokens, (id) => tokenizer!.decode([id]), { hook, top: 1 }).find((t) => t.position < T - 1 && t.top.length > 0)!;
    const row = Array.from(act!.subarray(lnAt.position * d, (lnAt.position + 1) * d));
    const mean = row.reduce((a, v) => a + v, 0) / d;
    const std = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / (d - 1));
    const lnTop = lnAt.top[0]!;
    const lnEdited = model.forward(tokens, 1, T, {
      output: "final",
      hooks: { [hook]: (a) => { for (let c = 0; c < d; c++) a[lnAt.position * d + c]! -= lnTop.activation * std * W_dec[lnTop.latent * d + c]!; } },
    }).final!;
    expect(lnTop.loss_effect!).toBeCloseTo(model.nextTokenLosses(tokens, 1, T, lnEdited)[lnAt.position]! - cleanLoss[lnAt.position]!, 4);
    expect(promptLatents(view, 2)).toHaveLength(2);
    const html = dashboardHtml({ hook, tokens: 0, contexts: 0, latents: [], prompt: view }, { model: "tiny", sae: "random", dataset: "-" });
    expect(html).toContain('<section id="prompt">');
  });

  it("leaves the positions of excluded tokens out wherever they stand: never an example, not counted in the densities", async () => {
    const all = (await collect(contexts())).slice(0, 10);
    // The commonest token past position 0 of these contexts.
    const counts = new Map<number, number>();
    for (const c of all) for (const t of c.subarray(1)) counts.set(t, (counts.get(t) ?? 0) + 1);
    const [common, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const opts = { hook, latents, tokens: 150, ctx, batch: 3, topExamples: 5, window: [3, 2] as [number, number] };
    const dash = await buildDashboards(model, tokenizer, sae, contexts(), { ...opts, excludeTokens: [common] });
    expect(dash.contexts).toBe(10);
    expect(dash.tokens).toBe(150 - n);
    // By hand: each latent's firings at the positions past BOS that do not hold the excluded token.
    const dense = all.map((c) => {
      let act: Float32Array | null = null;
      model.forward(c, 1, ctx, { output: "none", hooks: { [hook]: (a) => { act = a.slice(); } } });
      return toDense(sae.encode(act!.subarray(d), ctx - 1));
    });
    for (const [s, l] of dash.latents.entries()) {
      const j = latents[s]!;
      let fired = 0;
      all.forEach((c, ci) => { for (let t = 1; t < ctx; t++) if (c[t] !== common && dense[ci]![(t - 1) * 24 + j] !== 0) fired++; });
      expect(l.density).toBeCloseTo(fired / (150 - n), 12);
      expect(l.histogram.counts.reduce((a, b) => a + b, 0)).toBe(fired);
      const examples = [...l.top_examples, ...l.quantile_examples.flatMap((g) => g.examples)];
      for (const e of examples) expect(all[e.context]![e.position]).not.toBe(common);
    }
  });

  it("reads latent lists and refuses bad ones", () => {
    expect(parseLatentList("0-3,9,2", 16)).toEqual([0, 1, 2, 3, 9]);
    expect(() => parseLatentList("5-2", 16)).toThrow(/runs backwards/);
    expect(() => parseLatentList("0-16", 16)).toThrow(/latent 16 is outside 0..15/);
    expect(() => parseLatentList("a", 16)).toThrow(/not a latent list/);
  });
});
