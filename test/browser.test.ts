/**
 * The browser entry: bundled for the browser by esbuild (as a web app's bundler would, with
 * the package's "browser" field), it must pull in no Node module and no native addon, and
 * run in a bare JavaScript realm with only the web globals it needs: read an SAE written in
 * SAELens format from bytes, encode as the Node build does, train, and draw its figures.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import vm from "node:vm";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { Rng } from "../src/core/rng.js";
import { generate } from "../src/lm/generate.js";
import { loadModel } from "../src/lm/load.js";
import { defaultConfig } from "../src/sae/config.js";
import { createSae } from "../src/sae/registry.js";
import { saveSae } from "../src/sae/saelens.js";
import { toDense } from "../src/sae/sparse-code.js";
import { maxAbsDiff, tempDir } from "./helpers.js";
import { writeTinyNeox } from "./lm/fixtures.js";

const root = join(import.meta.dirname, "..");
const dir = tempDir();

describe("saekit in the browser", async () => {
  const bundle = await build({
    entryPoints: [join(root, "dist", "browser.js")], bundle: true, platform: "browser", format: "iife",
    globalName: "saekit", write: false, logLevel: "silent",
  });
  const code = bundle.outputFiles[0]!.text;
  // A bare realm: JavaScript built-ins plus the web APIs saekit uses, no process/require/Buffer.
  const realm = vm.createContext({ TextEncoder, TextDecoder, console });
  vm.runInContext(`${code}\nglobalThis.saekit = saekit;`, realm);
  const run = <T>(src: string, args: Record<string, unknown> = {}): T => {
    Object.assign(realm, { args });
    return vm.runInContext(`(() => { const s = globalThis.saekit; ${src} })()`, realm) as T;
  };

  it("bundles with no Node built-in and no native addon", () => {
    expect(bundle.errors).toEqual([]);
    expect(code).not.toMatch(/require\(|createRequire|node:fs|process\.env\.SAEKIT/);
    expect(run<string>("return s.kernels().kind;")).toBe("reference");
  });

  it("reads a SAELens folder's bytes and encodes as the Node build does", () => {
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: 8, d_sae: 32, k: 4 }));
    const rng = new Rng(4);
    for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
    const folder = join(dir, "sae");
    saveSae(folder, sae, { metadata: { hook_name: "blocks.0.hook_resid_post" } });
    const x = rng.fillNormal(new Float32Array(5 * 8));
    const got = run<number[]>(`
      const bytes = Uint8Array.from(args.weights);
      const { sae, metadata } = s.saeFromSaeLens(JSON.parse(args.cfg), "cfg.json", s.SafetensorsReader.fromBytes(bytes), () => { throw new Error("no extras"); });
      if (metadata.hook_name !== "blocks.0.hook_resid_post") throw new Error("metadata lost");
      return Array.from(s.toDense(sae.encode(Float32Array.from(args.x), 5)));
    `, { cfg: readFileSync(join(folder, "cfg.json"), "utf8"), weights: [...readFileSync(join(folder, "sae_weights.safetensors"))], x: [...x] });
    expect(maxAbsDiff(got, toDense(sae.encode(x, 5)))).toBeLessThan(1e-5);
  });

  it("trains an SAE with Adam and draws the latent analysis figures", () => {
    const out = run<{ first: number; last: number; svgs: string[]; living: number }>(`
      const src = new s.SuperpositionSource({ d: 16, nFeatures: 32, seed: 1 });
      const sae = s.newSae({ architecture: "topk", d_in: 16, d_sae: 64, k: 3 });
      const rng = new s.Rng(0);
      const x = new Float32Array(256 * 16);
      src.next(x, 256);
      s.initializeSae(sae, rng, x, { decoderInitNorm: 1, bDecInit: "mean" });
      const grads = s.zerosLike(sae.params);
      const adam = new s.Adam(sae.params);
      let first = 0, last = 0;
      for (let step = 0; step < 150; step++) {
        src.next(x, 256);
        const st = sae.lossAndGrad({ x, batch: 256, step, seed: 0, dead: null }, grads);
        adam.step(sae.params, grads, 3e-3, step);
        if (step === 0) first = st.loss;
        last = st.loss;
      }
      const analysis = s.analyzeLatents(sae, x, 256, { iterations: 100 });
      return { first, last, living: analysis.living, svgs: Object.values(s.analysisFigures({ name: "toy", source: "browser", analysis })) };
    `);
    expect(out.last).toBeLessThan(0.5 * out.first);
    expect(out.living).toBeGreaterThan(0);
    expect(out.svgs.length).toBe(6); // max activations, decoder similarity, three t-SNE maps, cluster utilization
    for (const svg of out.svgs) expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
  });

  it("runs a language model from its files' bytes: tokenizer, generation and activations as in Node", async () => {
    const folder = writeTinyNeox(join(dir, "neox"));
    const files = Object.fromEntries(readdirSync(folder).map((f) => [f, [...readFileSync(join(folder, f))]]));
    const got = run<{ ids: number[]; out: number[]; rows: number; d: number; first: number[]; top: number }>(`
      const files = new Map(Object.entries(args.files).map(([k, v]) => [k, Uint8Array.from(v)]));
      const { model, tokenizer, bosId } = s.modelFromFiles(files);
      const ids = tokenizer.encode("Once upon a time");
      const out = s.generate(model, [bosId, ...ids], { maxNew: 8, temperature: 0, seed: 0 });
      const contexts = [Int32Array.from([bosId, ...ids, ...ids].slice(0, 6)), Int32Array.from([bosId, ...out.slice(0, 5)])];
      const src = new s.LmSource(model, contexts, { hook: "blocks.1.hook_resid_post", excludeBos: true });
      const rows = new Float32Array(10 * src.d);
      src.next(rows, 10);
      const sae = s.newSae({ architecture: "topk", d_in: src.d, d_sae: 16, k: 2 });
      s.initializeSae(sae, new s.Rng(0), rows, { decoderInitNorm: 1, bDecInit: "mean" });
      const view = s.promptView(model, sae, contexts[0], (t) => tokenizer.decode([t]), { hook: "blocks.1.hook_resid_post", top: 2 });
      return { ids, out, rows: 10, d: src.d, first: Array.from(rows.subarray(0, 4)), top: view[1].top.length };
    `, { files });
    const node = await loadModel(folder);
    expect(got.ids).toEqual(node.tokenizer!.encode("Once upon a time"));
    expect(got.out).toEqual(generate(node.model, [node.bosId!, ...got.ids], { maxNew: 8, temperature: 0, seed: 0 }));
    expect(got.d).toBe(node.model.cfg.dModel);
    expect(got.top).toBe(2);
    expect(got.first.every(Number.isFinite)).toBe(true);
  });
});
