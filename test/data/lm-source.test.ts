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
import { trainSae, trainSaes } from "../../src/train/trainer.js";
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
    expect(src.totalRows).toBe(rows);
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

  it("leaves out the positions of excluded tokens, wherever they stand", () => {
    const special = contexts.flatMap((c) => Array.from(c.subarray(1))).filter((t) => t === 0).length;
    expect(special).toBeGreaterThan(0); // BOS separates documents inside contexts
    const src = new LmSource(model, contexts, { hook: IN, excludeBos: true, excludeTokens: [0], seed: 3, bufferRows: 40, batch: 5 });
    const rows = contexts.length * (ctx - 1) - special;
    expect(src.totalRows).toBe(rows);
    const served = new Float32Array(rows * d);
    src.next(served, rows);
    const want: string[] = [];
    for (const c of contexts) {
      let acts: Float32Array | null = null;
      model.forward(c, 1, ctx, { output: "none", hooks: { [IN]: (a) => { acts = a.slice(); } } });
      for (let t = 1; t < ctx; t++) if (c[t] !== 0) want.push(key(acts!.subarray(t * d, (t + 1) * d)));
    }
    expect(Array.from({ length: rows }, (_, r) => key(served.subarray(r * d, (r + 1) * d))).sort()).toEqual(want.sort());
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
    expect(() => new LmSource(model, contexts, { hook: "blocks.*.hook_nothing" })).toThrow(/no hook point matches "blocks.\*.hook_nothing"/);
    expect(() => new LmSource(model, contexts, { hook: [IN, IN] })).toThrow(/named twice/);
    // `*` is one part of a name: every block's output, in the forward pass's order.
    expect(new LmSource(model, contexts, { hook: "blocks.*.hook_resid_post" }).parts.map((p) => p.hook))
      .toEqual(Array.from({ length: model.cfg.nLayers }, (_, i) => `blocks.${i}.hook_resid_post`));
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

  it("serves several hooks side by side from one pass, and trains one SAE per hook exactly as alone", () => {
    const hooks = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z"];
    const both = new LmSource(model, contexts, { hook: hooks, seed: 4, bufferRows: 40 });
    const w = model.hookWidth(hooks[1]!);
    expect(both.parts).toEqual([{ hook: hooks[0], offset: 0, d }, { hook: hooks[1], offset: d, d: w }]);
    const rows = new Float32Array(20 * (d + w));
    both.next(rows, 20);
    const alone = hooks.map((hook) => new LmSource(model, contexts, { hook, seed: 4, bufferRows: 40 }));
    const first = new Float32Array(20 * d), second = new Float32Array(20 * w);
    alone[0]!.next(first, 20);
    alone[1]!.next(second, 20);
    for (let r = 0; r < 20; r++) {
      expect(rows.subarray(r * (d + w), r * (d + w) + d)).toEqual(first.subarray(r * d, (r + 1) * d));
      expect(rows.subarray(r * (d + w) + d, (r + 1) * (d + w))).toEqual(second.subarray(r * w, (r + 1) * w));
    }
    // Trained together (one forward pass per buffer), each SAE ends as it would alone.
    const opts = (out: string) => ({ steps: 8, batchSize: 16, lr: 1e-3, seed: 4, progress: false, checkpointEvery: 3, outDir: join(dir, out) });
    const cfgs = [defaultConfig({ architecture: "topk", d_in: d, d_sae: 2 * d, k: 3 }), defaultConfig({ architecture: "relu", d_in: w, d_sae: 2 * w })];
    const together = trainSaes(cfgs.map((cfg, i) => ({ cfg, options: opts(`together-${i}`), part: { offset: both.parts[i]!.offset } })),
      new LmSource(model, contexts, { hook: hooks, seed: 4, bufferRows: 40 }));
    cfgs.forEach((cfg, i) => {
      const single = trainSae(cfg, new LmSource(model, contexts, { hook: hooks[i]!, seed: 4, bufferRows: 40 }), opts(`alone-${i}`));
      for (const [name, t] of single.sae.params) expect(together[i]!.sae.params.get(name)!.data, name).toEqual(t.data);
    });
    // Stopped and resumed together, they end the same; resuming only some of them is refused.
    const split = (stopAfter?: number) => trainSaes(cfgs.map((cfg, i) => ({ cfg, options: { ...opts(`split-${i}`), stopAfter, resume: stopAfter === undefined }, part: { offset: both.parts[i]!.offset } })),
      new LmSource(model, contexts, { hook: hooks, seed: 4, bufferRows: 40 }));
    split(5);
    const resumed = split();
    resumed.forEach((r, i) => expect(r.sae.params.get("W_dec")!.data).toEqual(together[i]!.sae.params.get("W_dec")!.data));
    const mixed = cfgs.map((cfg, i) => ({ cfg, options: { ...opts(i === 0 ? "split-0" : "fresh-1"), resume: true }, part: { offset: both.parts[i]!.offset } }));
    expect(() => trainSaes(mixed, new LmSource(model, contexts, { hook: hooks, seed: 4, bufferRows: 40 }))).toThrow(/runs trained together resume together/);
  });

  it("pairs several hooks with their targets, and trains each transcoder as it would alone", () => {
    const ins = ["blocks.0.ln2.hook_normalized", "blocks.1.ln2.hook_normalized"];
    const outs = ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"];
    const src = () => new LmSource(model, contexts, { hook: "blocks.*.ln2.hook_normalized", targetHook: "blocks.*.hook_mlp_out", seed: 6, bufferRows: 40 });
    const pairs = src();
    expect([pairs.d, pairs.dTarget]).toEqual([2 * d, 2 * d]);
    expect(pairs.parts).toEqual([
      { hook: ins[0], offset: 0, d, targetHook: outs[0], targetOffset: 2 * d },
      { hook: ins[1], offset: d, d, targetHook: outs[1], targetOffset: 3 * d },
    ]);
    // Row = [in0 | in1 | out0 | out1]; each pair matches the source of that pair alone.
    const rows = new Float32Array(15 * 4 * d);
    pairs.next(rows, 15);
    ins.forEach((hook, i) => {
      const alone = new Float32Array(15 * 2 * d);
      new LmSource(model, contexts, { hook, targetHook: outs[i], seed: 6, bufferRows: 40 }).next(alone, 15);
      for (let r = 0; r < 15; r++) {
        expect(rows.subarray(r * 4 * d + i * d, r * 4 * d + (i + 1) * d)).toEqual(alone.subarray(r * 2 * d, r * 2 * d + d));
        expect(rows.subarray(r * 4 * d + (2 + i) * d, r * 4 * d + (3 + i) * d)).toEqual(alone.subarray(r * 2 * d + d, (r + 1) * 2 * d));
      }
    });
    const cfg = defaultConfig({ architecture: "topk", d_in: d, d_sae: 2 * d, k: 3, apply_b_dec_to_input: false });
    const opts = (out: string) => ({ steps: 6, batchSize: 16, lr: 1e-3, seed: 6, progress: false, outDir: join(dir, out) });
    const together = trainSaes(pairs.parts.map((p, i) => ({ cfg, options: opts(`tc-together-${i}`), part: { offset: p.offset, targetOffset: p.targetOffset } })), src());
    ins.forEach((hook, i) => {
      const single = trainSae(cfg, new LmSource(model, contexts, { hook, targetHook: outs[i], seed: 6, bufferRows: 40 }), opts(`tc-alone-${i}`));
      for (const [name, t] of single.sae.params) expect(together[i]!.sae.params.get(name)!.data, name).toEqual(t.data);
    });
    expect(() => new LmSource(model, contexts, { hook: ins, targetHook: outs[0] })).toThrow(/2 hook\(s\) \(.*\) but 1 target hook\(s\) \(.*\); each hook needs one target/);
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
    // --eval-every splices the transcoder in on held-out contexts and logs the scores.
    const evaluated = join(dir, "cli-evaluated");
    const e = spawnSync(process.execPath, [bin, "train", "--model", modelDir, "--dataset", textPath, "--hook", IN, "--target-hook", OUT,
      "--ctx", String(ctx), "--steps", "6", "--batch", "16", "--log-every", "2", "--eval-every", "3", "--eval-tokens", "27", "--arch", "topk",
      "--k", "4", "--d-sae", String(2 * d), "--out", evaluated, "--threads", "1"], { encoding: "utf8" });
    expect(e.status, e.stderr).toBe(0);
    const lines = readFileSync(join(evaluated, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([2, 3, 4, 6]);
    expect(lines.map((l) => Number.isFinite(l.ce_loss_recovered))).toEqual([false, true, false, true]);
    expect(lines[3].kl_div_score).toBeLessThanOrEqual(1);
    const bad = spawnSync(process.execPath, [bin, "train", "--data", "synthetic:superposition", "--eval-every", "3"], { encoding: "utf8" });
    expect(bad.stderr).toMatch(/--eval-every splices the SAE into a model: train on --model, or on an activation store whose manifest names one/);
    // Two hooks: one SAE each, in folders named after them.
    const many = spawnSync(process.execPath, [bin, "train", "--model", modelDir, "--dataset", textPath, "--hook", `${IN},blocks.1.hook_resid_post`,
      "--ctx", String(ctx), "--steps", "4", "--batch", "16", "--d-sae", String(2 * d), "--k", "4", "--out", join(dir, "cli-many"), "--threads", "1"], { encoding: "utf8" });
    expect(many.status, many.stderr).toBe(0);
    expect(many.stdout.trim().split("\n").map((l) => JSON.parse(l).hook)).toEqual([IN, "blocks.1.hook_resid_post"]);
    expect(JSON.parse(readFileSync(join(dir, "cli-many", "blocks.1.hook_resid_post", "cfg.json"), "utf8")).metadata.hook_name).toBe("blocks.1.hook_resid_post");
    // Every layer's MLP: one transcoder each, its output hook recorded.
    const tcs = spawnSync(process.execPath, [bin, "train", "--model", modelDir, "--dataset", textPath, "--hook", "blocks.*.ln2.hook_normalized",
      "--target-hook", "blocks.*.hook_mlp_out", "--ctx", String(ctx), "--steps", "4", "--batch", "16", "--d-sae", String(2 * d), "--k", "4",
      "--out", join(dir, "cli-tc"), "--threads", "1"], { encoding: "utf8" });
    expect(tcs.status, tcs.stderr).toBe(0);
    const tc1 = JSON.parse(readFileSync(join(dir, "cli-tc", "blocks.1.ln2.hook_normalized", "cfg.json"), "utf8"));
    expect(tc1).toMatchObject({ hook_name_out: "blocks.1.hook_mlp_out", apply_b_dec_to_input: false, metadata: { hook_name: "blocks.1.ln2.hook_normalized" } });
    const both = spawnSync(process.execPath, [bin, "train", "--model", modelDir, "--data", "synthetic:superposition"], { encoding: "utf8" });
    expect(both.status).not.toBe(0);
    expect(both.stderr).toMatch(/give either --data .* or --model/);
  });
});
