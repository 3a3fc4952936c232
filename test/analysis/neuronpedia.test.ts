/**
 * Neuronpedia batch files: the schema SAEDashboard's NeuronpediaRunner writes (every key of
 * its NeuronpediaDashboardBatch / Feature / Activation to_dict), each field traced back to the
 * dashboard it comes from, batches split as numpy's array_split splits them, and an export
 * that resumes after a kill and refuses to mix two exports in one folder.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { buildDashboards } from "../../src/analysis/dashboard.js";
import { exportNeuronpedia } from "../../src/analysis/neuronpedia-export.js";
import { decoderHeadShares, hookLayer, latentBatches, neuronpediaBatch } from "../../src/analysis/neuronpedia.js";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { tempDir } from "../helpers.js";
import { dashboardFixture } from "./dashboard-fixture.js";

const BATCH_KEYS = ["features", "layer", "model_id", "sae_id_suffix", "sae_set"];
const FEATURE_KEYS = [
  "activations", "correlated_features_indices", "correlated_features_l1", "correlated_features_pearson",
  "correlated_neurons_indices", "correlated_neurons_l1", "correlated_neurons_pearson", "dataset", "decoder_weights_dist",
  "feature_index", "frac_nonzero", "freq_hist_data_bar_heights", "freq_hist_data_bar_values", "logits_hist_data_bar_heights",
  "logits_hist_data_bar_values", "n_prompts_total", "n_tokens_in_prompt", "neg_str", "neg_values", "neuron_alignment_indices",
  "neuron_alignment_l1", "neuron_alignment_values", "pos_str", "pos_values", "vector",
];
const ACTIVATION_KEYS = ["bin_contains", "bin_max", "bin_min", "qualifying_token_index", "tokens", "values"];

const dir = tempDir();

describe("Neuronpedia batch files", async () => {
  const { model, tokenizer, sae, ctx, hook, contexts } = await dashboardFixture(dir);
  const source = { modelId: "tiny-neox", layer: 0, saeSet: "res-test", dataset: "stories.txt", ctx };

  it("hold every field SAEDashboard writes, each from the dashboard it comes from", async () => {
    const latents = [0, 5, 11, 23];
    const dash = await buildDashboards(model, tokenizer, sae, contexts(), { hook, latents, tokens: 150, ctx, window: [ctx, ctx] });
    const batch = neuronpediaBatch(dash, source);
    expect(Object.keys(batch).sort()).toEqual(BATCH_KEYS);
    expect(batch).toMatchObject({ model_id: "tiny-neox", layer: 0, sae_set: "res-test", sae_id_suffix: null });
    const V = model.cfg.vocabSize;
    let checkedGroups = 0;
    for (const [s, f] of batch.features.entries()) {
      const l = dash.latents[s]!;
      expect(Object.keys(f).sort()).toEqual(FEATURE_KEYS);
      expect(f.feature_index).toBe(latents[s]);
      expect(f.frac_nonzero).toBe(l.density);
      expect(f).toMatchObject({ n_prompts_total: 10, n_tokens_in_prompt: ctx, dataset: "stories.txt", decoder_weights_dist: [], vector: [] });
      // Histograms: bin centres and counts; the logit effects over the whole vocabulary.
      const fired = Math.round(l.density * dash.tokens);
      if (fired > 0) {
        expect(f.freq_hist_data_bar_heights.reduce((a, b) => a + b, 0)).toBe(fired);
        expect(f.freq_hist_data_bar_values[0]).toBeCloseTo((l.histogram.edges[0]! + l.histogram.edges[1]!) / 2, 3);
      }
      expect(f.logits_hist_data_bar_heights).toHaveLength(40);
      expect(f.logits_hist_data_bar_heights.reduce((a, b) => a + b, 0)).toBe(V);
      expect(f.pos_str).toEqual(l.logits.top.map((e) => e.text));
      expect(f.neg_values[0]).toBeCloseTo(Math.min(...l.logits.bottom.map((e) => e.value)), 3); // most negative first
      expect(f.neuron_alignment_indices).toEqual(l.tables.neuron_alignment.map((r) => r.index));
      expect(f.correlated_features_l1).toEqual(l.tables.correlated_features.map((r) => Math.round(r.cosine! * 1000) / 1000));
      // Activations: the top examples, then each quantile group, every one a whole context.
      expect(f.activations).toHaveLength(l.top_examples.length + l.quantile_examples.reduce((a, q) => a + q.examples.length, 0));
      const examples = [...l.top_examples, ...l.quantile_examples.flatMap((q) => q.examples)];
      const contains = new Map<number, number>();
      for (const [i, a] of f.activations.entries()) {
        const example = examples[i]!;
        expect(Object.keys(a).sort()).toEqual(ACTIVATION_KEYS);
        expect(a.tokens).toEqual(example.text);
        expect(a.tokens).toHaveLength(ctx);
        expect(a.tokens[0]).toBe(tokenizer!.decode([0])); // BOS shown, its activation 0
        expect(a.values[0]).toBe(0);
        a.values.forEach((v, t) => expect(v).toBeCloseTo(example.acts[t]!, 3));
        expect(a.qualifying_token_index).toBe(example.position);
        expect(a.values[a.qualifying_token_index]).toBeCloseTo(example.activation, 3);
        if (i < l.top_examples.length) {
          expect(a).toMatchObject({ bin_min: -1, bin_contains: -1 });
          expect(a.bin_max).toBeCloseTo(l.max_activation, 3);
        } else {
          expect(Math.abs(example.activation)).toBeGreaterThanOrEqual(a.bin_min - 1e-3);
          expect(Math.abs(example.activation)).toBeLessThanOrEqual(a.bin_max + 1e-3);
          contains.set(a.bin_min, a.bin_contains);
        }
      }
      // The groups share out the non-zero activations.
      if (fired > 0) {
        expect(contains.size).toBe(l.quantile_examples.length);
        expect([...contains.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
        checkedGroups++;
      }
    }
    expect(checkedGroups).toBeGreaterThan(1);
  });

  it("split latents as numpy's array_split, name hooks' layers, share a hook_z decoder row by head", () => {
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    expect(latentBatches(range(300), 128).map((b) => b.length)).toEqual([100, 100, 100]);
    expect(latentBatches(range(257), 128).map((b) => b.length)).toEqual([86, 86, 85]);
    expect(latentBatches(range(5), 128)).toEqual([[0, 1, 2, 3, 4]]);
    expect(latentBatches(range(257), 128).flat()).toEqual(range(257));
    expect(latentBatches([], 128)).toEqual([]);
    expect(() => latentBatches(range(3), 0)).toThrow(/positive integer/);
    expect(hookLayer("blocks.12.attn.hook_z")).toBe(12);
    expect(hookLayer("hook_embed")).toBeNull();
    // Head norms 5, 0 and 1.
    const shares = decoderHeadShares(Float32Array.of(3, 4, 0, 0, 1, 0), 3);
    expect(shares.map((v) => v * 6)).toEqual([5, 0, 1].map((v) => expect.closeTo(v, 12)));
    expect(() => decoderHeadShares(new Float32Array(7), 3)).toThrow(/does not split into 3 heads/);
  });

  it("an export writes a batch file per group, resumes after a kill, and refuses other settings in its folder", async () => {
    const out = join(dir, "np");
    const latents = Array.from({ length: 24 }, (_, j) => j);
    const options = { out, hook, latents, tokens: 150, ctx, batch: 3, featuresPerBatch: 10, source, settings: { sae: "random" } };
    // The model runs once, over 4 forward batches of 3, 3, 3 and 1 contexts, and the SAE
    // encodes them once; the later dashboard batches read both from the cache.
    const forward = vi.spyOn(model, "activationAt");
    const encode = vi.spyOn(sae, "encode");
    const first = await exportNeuronpedia(model, tokenizer, sae, contexts(), options);
    expect(forward).toHaveBeenCalledTimes(4);
    expect(encode).toHaveBeenCalledTimes(4);
    forward.mockRestore();
    encode.mockRestore();
    expect(first).toEqual({ out, batches: 3, written: 3, skipped: 0 });
    expect(readdirSync(out).sort()).toEqual(["batch-0.json", "batch-1.json", "batch-2.json", "run_settings.json"]);
    const files = [0, 1, 2].map((n) => readFileSync(join(out, `batch-${n}.json`), "utf8"));
    expect(files.map((f) => JSON.parse(f).features.map((x: { feature_index: number }) => x.feature_index)))
      .toEqual([range(0, 8), range(8, 16), range(16, 24)]);
    // A batch built alone over the same contexts is the same batch.
    const alone = await buildDashboards(model, tokenizer, sae, contexts(), { hook, latents: range(8, 16), tokens: 150, ctx, window: [ctx, ctx] });
    expect(JSON.parse(files[1]!)).toEqual(JSON.parse(JSON.stringify(neuronpediaBatch(alone, source))));
    // Killed before the last batch: the rerun writes only that one, the same bytes.
    rmSync(join(out, "batch-2.json"));
    const again = await exportNeuronpedia(model, tokenizer, sae, contexts(), options);
    expect(again).toEqual({ out, batches: 3, written: 1, skipped: 2 });
    expect(readFileSync(join(out, "batch-2.json"), "utf8")).toBe(files[2]);
    // Without room for the cache, the model runs again for each batch, to the same files.
    const uncached = join(dir, "np-uncached");
    const rerun = vi.spyOn(model, "activationAt");
    await exportNeuronpedia(model, tokenizer, sae, contexts(), { ...options, out: uncached, cacheBytes: 0 });
    expect(rerun).toHaveBeenCalledTimes(12);
    rerun.mockRestore();
    expect([0, 1, 2].map((n) => readFileSync(join(uncached, `batch-${n}.json`), "utf8"))).toEqual(files);
    await expect(exportNeuronpedia(model, tokenizer, sae, contexts(), { ...options, tokens: 300 }))
      .rejects.toThrow(/other settings \(tokens\)/);
    expect(readFileSync(join(out, "batch-2.json"), "utf8")).toBe(files[2]);
  });

  it("an SAE on attn.hook_z gets each head's share of its decoder rows", async () => {
    const zHook = "blocks.1.attn.hook_z";
    const width = model.hookWidth(zHook);
    const zSae = createSae(defaultConfig({ architecture: "topk", d_in: width, d_sae: 8, k: 2 }));
    for (const t of zSae.params.values()) new Rng(5).fillNormal(t.data, 0.3);
    const out = join(dir, "np-z");
    await exportNeuronpedia(model, tokenizer, zSae, contexts(), {
      out, hook: zHook, latents: [0, 3], tokens: 60, ctx, source: { ...source, layer: 1 },
    });
    const batch = JSON.parse(readFileSync(join(out, "batch-0.json"), "utf8"));
    expect(batch.layer).toBe(1);
    const W_dec = zSae.params.get("W_dec")!.data;
    for (const f of batch.features) {
      const expected = decoderHeadShares(W_dec.subarray(f.feature_index * width, (f.feature_index + 1) * width), model.cfg.nHeads);
      expect(f.decoder_weights_dist).toHaveLength(model.cfg.nHeads);
      expect(f.decoder_weights_dist).toEqual(expected.map((v) => Math.round(v * 1000) / 1000));
    }
    expect(existsSync(join(out, "batch-1.json"))).toBe(false);
  });
});

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}
