/**
 * Harvesting activations to a store, streaming them back shuffled, and splice evaluation,
 * on a tiny random GPT-NeoX checkpoint and generated text.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SafetensorsFile } from "../../src/core/safetensors.js";
import { StoreSource } from "../../src/data/store-source.js";
import { pretokenize } from "../../src/data/pretokenize.js";
import { readManifest, readShardActivations, readShardTokens } from "../../src/data/store.js";
import { saeBenchCoreOutput } from "../../src/eval/saebench.js";
import { setDenseCodeDensity } from "../../src/sae/dense-code.js";
import { evaluateSplice, evaluateSpliceOn, evaluateSplicesOn, spliceScores } from "../../src/eval/splice.js";
import { openContexts } from "../../src/lm/dataset.js";
import { harvest, harvestSites, harvestStores, type HarvestOptions } from "../../src/lm/harvest.js";
import { loadModel } from "../../src/lm/load.js";
import type { HookContext, LanguageModel } from "../../src/lm/model.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { maxAbs, maxAbsDiff, tempDir } from "../helpers.js";
import { writeTinyGemma, writeTinyNeox } from "./fixtures.js";

const dir = tempDir();
const textPath = join(dir, "stories.txt");
writeFileSync(textPath, Array.from({ length: 60 }, (_, i) =>
  `Once upon a time there was a cat number ${i}. The cat sat on the mat and ate ${i % 7} fish. They were happy.`).join("<|endoftext|>"));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe("harvest and the activation store", async () => {
  const loaded = await loadModel(writeTinyNeox(join(dir, "model")));
  const ctx = 16;
  const contexts = () => openContexts(loaded, textPath, { ctx, prependBos: true });
  const base = (out: string, extra: Partial<HarvestOptions> = {}): HarvestOptions => ({
    outDir: out, hook: "blocks.1.hook_resid_post", tokens: 40 * ctx, ctx, batch: 3, prependBos: true,
    shardTokens: 7 * ctx, modelName: "tiny-neox", dataset: { spec: textPath, fingerprint: contexts().fingerprint }, progress: false, ...extra,
  });

  /** Whether two folders hold the same files, byte for byte. */
  const sameFolders = (a: string, b: string) => {
    const files = readdirSync(a).sort();
    expect(readdirSync(b).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), `${b}/${f}`).toBe(true);
  };

  it("stores exactly the hook's activations of each context, with the contexts", async () => {
    const out = join(dir, "store");
    const m = await harvest(loaded.model, contexts().contexts, base(out));
    expect(m.complete).toBe(true);
    expect(m.tokens).toBe(40 * ctx);
    expect(m.shards.map((s) => s.contexts)).toEqual([7, 7, 7, 7, 7, 5]);
    expect(readManifest(out)).toEqual(m);
    const want = (await collect(contexts().contexts)).slice(0, 40);
    expect(want[0]![0]).toBe(0); // BOS of GPT-NeoX
    const d = loaded.model.cfg.dModel;
    for (const s of [0, 5]) {
      const tokens = readShardTokens(out, m, s);
      const acts = readShardActivations(out, m, s);
      const first = s * 7;
      for (let c = 0; c < m.shards[s]!.contexts; c++) {
        expect([...tokens.subarray(c * ctx, (c + 1) * ctx)]).toEqual([...want[first + c]!]);
        let direct: Float32Array | null = null;
        loaded.model.forward(want[first + c]!, 1, ctx, { hooks: { "blocks.1.hook_resid_post": (a) => { direct = a.slice(); } } });
        expect(maxAbsDiff(acts.subarray(c * ctx * d, (c + 1) * ctx * d), direct!)).toBeLessThan(1e-5);
      }
    }
  });

  it("a harvest stopped after any shard and rerun ends with the same store as one clean run", async () => {
    const clean = join(dir, "clean");
    await harvest(loaded.model, contexts().contexts, base(clean));
    const resumed = join(dir, "resumed");
    await harvest(loaded.model, contexts().contexts, base(resumed, { stopAfterShards: 2 }));
    expect(readManifest(resumed).complete).toBe(false);
    expect(readManifest(resumed).shards).toHaveLength(2);
    await harvest(loaded.model, contexts().contexts, base(resumed, { stopAfterShards: 1 }));
    await harvest(loaded.model, contexts().contexts, base(resumed));
    sameFolders(clean, resumed);
  });

  it("several hooks fill one store each from the same forward passes, each the store of that hook alone", async () => {
    const hooks = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z", "blocks.1.hook_resid_post"];
    const sites = harvestSites(loaded.model, join(dir, "multi"), hooks);
    expect(sites.map((s) => s.outDir)).toEqual(hooks.map((h) => join(dir, "multi", h)));
    const ms = await harvestStores(loaded.model, contexts().contexts, sites, base(""));
    expect(ms.map((m) => m.d)).toEqual([loaded.model.cfg.dModel, loaded.model.hookWidth(hooks[1]!), loaded.model.cfg.dModel]);
    for (const [i, hook] of hooks.entries()) {
      const alone = join(dir, `alone-${i}`);
      await harvest(loaded.model, contexts().contexts, base(alone, { hook }));
      sameFolders(alone, sites[i]!.outDir);
    }
    // A pattern names every block's output; one hook keeps --out itself.
    expect(harvestSites(loaded.model, "o", ["blocks.*.hook_resid_post"]).map((s) => s.hook))
      .toEqual(["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]);
    expect(harvestSites(loaded.model, "o", ["blocks.1.hook_resid_post"])).toEqual([{ outDir: "o", hook: "blocks.1.hook_resid_post" }]);
    expect(() => harvestSites(loaded.model, "o", ["blocks.*.hook_resid_post", "blocks.1.hook_resid_post"])).toThrow(/named twice/);
    expect(() => harvestSites(loaded.model, "o", ["blocks.*.ln2.hook_normalized"], ["blocks.0.hook_mlp_out"])).toThrow(/each hook needs one target/);
    const pairs = harvestSites(loaded.model, "o", ["blocks.*.ln2.hook_normalized"], ["blocks.*.hook_mlp_out"]);
    expect(pairs.map((s) => [s.hook, s.targetHook])).toEqual([0, 1].map((i) => [`blocks.${i}.ln2.hook_normalized`, `blocks.${i}.hook_mlp_out`]));
  });

  it("stores stopped at different shards resume together to the stores of one clean run", async () => {
    const hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"];
    const clean = harvestSites(loaded.model, join(dir, "multi-clean"), hooks);
    await harvestStores(loaded.model, contexts().contexts, clean, base(""));
    const resumed = harvestSites(loaded.model, join(dir, "multi-resumed"), hooks);
    // Shards are written store by store: three writes leave the first store a shard ahead.
    await harvestStores(loaded.model, contexts().contexts, resumed, base("", { stopAfterShards: 3 }));
    expect(resumed.map((s) => readManifest(s.outDir).shards.length)).toEqual([2, 1]);
    // The second store alone catches up past the first, which then resumes behind it.
    await harvest(loaded.model, contexts().contexts, base(resumed[1]!.outDir, { hook: hooks[1]!, stopAfterShards: 3 }));
    expect(resumed.map((s) => readManifest(s.outDir).shards.length)).toEqual([2, 4]);
    await harvestStores(loaded.model, contexts().contexts, resumed, base(""));
    for (const [i, s] of resumed.entries()) sameFolders(clean[i]!.outDir, s.outDir);
    await expect(harvestStores(loaded.model, contexts().contexts, [resumed[0]!, resumed[0]!], base(""))).rejects.toThrow(/share a folder/);
    // Shards too large for the machine's memory are refused before anything is written.
    const huge = harvestSites(loaded.model, join(dir, "huge"), hooks);
    await expect(harvestStores(loaded.model, contexts().contexts, huge, base("", { shardTokens: 2 ** 33 })))
      .rejects.toThrow(/need [\d.]+ GiB of memory, more than this machine can spare .*; lower --shard-tokens/);
    expect(existsSync(join(dir, "huge"))).toBe(false);
  });

  it("harvests a pretokenized dataset: each row one context, cut to ctx, as SAELens reads them", async () => {
    const rows = Array.from({ length: 9 }, (_, r) => Array.from({ length: ctx + 4 }, (_, t) => (r * 31 + t * 7) % 300));
    const path = join(dir, "pretokenized-by-hand.jsonl");
    writeFileSync(path, rows.map((tokens) => JSON.stringify({ tokens })).join("\n"));
    const src = openContexts(loaded, path, { ctx, prependBos: true });
    const out = join(dir, "pretokenized-store");
    const m = await harvest(loaded.model, src.contexts, base(out, { tokens: 9 * ctx, dataset: { spec: path, fingerprint: src.fingerprint } }));
    expect(m.tokens).toBe(9 * ctx);
    const stored = m.shards.flatMap((_, i) => {
      const t = readShardTokens(out, m, i);
      return Array.from({ length: t.length / ctx }, (_, c) => [...t.subarray(c * ctx, (c + 1) * ctx)]);
    });
    expect(stored).toEqual(rows.map((r) => r.slice(0, ctx)));
  });

  it("pretokenize writes the contexts harvest reads from the text: the same store from either (parquet and jsonl)", async () => {
    const fromText = join(dir, "from-text");
    await harvest(loaded.model, contexts().contexts, base(fromText, { tokens: 12 * ctx }));
    for (const ext of ["parquet", "jsonl"]) {
      const file = join(dir, `pretokenized.${ext}`);
      expect(await pretokenize(contexts().contexts, file, { ctx, tokens: 12 * ctx, info: { dataset: textPath } })).toEqual({ rows: 12 });
      const src = openContexts(loaded, file, { ctx, prependBos: true });
      const out = join(dir, `from-${ext}`);
      await harvest(loaded.model, src.contexts, base(out, { tokens: 12 * ctx, dataset: { spec: textPath, fingerprint: contexts().fingerprint } }));
      sameFolders(fromText, out);
    }
    await expect(pretokenize(contexts().contexts, join(dir, "x.csv"), { ctx, tokens: ctx })).rejects.toThrow(/written as .parquet or .jsonl/);
    // A file already there (a dataset, the input itself) is kept unless overwrite says otherwise.
    const jsonl = join(dir, "pretokenized.jsonl");
    const before = readFileSync(jsonl);
    await expect(pretokenize(contexts().contexts, jsonl, { ctx, tokens: 3 * ctx })).rejects.toThrow(/pretokenized\.jsonl: exists already; choose another output, or overwrite it/);
    expect(readFileSync(jsonl).equals(before)).toBe(true);
    expect(await pretokenize(contexts().contexts, jsonl, { ctx, tokens: 3 * ctx, overwrite: true })).toEqual({ rows: 3 });
  });

  it("refuses a non-finite activation, or one float16 cannot hold, before it reaches a shard; a rerun loses nothing", async () => {
    const d = loaded.model.cfg.dModel;
    // The model, except that its 4th forward pass (after the first shard is written) puts
    // `bad` at dimension 5 of position 2 of the batch's first context.
    const poisoned = (bad: number): LanguageModel => {
      const model = Object.create(loaded.model) as LanguageModel;
      let calls = 0;
      model.forward = (tokens, batch, seq, opts = {}) => {
        const hit = ++calls === 4;
        const hooks = Object.fromEntries(Object.entries(opts.hooks ?? {}).map(([name, fn]) => [name, (a: Float32Array, info: HookContext) => {
          if (hit) a[2 * d + 5] = bad;
          return fn(a, info);
        }]));
        return loaded.model.forward(tokens, batch, seq, { ...opts, hooks });
      };
      return model;
    };
    const out = join(dir, "poisoned");
    await expect(harvest(poisoned(Number.NaN), contexts().contexts, base(out)))
      .rejects.toThrow(/blocks.1.hook_resid_post: context 7, position 2, dimension 5: the model produced NaN; check its weights and config/);
    expect(readManifest(out).shards).toHaveLength(1);
    await harvest(loaded.model, contexts().contexts, base(out));
    sameFolders(join(dir, "clean"), out);
    const f16 = join(dir, "overflow");
    await expect(harvest(poisoned(1e5), contexts().contexts, base(f16, { dtype: "F16" })))
      .rejects.toThrow(/activation 100000 is beyond float16's range \(65504\); harvest with --dtype bf16 or f32/);
    expect((await harvest(poisoned(1e5), contexts().contexts, base(join(dir, "overflow-bf16"), { dtype: "BF16" }))).complete).toBe(true);
  });

  it("refuses to extend a store made with other settings", async () => {
    const out = join(dir, "other");
    await harvest(loaded.model, contexts().contexts, base(out, { tokens: 8 * ctx }));
    await expect(harvest(loaded.model, contexts().contexts, base(out, { hook: "blocks.0.hook_resid_post" })))
      .rejects.toThrow(/already holds a different activation store/);
    // Nor from the same model on bfloat16 weights, whose activations differ in rounding.
    const half = (await loadModel(join(dir, "model"), { weights: "bf16" })).model;
    await expect(harvest(half, contexts().contexts, base(out)))
      .rejects.toThrow(/already holds a different activation store \(tiny-neox blocks.1.hook_resid_post .*this harvest is tiny-neox \(bf16 weights\)/);
    const bf16Store = join(dir, "other-bf16");
    expect((await harvest(half, contexts().contexts, base(bf16Store, { tokens: 8 * ctx }))).model_weights).toBe("bf16");
    expect(readManifest(out).model_weights).toBeUndefined();
    // Nor at another matmul precision.
    await expect(harvest(loaded.model, contexts().contexts, base(out, { matmulPrecision: "medium" })))
      .rejects.toThrow(/this harvest is tiny-neox \(matmul precision medium\) blocks.1.hook_resid_post/);
    const mediumStore = join(dir, "other-medium");
    const medium = await harvest(loaded.model, contexts().contexts, base(mediumStore, { tokens: 8 * ctx, matmulPrecision: "medium" }));
    expect(medium.matmul_precision).toBe("medium");
    expect(readManifest(out).matmul_precision).toBeUndefined();
    // Its rows are the model's at that precision: near the float32 ones, not the same.
    const rows = (p: string) => readShardActivations(p, readManifest(p), 0).subarray(0, 8 * ctx * loaded.model.cfg.dModel);
    const diff = maxAbsDiff(rows(mediumStore), rows(out));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(0.05 * maxAbs(rows(out)));
  });

  it("halves the disk with f16 and can leave BOS positions out", async () => {
    const f32 = join(dir, "store"), f16 = join(dir, "f16");
    const m = await harvest(loaded.model, contexts().contexts, base(f16, { dtype: "F16" }));
    const size = (p: string) => statSync(join(p, "shard-00000.safetensors")).size;
    expect(size(f16)).toBeLessThan(0.6 * size(f32));
    expect(maxAbsDiff(readShardActivations(f16, m, 0), readShardActivations(f32, readManifest(f32), 0))).toBeLessThan(0.02);
    const noBos = join(dir, "nobos");
    const mb = await harvest(loaded.model, contexts().contexts, base(noBos, { excludeBos: true, tokens: 10 * (ctx - 1) }));
    expect(mb.rows_per_context).toBe(ctx - 1);
    const d = loaded.model.cfg.dModel;
    const full = readShardActivations(f32, readManifest(f32), 0);
    const rows = readShardActivations(noBos, mb, 0);
    expect(maxAbsDiff(rows.subarray(0, (ctx - 1) * d), full.subarray(d, ctx * d))).toBe(0);
    expect(SafetensorsFile.open(join(noBos, "shard-00000.safetensors")).info("activations").shape).toEqual([mb.shards[0]!.rows, d]);
  });

  it("streams the store back shuffled: every row once per epoch, resumable exactly", () => {
    const out = join(dir, "store");
    const m = readManifest(out);
    const src = new StoreSource(out, 3, 2 * 7 * ctx);
    const d = src.d;
    const all = new Float32Array(m.tokens * d);
    src.next(all, m.tokens);
    // The epoch is a permutation of the stored rows.
    const stored = m.shards.flatMap((_, i) => {
      const a = readShardActivations(out, m, i);
      return Array.from({ length: a.length / d }, (_, r) => a.subarray(r * d, (r + 1) * d).join(","));
    }).sort();
    const served = Array.from({ length: m.tokens }, (_, r) => all.subarray(r * d, (r + 1) * d).join(",")).sort();
    expect(served).toEqual(stored);
    expect(all.subarray(0, d).join(",")).not.toBe(readShardActivations(out, m, 0).subarray(0, d).join(","));
    // Resume mid-epoch-2 from a saved state.
    src.next(new Float32Array(100 * d), 100);
    const state = src.state();
    const a = new Float32Array(300 * d);
    src.next(a, 300);
    const again = new StoreSource(out, 3, 2 * 7 * ctx);
    again.restore(JSON.parse(JSON.stringify(state)));
    const b = new Float32Array(300 * d);
    again.next(b, 300);
    expect(b).toEqual(a);
  });

  it("leaves out every row of excluded tokens (BOS at the start and between documents alike), and resumes exactly", () => {
    const out = join(dir, "store");
    const m = readManifest(out);
    const d = loaded.model.cfg.dModel;
    const kept: string[] = [];
    let separators = 0;
    m.shards.forEach((_, i) => {
      const a = readShardActivations(out, m, i);
      const t = readShardTokens(out, m, i);
      for (let r = 0; r < t.length; r++) {
        if (t[r] === 0 && r % ctx > 0) separators++;
        if (t[r] !== 0) kept.push(a.subarray(r * d, (r + 1) * d).join(","));
      }
    });
    expect(separators).toBeGreaterThan(0); // BOS separates documents inside contexts too
    const src = new StoreSource(out, 3, 2 * 7 * ctx, [0]);
    expect(src.totalRows).toBe(kept.length);
    expect(src.describe()).toMatchObject({ exclude_tokens: [0], rows: kept.length });
    const all = new Float32Array(kept.length * d);
    src.next(all, kept.length);
    expect(Array.from({ length: kept.length }, (_, r) => all.subarray(r * d, (r + 1) * d).join(",")).sort()).toEqual(kept.sort());
    const state = src.state();
    const a = new Float32Array(200 * d);
    src.next(a, 200);
    const again = new StoreSource(out, 3, 2 * 7 * ctx, [0]);
    again.restore(JSON.parse(JSON.stringify(state)));
    const b = new Float32Array(200 * d);
    again.next(b, 200);
    expect(b).toEqual(a);
    // With BOS left out at harvest, the rows map to positions 1.. of each context.
    const noBos = new StoreSource(join(dir, "nobos"), 0, 1 << 16, [0]);
    const mb = readManifest(join(dir, "nobos"));
    const tokens = mb.shards.flatMap((_, i) => Array.from(readShardTokens(join(dir, "nobos"), mb, i)).filter((_, j) => j % ctx > 0));
    expect(noBos.totalRows).toBe(tokens.filter((t) => t !== 0).length);
    const every = new Set(m.shards.flatMap((_, i) => Array.from(readShardTokens(out, m, i))));
    expect(() => new StoreSource(out, 0, 1 << 16, [...every])).toThrow(/every position holds an excluded token/);
  });
});

describe("splice evaluation", async () => {
  const loaded = await loadModel(writeTinyNeox(join(dir, "eval-model"), { seed: 4 }));
  const d = loaded.model.cfg.dModel;
  const ctx = 12;
  const contexts = () => openContexts(loaded, textPath, { ctx, prependBos: true }).contexts;

  it("scores follow their definitions", () => {
    const s = spliceScores({ clean: 2, sae: 2.5, zero: 6 }, { sae: 0.1, zero: 0.8 });
    expect(s.ce_loss_recovered).toBeCloseTo((6 - 2.5) / (6 - 2), 12);
    expect(s.kl_div_score).toBeCloseTo((0.8 - 0.1) / 0.8, 12);
  });

  it("splices an attention SAE at attn.hook_z, as wide as the heads together", async () => {
    const model = loaded.model;
    const hook = "blocks.0.attn.hook_z";
    const w = model.hookWidth(hook);
    const sae = createSae(defaultConfig({ architecture: "abstopk", d_in: w, d_sae: w, k: w }));
    for (const name of ["W_enc", "W_dec"]) {
      const W = sae.params.get(name)!.data;
      for (let i = 0; i < w; i++) W[i * w + i] = 1;
    }
    const r = await evaluateSplice(model, sae, contexts(), { hook, tokens: 3 * (ctx - 1), ctx, batch: 3, progress: false });
    expect(r.ce_loss_with_sae).toBe(r.ce_loss_clean);
    expect(r.reconstruction.fvu).toBe(0);
    const narrow = createSae(defaultConfig({ architecture: "topk", d_in: w + 1, d_sae: 8, k: 2 }));
    await expect(evaluateSplice(model, narrow, contexts(), { hook, tokens: ctx, ctx, batch: 1, progress: false }))
      .rejects.toThrow(new RegExp(`reads ${w + 1}-dim activations, ${hook.replace(/\./g, "\\.")} of this model is ${w}-dim`));
  });

  it("splices at attn.hook_z where the heads together are wider than the model (Gemma's head_dim)", async () => {
    const gemma = await loadModel(writeTinyGemma(join(dir, "gemma-wide-heads"), { headDim: 12 }));
    const hook = "blocks.1.attn.hook_z";
    const w = gemma.model.hookWidth(hook);
    expect(w).toBe(48); // 4 heads x 12, beside d_model 32
    const id = createSae(defaultConfig({ architecture: "abstopk", d_in: w, d_sae: w, k: w }));
    for (const name of ["W_enc", "W_dec"]) for (let i = 0; i < w; i++) id.params.get(name)!.data[i * w + i] = 1;
    // 9 contexts of 64 in one batch: 576 rows, more than one 512-row chunk of logits.
    const T = 64;
    const tokens = Array.from({ length: 9 }, (_, c) => Int32Array.from({ length: T }, (_, t) => (c * 37 + t * 11) % 300));
    const r = evaluateSpliceOn(gemma.model, id, tokens, { hook, tokens: 9 * (T - 1), ctx: T, batch: 9, progress: false });
    expect(r.ce_loss_with_sae).toBe(r.ce_loss_clean);
    expect(r.kl_div_with_sae).toBe(0);
    expect(r.reconstruction.fvu).toBe(0);
    // The clean loss is the model's own next-token loss (logits read from d_model-wide rows).
    const flat = new Int32Array(9 * T);
    tokens.forEach((c, b) => flat.set(c, b * T));
    const losses = gemma.model.nextTokenLosses(flat, 9, T, gemma.model.forward(flat, 9, T, { output: "final" }).final!);
    expect(r.ce_loss_clean).toBeCloseTo(losses.reduce((a, v) => a + v, 0) / losses.length, 5);
  });

  it("evaluates several SAEs at once, each exactly as alone, sharing the clean and ablated runs", async () => {
    const { Rng } = await import("../../src/core/rng.js");
    const rng = new Rng(21);
    const make = (cfg: Parameters<typeof defaultConfig>[0]) => {
      const sae = createSae(defaultConfig(cfg));
      for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
      sae.buffers.get("threshold")?.data.fill(0.05);
      return sae;
    };
    const targets = [
      { sae: make({ architecture: "topk", d_in: d, d_sae: 24, k: 3 }), hook: "blocks.0.hook_resid_post" },
      { sae: make({ architecture: "matryoshka", d_in: d, d_sae: 32, k: 4, matryoshka_widths: [8, 32] }), hook: "blocks.0.hook_resid_post" },
      { sae: make({ architecture: "relu", d_in: d, d_sae: 16 }), hook: "blocks.0.ln2.hook_normalized", hookOut: "blocks.0.hook_mlp_out" },
    ];
    const held = await collect(contexts());
    const opts = { tokens: 44, ctx, batch: 3, progress: false, featurewise: true };
    const joint = evaluateSplicesOn(loaded.model, targets, held, opts);
    targets.forEach((t, i) => expect(joint[i]).toEqual(evaluateSpliceOn(loaded.model, t.sae, held, { ...opts, hook: t.hook, hookOut: t.hookOut })));
    expect(joint[2]!.hook_out).toBe("blocks.0.hook_mlp_out");
    // A named SAE that does not fit its hook is named in the error.
    const wide = { sae: make({ architecture: "topk", d_in: d + 1, d_sae: 8, k: 2 }), hook: "blocks.1.hook_resid_post", name: "runs/wide" };
    expect(() => evaluateSplicesOn(loaded.model, [targets[0]!, wide], held, opts)).toThrow(/^runs\/wide: the SAE reads 33-dim activations/);
  });

  it("an SAE that reconstructs exactly recovers all the CE loss and has zero KL", async () => {
    // AbsTopK with k = d_sae = d_in and identity weights: f = x and x_hat = x, exactly.
    const sae = createSae(defaultConfig({ architecture: "abstopk", d_in: d, d_sae: d, k: d }));
    for (const name of ["W_enc", "W_dec"]) {
      const W = sae.params.get(name)!.data;
      for (let i = 0; i < d; i++) W[i * d + i] = 1;
    }
    const r = await evaluateSplice(loaded.model, sae, contexts(), { hook: "blocks.0.hook_resid_post", tokens: 6 * (ctx - 1), ctx, batch: 4, progress: false });
    expect(r.contexts).toBe(6);
    expect(r.positions).toBe(6 * (ctx - 1));
    expect(r.ce_loss_with_sae).toBe(r.ce_loss_clean);
    expect(r.kl_div_with_sae).toBe(0);
    expect(r.ce_loss_zero_ablated).not.toBe(r.ce_loss_clean); // a random model: either direction
    expect(r.kl_div_zero_ablated).toBeGreaterThan(0);
    expect(r.ce_loss_recovered).toBe(1);
    expect(r.kl_div_score).toBe(1);
    expect(r.reconstruction.fvu).toBe(0);
    expect(r.reconstruction.cossim).toBeCloseTo(1, 6);
    expect(r.sparsity.frac_alive).toBe(1);
    expect(r.reconstruction.tokens).toBe(6 * (ctx - 1)); // BOS positions left out
  });

  it("excluded tokens keep their clean activation wherever they stand, in the splice and the ablation, and stay out of the metrics", async () => {
    const hook = "blocks.0.hook_resid_post";
    const { Rng } = await import("../../src/core/rng.js");
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 24, k: 3 }));
    const rng = new Rng(8);
    for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
    // Three contexts where BOS separates documents, and one where it does not.
    const all = await collect(contexts());
    const held = [...all.filter((c) => c.subarray(1).includes(0)).slice(0, 3), all.find((c) => !c.subarray(1).includes(0))!];
    const flat = new Int32Array(4 * ctx);
    held.forEach((c, b) => flat.set(c, b * ctx));
    const separators = Array.from(flat).filter((t, i) => t === 0 && i % ctx > 0).length;
    expect(separators).toBeGreaterThan(0);
    // What reaches the hook in each forward pass: clean, spliced, zero-ablated.
    const seen: Float32Array[] = [];
    const model = loaded.model;
    const spy = new Proxy(model, {
      get(target, prop) {
        if (prop !== "forward") {
          const v = Reflect.get(target, prop);
          return typeof v === "function" ? v.bind(target) : v;
        }
        return (tokens: Int32Array, n: number, T: number, opts: Parameters<LanguageModel["forward"]>[3] = {}) => {
          const hooks = Object.fromEntries(Object.entries(opts.hooks ?? {}).map(([h, fn]) => [h, (a: Float32Array, c: HookContext) => {
            const r = fn(a, c);
            if (h === hook) seen.push((r ?? a).slice());
            return r;
          }]));
          return target.forward(tokens, n, T, { ...opts, hooks });
        };
      },
    });
    const r = evaluateSpliceOn(spy, sae, held, { hook, tokens: 4 * (ctx - 1), ctx, batch: 4, excludeTokens: [0], progress: false });
    const kept = 4 * (ctx - 1) - separators;
    expect(r.reconstruction.tokens).toBe(kept);
    expect(seen).toHaveLength(3);
    const [clean, spliced, zeroed] = seen as [Float32Array, Float32Array, Float32Array];
    const rows: number[] = [];
    for (let p = 0; p < 4 * ctx; p++) if (p % ctx > 0 && flat[p] !== 0) rows.push(p);
    const x = new Float32Array(rows.length * d);
    rows.forEach((p, i) => x.set(clean.subarray(p * d, (p + 1) * d), i * d));
    const xHat = sae.decode(sae.encode(x, rows.length), x);
    for (let p = 0; p < 4 * ctx; p++) {
      const row = (a: Float32Array) => Array.from(a.subarray(p * d, (p + 1) * d));
      const i = rows.indexOf(p);
      if (i < 0) {
        expect(row(spliced), `position ${p}`).toEqual(row(clean));
        expect(row(zeroed), `position ${p}`).toEqual(row(clean));
      } else {
        expect(row(spliced)).toEqual(Array.from(xHat.subarray(i * d, (i + 1) * d)));
        expect(row(zeroed).every((v) => v === 0)).toBe(true);
      }
    }
    // No exclusion: the default (BOS at position 0 only) to the bit.
    const plain = { hook, tokens: 4 * (ctx - 1), ctx, batch: 4, progress: false };
    expect(evaluateSpliceOn(model, sae, held, { ...plain, excludeTokens: [] })).toEqual(evaluateSpliceOn(model, sae, held, plain));
  });

  it("a poor SAE recovers less, and its metrics are measured on the same activations", async () => {
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 64, k: 2 }));
    const { Rng } = await import("../../src/core/rng.js");
    const rng = new Rng(3);
    for (const t of sae.params.values()) rng.fillNormal(t.data, 0.1);
    const r = await evaluateSplice(loaded.model, sae, contexts(), { hook: "blocks.0.hook_resid_post", tokens: 40, ctx, batch: 4, progress: false });
    expect(r.ce_loss_recovered).toBeLessThan(1);
    expect(r.sparsity.l0).toBeLessThanOrEqual(2);
    expect(r.reconstruction.fvu).toBeGreaterThan(0.1);
  });

  it("splices each inner Matryoshka level: the same as the SAE with the later latents' decoder rows zeroed", async () => {
    const { Rng } = await import("../../src/core/rng.js");
    const widths = [4, 12, 32];
    const sae = createSae(defaultConfig({ architecture: "matryoshka", d_in: d, d_sae: 32, k: 4, matryoshka_widths: widths }));
    const rng = new Rng(5);
    for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
    sae.buffers.get("threshold")!.data.fill(0.05);
    const opts = { hook: "blocks.0.hook_resid_post", tokens: 44, ctx, batch: 4, progress: false };
    // Equal to the bit when both decode on the sparse kernels: at this threshold about half
    // the latents fire, and the whole code would otherwise go to the dense GEMM twins
    // (dense-code.ts), which round differently, while a level's sparser prefix would not.
    const previous = setDenseCodeDensity(Infinity);
    try {
      const r = await evaluateSplice(loaded.model, sae, contexts(), opts);
      expect(r.levels!.map((l) => l.width)).toEqual([4, 12]);
      for (const [i, width] of [4, 12].entries()) {
        const cut = createSae(sae.cfg, new Map([...sae.params].map(([n, t]) => [n, t.clone()])), sae.buffers);
        cut.params.get("W_dec")!.data.fill(0, width * d);
        const want = await evaluateSplice(loaded.model, cut, contexts(), opts);
        const level = r.levels![i]!;
        expect(level.ce_loss_with_sae).toBe(want.ce_loss_with_sae);
        expect(level.ce_loss_recovered).toBe(want.ce_loss_recovered);
        expect(level.kl_div_score).toBe(want.kl_div_score);
        expect(level.reconstruction.fvu).toBe(want.reconstruction.fvu);
        expect(level.l0).toBeLessThanOrEqual(r.sparsity.l0);
      }
      // A wider level keeps more of the code.
      expect(r.levels![0]!.l0).toBeLessThan(r.levels![1]!.l0);
    } finally {
      setDenseCodeDensity(previous);
    }
    // A plain SAE has no levels.
    expect((await evaluateSplice(loaded.model, createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 8, k: 2 })), contexts(), opts)).levels).toBeUndefined();
  });

  it("writes SAEBench's core eval output: the same numbers under its names, one detail per latent", async () => {
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 16, k: 3 }));
    const { Rng } = await import("../../src/core/rng.js");
    const rng = new Rng(8);
    for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
    const r = await evaluateSplice(loaded.model, sae, contexts(), { hook: "blocks.1.hook_resid_post", tokens: 44, ctx, batch: 2, progress: false, featurewise: true });
    const out = saeBenchCoreOutput(r, sae, {
      modelName: "tiny-neox", dataset: "text.txt", contextSize: ctx, batchSizePrompts: 2, excludeSpecialTokens: true, saeCfg: { d_in: d }, saeId: "runs/x",
    }) as any;
    expect(out.eval_type_id).toBe("core");
    expect(out.eval_config).toMatchObject({ model_name: "tiny-neox", context_size: ctx, batch_size_prompts: 2, n_eval_reconstruction_batches: 2 });
    const m = out.eval_result_metrics;
    expect(m.model_performance_preservation).toEqual({
      ce_loss_score: r.ce_loss_recovered, ce_loss_with_ablation: r.ce_loss_zero_ablated, ce_loss_with_sae: r.ce_loss_with_sae, ce_loss_without_sae: r.ce_loss_clean,
    });
    expect(m.model_behavior_preservation.kl_div_score).toBe(r.kl_div_score);
    expect(m.reconstruction_quality.explained_variance).toBe(r.reconstruction.explained_variance);
    expect(m.shrinkage.l2_ratio).toBe(r.reconstruction.l2_ratio);
    expect(m.sparsity).toEqual({ l0: r.sparsity.l0, l1: r.sparsity.l1 });
    expect(m.token_stats.total_tokens_eval_reconstruction).toBe(4 * (ctx - 1));
    expect(out.eval_result_details).toHaveLength(16);
    // Latent 5 by hand: bias, encoder norm and encoder/decoder cosine from the weights.
    const W_enc = sae.params.get("W_enc")!.data, W_dec = sae.params.get("W_dec")!.data;
    const row = (W: Float32Array) => Array.from(W.subarray(5 * d, 6 * d));
    const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
    const e = row(W_enc), w = row(W_dec);
    expect(out.eval_result_details[5]).toMatchObject({ index: 5, feature_density: r.features!.density[5], encoder_bias: sae.params.get("b_enc")!.data[5] });
    expect(out.eval_result_details[5].encoder_norm).toBeCloseTo(Math.sqrt(dot(e, e)), 5);
    expect(out.eval_result_details[5].encoder_decoder_cosine_sim).toBeCloseTo(dot(e, w) / Math.sqrt(dot(e, e) * dot(w, w)), 5);
    // Each latent fires at most ctx - 1 times in a prompt where it fires at all.
    for (const dtl of out.eval_result_details) {
      if (dtl.feature_density === 0) {
        expect(dtl.consistent_activation_heuristic).toBeNull();
      } else {
        expect(dtl.consistent_activation_heuristic).toBeGreaterThanOrEqual(1);
        expect(dtl.consistent_activation_heuristic).toBeLessThanOrEqual(ctx - 1);
      }
    }
    expect(JSON.parse(JSON.stringify(out)).eval_result_unstructured.saekit.features).toBeUndefined();
  });
});
