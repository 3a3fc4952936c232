/**
 * End-to-end training's batches (splice-source.ts) on a tiny random GPT-NeoX: whole
 * contexts, each once per pass in a seeded order, their activations the model's own; the
 * loss it answers is the splice's; and a run stopped mid-way and resumed ends with the
 * weights, checkpoint and metrics of an uninterrupted one.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SpliceSource } from "../../src/data/splice-source.js";
import { openContexts, takeContexts } from "../../src/lm/dataset.js";
import { loadModel } from "../../src/lm/load.js";
import { SpliceBackward } from "../../src/lm/splice-backward.js";
import { defaultConfig } from "../../src/sae/config.js";
import { trainSae } from "../../src/train/trainer.js";
import { tempDir } from "../helpers.js";
import { writeTinyNeox } from "../lm/fixtures.js";

const dir = tempDir();
const text = join(dir, "stories.txt");
writeFileSync(text, Array.from({ length: 30 }, (_, i) => `A small fox ${i} jumped over ${i % 3} logs and slept.`).join("<|endoftext|>"));
const HOOK = "blocks.0.hook_resid_post";

describe("end-to-end training batches", async () => {
  const loaded = await loadModel(writeTinyNeox(join(dir, "model")));
  const ctx = 8;
  const contexts = await takeContexts(openContexts(loaded, text, { ctx, prependBos: true }).contexts, 10);
  const source = (loss: "ce" | "kl" = "kl") => new SpliceSource(loaded.model, contexts, { hook: HOOK, loss, seed: 4 });

  it("serves whole contexts, each once a pass in a seeded order, with the model's activations and the splice's loss", () => {
    const s = source("ce");
    const d = s.d;
    const seen: string[] = [];
    const out = new Float32Array(2 * ctx * d);
    for (let step = 0; step < 5; step++) {
      s.next(out, 2 * ctx);
      // Which contexts these are: the activations identify them.
      for (let b = 0; b < 2; b++) {
        const match = contexts.findIndex((c) => loaded.model.activationAt(c, 1, ctx, HOOK).every((v, i) => v === out[b * ctx * d + i]));
        expect(match).toBeGreaterThanOrEqual(0);
        seen.push(String(match));
      }
    }
    expect([...seen].sort((a, b) => Number(a) - Number(b))).toEqual(contexts.map((_, i) => String(i)));
    expect(seen).not.toEqual(contexts.map((_, i) => String(i))); // shuffled
    // The loss is the splice's for the batch last served.
    const tokens = new Int32Array(2 * ctx);
    const last = seen.slice(-2).map(Number);
    last.forEach((c, b) => tokens.set(contexts[c]!, b * ctx));
    const sb = new SpliceBackward(loaded.model, HOOK, "ce");
    const want = sb.lossAndGrad(tokens, 2, ctx, sb.clean(tokens, 2, ctx), out);
    const got = s.lossAndGrad(out, out, 2 * ctx);
    expect(got.loss).toBe(want.loss);
    expect(got.grad).toEqual(want.grad);
    expect(() => s.lossAndGrad(out, out, ctx)).toThrow(/did not serve last/);
    // A partial batch (the trainer's peek at its first rows) gets the first rows of whole
    // contexts; training on one is refused.
    const partial = new Float32Array((ctx + 3) * d);
    s.next(partial, ctx + 3);
    expect(partial.subarray(ctx * d).some((v) => v !== 0)).toBe(true);
    expect(() => s.lossAndGrad(partial, partial, ctx + 3)).toThrow(/not a multiple of the 8-token context/);
  });

  it("a run stopped part-way and resumed ends as one uninterrupted run", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: loaded.model.cfg.dModel, d_sae: 48, k: 4 });
    const opts = { steps: 8, batchSize: 2 * ctx, lr: 3e-3, checkpointEvery: 3, logEvery: 2, progress: false };
    const whole = join(dir, "whole");
    const split = join(dir, "split");
    const a = source();
    trainSae(cfg, a, { ...opts, outDir: whole, downstream: a });
    const b = source();
    trainSae(cfg, b, { ...opts, outDir: split, downstream: b, stopAfter: 5 });
    const c = source();
    trainSae(cfg, c, { ...opts, outDir: split, downstream: c, resume: true });
    const file = (d: string, f: string) => readFileSync(join(d, f));
    expect(file(split, "sae_weights.safetensors").equals(file(whole, "sae_weights.safetensors"))).toBe(true);
    const strip = (d: string) => file(d, "metrics.jsonl").toString().trim().split("\n").map((l) => { const { tokens_per_s: _t, ...rest } = JSON.parse(l); return rest; });
    expect(strip(split)).toEqual(strip(whole));
    expect(strip(whole)[0]).toHaveProperty("kl_loss");
    // Resuming on another loss (or on the reconstruction loss) is refused, the run left as it was.
    const ce = source("ce");
    expect(() => trainSae(cfg, ce, { ...opts, outDir: split, downstream: ce, resume: true })).toThrow(/trained end to end \(.*"kl".*\); it cannot resume end to end \(.*"ce"/);
    expect(() => trainSae(cfg, source(), { ...opts, outDir: split, resume: true })).toThrow(/it cannot resume on the reconstruction loss/);
  });

  it("trains on contexts whose length does not divide the trainer's first peek (4096 rows)", async () => {
    const six = await takeContexts(openContexts(loaded, text, { ctx: 6, prependBos: true }).contexts, 10);
    const s = new SpliceSource(loaded.model, six, { hook: HOOK, loss: "ce", seed: 1 });
    const cfg = defaultConfig({ architecture: "topk", d_in: loaded.model.cfg.dModel, d_sae: 48, k: 4 });
    const r = trainSae(cfg, s, { steps: 2, batchSize: 12, downstream: s, progress: false });
    expect(r.steps).toBe(2);
  });

  it("refuses what it cannot splice end to end", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: loaded.model.cfg.dModel, d_sae: 48, k: 4 });
    const s = source();
    expect(() => trainSae(cfg, s, { steps: 1, batchSize: 2 * ctx, downstream: s, normalizeActivations: "expected_norm", progress: false })).toThrow(/without --normalize/);
    expect(() => new SpliceSource(loaded.model, contexts, { hook: "blocks.0.ln2.hook_normalized", loss: "ce" })).toThrow(/residual stream/);
  });
});
