/**
 * Transcoders end to end on a tiny GPT-NeoX: harvest (input, target) pairs at two hooks,
 * stream them paired, train, save in SAELens' transcoder format, and splice the prediction
 * in at the output hook, each step checked against a recount by hand.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StoreSource } from "../../src/data/store-source.js";
import { readShardActivations, readShardTargets, readShardTokens } from "../../src/data/store.js";
import { evaluateSplice } from "../../src/eval/splice.js";
import { openContexts } from "../../src/lm/dataset.js";
import { harvest, type HarvestOptions } from "../../src/lm/harvest.js";
import { loadModel } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { loadSae } from "../../src/sae/saelens.js";
import { trainSae } from "../../src/train/trainer.js";
import { Rng } from "../../src/core/rng.js";
import { writeSafetensors } from "../../src/core/safetensors.js";
import { Tensor } from "../../src/core/tensor.js";
import { SafetensorsFile } from "../../src/core/safetensors.js";
import { ArraySource } from "../../src/data/array-source.js";
import type { Sae } from "../../src/sae/sae.js";
import { type SparseCode, toDense } from "../../src/sae/sparse-code.js";
import { maxAbsDiff, tempDir } from "../helpers.js";
import { writeTinyNeox } from "./fixtures.js";

const dir = tempDir();
const textPath = join(dir, "stories.txt");
writeFileSync(textPath, Array.from({ length: 60 }, (_, i) =>
  `Once upon a time there was a dog number ${i}. The dog ran in the park and found ${i % 5} sticks.`).join("<|endoftext|>"));
const IN = "blocks.0.ln2.hook_normalized";
const OUT = "blocks.0.hook_mlp_out";

describe("transcoders", async () => {
  const loaded = await loadModel(writeTinyNeox(join(dir, "model"), { seed: 3 }));
  const model = loaded.model;
  const d = model.cfg.dModel;
  const ctx = 12;
  const contexts = () => openContexts(loaded, textPath, { ctx, prependBos: true });
  const opts = (out: string, extra: Partial<HarvestOptions> = {}): HarvestOptions => ({
    outDir: out, hook: IN, targetHook: OUT, tokens: 30 * (ctx - 1), ctx, batch: 4, prependBos: true, excludeBos: true,
    shardTokens: 8 * (ctx - 1), modelName: "tiny-neox", dataset: { spec: textPath, fingerprint: contexts().fingerprint }, progress: false, ...extra,
  });
  const store = join(dir, "pairs");
  const manifest = await harvest(model, contexts().contexts, opts(store));

  it("harvests each position's input and target from one forward pass", () => {
    expect(manifest.target_hook).toBe(OUT);
    for (const s of [0, manifest.shards.length - 1]) {
      const tokens = readShardTokens(store, manifest, s);
      const x = readShardActivations(store, manifest, s);
      const y = readShardTargets(store, manifest, s);
      for (let c = 0; c < manifest.shards[s]!.contexts; c++) {
        const got: Record<string, Float32Array> = {};
        model.forward(tokens.subarray(c * ctx, (c + 1) * ctx), 1, ctx, {
          output: "none", hooks: { [IN]: (a) => { got.in = a.slice(d); }, [OUT]: (a) => { got.out = a.slice(d); } },
        });
        const rows = (ctx - 1) * d;
        expect(maxAbsDiff(x.subarray(c * rows, (c + 1) * rows), got.in!)).toBeLessThan(1e-5);
        expect(maxAbsDiff(y.subarray(c * rows, (c + 1) * rows), got.out!)).toBeLessThan(1e-5);
      }
    }
  });

  it("refuses a target hook that runs first, and a rerun with another target hook", async () => {
    await expect(harvest(model, contexts().contexts, opts(join(dir, "backwards"), { hook: OUT, targetHook: IN }))).rejects.toThrow(/must come after/);
    await expect(harvest(model, contexts().contexts, opts(store, { targetHook: "blocks.0.hook_resid_post" }))).rejects.toThrow(/different activation store/);
  });

  it("streams every stored pair once per epoch, input and target together", () => {
    const src = new StoreSource(store, 1, 16 * (ctx - 1));
    expect(src.dTarget).toBe(d);
    const all = new Float32Array(manifest.tokens * 2 * d);
    src.next(all, manifest.tokens);
    const key = (v: ArrayLike<number>) => Array.from(v, (u) => u.toFixed(5)).join(",");
    const stored = new Set<string>();
    manifest.shards.forEach((_, s) => {
      const x = readShardActivations(store, manifest, s), y = readShardTargets(store, manifest, s);
      for (let r = 0; r < x.length / d; r++) stored.add(key([...x.subarray(r * d, (r + 1) * d), ...y.subarray(r * d, (r + 1) * d)]));
    });
    const served = new Set(Array.from({ length: manifest.tokens }, (_, r) => key(all.subarray(r * 2 * d, (r + 1) * 2 * d))));
    expect(served).toEqual(stored);
  });

  /** A ReLU transcoder trained on the stored pairs into dir/name; returns its folder and cfg.json. */
  function trainReluTranscoder(name: string, skip: boolean): { out: string; raw: Record<string, unknown> } {
    const out = join(dir, name);
    const cfg = defaultConfig({ architecture: "relu", d_in: d, d_sae: 4 * d, l1_coefficient: 0.01, apply_b_dec_to_input: false, skip_connection: skip });
    const logs: number[] = [];
    trainSae(cfg, new StoreSource(store, 0, 4096), {
      steps: 150, batchSize: 64, lr: 3e-3, seed: 1, progress: false, logEvery: 25, outDir: out, onLog: (m) => logs.push(m.fvu),
      metadata: { model_name: "tiny-neox", hook_name: IN, hook_name_out: OUT, context_size: ctx },
    });
    // FVU is measured against the targets, and falls as it learns to predict them.
    expect(logs.at(-1)!).toBeLessThan(0.5 * logs[0]!);
    return { out, raw: JSON.parse(readFileSync(join(out, "cfg.json"), "utf8")) };
  }

  it("trains on the pairs, saves SAELens' transcoder fields, and splices in at the output hook", async () => {
    const { out, raw } = trainReluTranscoder("tc", false);
    expect(raw).toMatchObject({ architecture: "transcoder", d_out: d, hook_name_out: OUT, hook_layer_out: 0, apply_b_dec_to_input: false });
    const { sae, metadata } = loadSae(out);
    expect(metadata).toMatchObject({ hook_name: IN, hook_name_out: OUT });
    await expectSpliceByHand(sae, (x, code) => sae.decode(code, x));
  });

  /**
   * evaluateSplice at the output hook against a recount by hand over the same 4 contexts:
   * the MLP's output replaced by `predict` (the prediction from its input, non-BOS rows).
   */
  async function expectSpliceByHand(sae: Sae, predict: (x: Float32Array, code: SparseCode) => Float32Array): Promise<void> {
    const r = await evaluateSplice(model, sae, contexts().contexts, { hook: IN, hookOut: OUT, tokens: 4 * (ctx - 1), ctx, batch: 2, progress: false });
    expect(r.hook_out).toBe(OUT);
    const cs: Int32Array[] = [];
    for await (const c of contexts().contexts) if (cs.push(c) === 4) break;
    let sse = 0, withSae = 0, zero = 0;
    const ys: number[][] = [];
    for (const c of cs) {
      const got: Record<string, Float32Array> = {};
      model.forward(c, 1, ctx, { output: "none", hooks: { [IN]: (a) => { got.in = a.slice(); }, [OUT]: (a) => { got.out = a.slice(); } } });
      const x = got.in!.slice(d);
      const yHat = predict(x, sae.encode(x, ctx - 1)).slice();
      for (let i = 0; i < yHat.length; i++) sse += (yHat[i]! - got.out![d + i]!) ** 2;
      for (let t = 1; t < ctx; t++) ys.push(Array.from(got.out!.subarray(t * d, (t + 1) * d)));
      const spliced = model.forward(c, 1, ctx, { output: "final", hooks: { [OUT]: (a) => { a.set(yHat, d); } } }).final!;
      withSae += model.nextTokenLosses(c, 1, ctx, spliced).reduce((a, v) => a + v, 0);
      const ablated = model.forward(c, 1, ctx, { output: "final", hooks: { [OUT]: (a) => { a.fill(0, d); } } }).final!;
      zero += model.nextTokenLosses(c, 1, ctx, ablated).reduce((a, v) => a + v, 0);
    }
    const mean = Array.from({ length: d }, (_, c) => ys.reduce((a, y) => a + y[c]!, 0) / ys.length);
    const sst = ys.reduce((a, y) => a + y.reduce((b, v, c) => b + (v - mean[c]!) ** 2, 0), 0);
    expect(r.reconstruction.fvu).toBeCloseTo(sse / sst, 4);
    expect(r.ce_loss_with_sae).toBeCloseTo(withSae / r.positions, 4);
    expect(r.ce_loss_zero_ablated).toBeCloseTo(zero / r.positions, 4);
  }

  it("trains a skip transcoder: saved as SAELens' skip_transcoder with W_skip, spliced as W_dec^T f + b_dec + W_skip x", async () => {
    const { out, raw } = trainReluTranscoder("skip-tc", true);
    expect(raw).toMatchObject({ architecture: "skip_transcoder", d_out: d, hook_name_out: OUT, apply_b_dec_to_input: false });
    const { sae } = loadSae(out);
    expect(sae.cfg.skip_connection).toBe(true);
    const file = SafetensorsFile.open(join(out, "sae_weights.safetensors"));
    expect(file.shape("W_skip")).toEqual([d, d]);
    const W_skip = file.read("W_skip").data;
    // Trained away from its zero start.
    expect(Math.max(...Array.from(W_skip, Math.abs))).toBeGreaterThan(1e-2);
    expect(() => sae.decode(sae.encode(new Float32Array(d), 1))).toThrow(/skip connection: decode needs the input x/);
    const W_dec = sae.params.get("W_dec")!.data, b_dec = sae.params.get("b_dec")!.data;
    // The prediction by hand from the saved tensors.
    await expectSpliceByHand(sae, (x, code) => {
      const f = toDense(code);
      const rows = x.length / d;
      const y = new Float32Array(rows * d);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < d; c++) {
          let v = b_dec[c]!;
          for (let j = 0; j < 4 * d; j++) v += f[r * 4 * d + j]! * W_dec[j * d + c]!;
          for (let i = 0; i < d; i++) v += W_skip[c * d + i]! * x[r * d + i]!;
          y[r * d + c] = v;
        }
      }
      return y;
    });
  });

  it("refuses a skip connection without targets, where W_skip would learn the identity", () => {
    const cfg = defaultConfig({ architecture: "topk", d_in: d, d_sae: 4 * d, k: 4, skip_connection: true });
    const x = new Rng(1).fillNormal(new Float32Array(256 * d));
    expect(() => trainSae(cfg, new ArraySource(x, d, 0), { steps: 2, batchSize: 64, lr: 1e-3, progress: false }))
      .toThrow(/a skip connection is for transcoders/);
  });

  it("loads SAELens transcoder folders, and refuses ones that change width", () => {
    const base = { d_in: d, d_sae: 8, hook_name_out: OUT, metadata: { hook_name: IN } };
    const sae = createSae(defaultConfig({ architecture: "jumprelu", d_in: d, d_sae: 8, apply_b_dec_to_input: false }));
    for (const t of sae.params.values()) new Rng(2).fillNormal(t.data, 0.2);
    const weights = {
      W_enc: sae.params.get("W_enc")!.transpose(), W_dec: sae.params.get("W_dec")!, b_enc: sae.params.get("b_enc")!,
      b_dec: sae.params.get("b_dec")!, threshold: new Tensor([8], new Float32Array(8).fill(0.1)),
    };
    const folder = (name: string, cfg: object) => {
      const p = join(dir, name);
      saveRaw(p, cfg, weights);
      return p;
    };
    const jump = loadSae(folder("jt", { ...base, architecture: "jumprelu_transcoder", d_out: d }));
    expect(jump.sae.cfg).toMatchObject({ architecture: "jumprelu", apply_b_dec_to_input: false, skip_connection: false });
    expect(jump.metadata.hook_name_out).toBe(OUT);
    expect(() => loadSae(folder("jst-no-skip", { ...base, architecture: "jumprelu_skip_transcoder", d_out: d }))).toThrow(/missing tensor "W_skip"/);

    // With a skip connection: the same code, and W_skip x added to the prediction.
    const W_skip = new Tensor([d, d], new Rng(5).fillNormal(new Float32Array(d * d), 0.3));
    const skipPath = join(dir, "jst");
    saveRaw(skipPath, { ...base, architecture: "jumprelu_skip_transcoder", d_out: d }, { ...weights, W_skip });
    const skip = loadSae(skipPath).sae;
    expect(skip.cfg).toMatchObject({ architecture: "jumprelu", apply_b_dec_to_input: false, skip_connection: true });
    const x = new Rng(6).fillNormal(new Float32Array(3 * d));
    const code = skip.encode(x, 3);
    expect(maxAbsDiff(toDense(code), toDense(jump.sae.encode(x, 3)))).toBe(0);
    const plain = jump.sae.decode(code).slice();
    const withSkip = skip.decode(code, x);
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < d; c++) {
        let v = plain[r * d + c]!;
        for (let i = 0; i < d; i++) v += W_skip.data[c * d + i]! * x[r * d + i]!;
        expect(withSkip[r * d + c]).toBeCloseTo(v, 5);
      }
    }
    saveRaw(join(dir, "st"), { ...base, architecture: "skip_transcoder", d_out: d }, { ...weights, W_skip });
    expect(loadSae(join(dir, "st")).sae.cfg).toMatchObject({ architecture: "relu", skip_connection: true });
    expect(() => loadSae(folder("wide", { ...base, architecture: "transcoder", d_out: 2 * d }))).toThrow(/map a width to itself/);
  });
});

/** A SAELens-style folder written by hand: cfg.json and sae_weights.safetensors. */
function saveRaw(path: string, cfg: object, weights: Record<string, Tensor>): void {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, "cfg.json"), JSON.stringify(cfg));
  writeSafetensors(join(path, "sae_weights.safetensors"), weights);
}
