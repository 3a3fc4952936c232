/**
 * Activations computed on the fly from a model (LmSource): every position served once per
 * epoch and equal to a direct forward pass, transcoder pairs from one pass, exact resume,
 * and `saekit train --model` end to end on a tiny GPT-NeoX.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import { LmSource } from "../../src/data/lm-source.js";
import { openContexts, takeContexts } from "../../src/lm/dataset.js";
import { loadModel } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { trainSae } from "../../src/train/trainer.js";
import { tempDir } from "../helpers.js";
import { writeTinyNeox } from "../lm/fixtures.js";

const dir = tempDir();
const textPath = join(dir, "stories.txt");
writeFileSync(textPath, Array.from({ length: 40 }, (_, i) =>
  `Once upon a time a cat named ${i} sat on ${i % 3} mats and sang.`).join("<|endoftext|>"));
const IN = "blocks.0.ln2.hook_normalized";
const OUT = "blocks.0.hook_mlp_out";

describe("activations computed as training reads them", async () => {
  const modelDir = writeTinyNeox(join(dir, "model"), { seed: 5 });
  const loaded = await loadModel(modelDir);
  const model = loaded.model;
  const d = model.cfg.dModel;
  const ctx = 10;
  const contexts = await takeContexts(openContexts(loaded, textPath, { ctx, prependBos: true }).contexts, 12);
  const key = (v: ArrayLike<number>) => Array.from(v, (u) => u.toFixed(5)).join(",");

  it("serves every non-BOS position of every context once per epoch, paired with its target, as a forward pass computes them", () => {
    const src = new LmSource(model, contexts, { hook: IN, targetHook: OUT, excludeBos: true, seed: 3, bufferRows: 40, batch: 5 });
    expect([src.d, src.dTarget]).toEqual([d, d]);
    const rows = contexts.length * (ctx - 1);
    const served = new Float32Array(rows * 2 * d);
    src.next(served, rows);
    const want: string[] = [];
    for (const c of contexts) {
      const got: Record<string, Float32Array> = {};
      model.forward(c, 1, ctx, { output: "none", hooks: { [IN]: (a) => { got.in = a.slice(); }, [OUT]: (a) => { got.out = a.slice(); } } });
      for (let t = 1; t < ctx; t++) want.push(key([...got.in!.subarray(t * d, (t + 1) * d), ...got.out!.subarray(t * d, (t + 1) * d)]));
    }
    const seen = Array.from({ length: rows }, (_, r) => key(served.subarray(r * 2 * d, (r + 1) * 2 * d)));
    // The same rows as often (the repetitive text repeats some contexts), in another order.
    expect([...seen].sort()).toEqual([...want].sort());
    expect(seen).not.toEqual(want);
  });

  it("resumes where it stopped, in a later group and epoch, recomputing the group", () => {
    const make = () => new LmSource(model, contexts, { hook: IN, seed: 1, bufferRows: 30 });
    const a = make();
    a.next(new Float32Array(157 * d), 157); // past an epoch of 120 rows
    const saved = a.state();
    const after = new Float32Array(50 * d);
    a.next(after, 50);
    const b = make();
    b.restore(JSON.parse(JSON.stringify(saved)));
    const again = new Float32Array(50 * d);
    b.next(again, 50);
    expect(again).toEqual(after);
    expect(() => b.restore({ epoch: 0, group: 99, row: 0 })).toThrow(/cannot restore the activation stream of .* at blocks.0.ln2.hook_normalized/);
  });

  it("refuses what cannot be trained on, naming it", () => {
    expect(() => new LmSource(model, contexts, { hook: OUT, targetHook: IN })).toThrow(/must come after/);
    expect(() => new LmSource(model, contexts, { hook: "blocks.7.hook_resid_post" })).toThrow(/no hook point "blocks.7.hook_resid_post"/);
    expect(() => new LmSource(model, [], { hook: IN })).toThrow(/no contexts/);
  });

  it("a run stopped and resumed on it ends bit-identical to one uninterrupted run", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: d, d_sae: 4 * d, k: 4 });
    const run = (out: string, stopAfter?: number, resume = false) => trainSae(cfg, new LmSource(model, contexts, { hook: IN, seed: 2, bufferRows: 40 }), {
      steps: 12, batchSize: 32, lr: 1e-3, seed: 2, checkpointEvery: 5, outDir: join(dir, out), progress: false, stopAfter, resume,
    });
    const whole = run("whole");
    run("split", 7);
    const resumed = run("split", undefined, true);
    for (const [name, t] of whole.sae.params) expect(resumed.sae.params.get(name)!.data, name).toEqual(t.data);
  });

  it("saekit train --model trains on the hook's activations and records where they came from", () => {
    const out = join(dir, "cli-run");
    const bin = join(packageRoot(), "bin", "saekit.js");
    const r = spawnSync(process.execPath, [bin, "train", "--model", modelDir, "--dataset", textPath, "--hook", IN, "--target-hook", OUT,
      "--ctx", String(ctx), "--exclude-bos", "--steps", "6", "--batch", "16", "--arch", "relu", "--d-sae", String(2 * d), "--out", out, "--threads", "1"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ out, architecture: "relu", steps: 6, tokens: 96 });
    const cfg = JSON.parse(readFileSync(join(out, "cfg.json"), "utf8"));
    expect(cfg).toMatchObject({ architecture: "transcoder", hook_name_out: OUT, metadata: { model_name: modelDir, hook_name: IN, context_size: ctx, dataset_path: textPath } });
    // steps x batch = 96 positions by default: 11 contexts of 9 non-BOS positions hold them.
    expect(cfg.saekit.training.data).toMatchObject({ kind: "model", hook: IN, target_hook: OUT, ctx, contexts: 11, tokens: 99 });
    const both = spawnSync(process.execPath, [bin, "train", "--model", modelDir, "--data", "synthetic:superposition"], { encoding: "utf8" });
    expect(both.status).not.toBe(0);
    expect(both.stderr).toMatch(/give either --data .* or --model/);
  });
});
