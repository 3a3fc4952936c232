/**
 * SAEs written by the other Python tools: dictionary_learning ae.pt files made by real
 * torch.save, with the codes and reconstructions their own formulas give
 * (test/fixtures/torch/make_fixtures.py), sparsify folders, and GemmaScope params.npz
 * files written by NumPy (test/fixtures/gemma-scope/make_fixtures.py); all converted to
 * SAELens format by `saekit convert`.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { SafetensorsFile, writeSafetensors } from "../../src/core/safetensors.js";
import { Tensor } from "../../src/core/tensor.js";
import { isSaePath, openSae } from "../../src/sae/open.js";
import { loadOpenAiSae } from "../../src/sae/openai.js";
import { loadSae } from "../../src/sae/saelens.js";
import { gemmaScopeMetadata } from "../../src/sae/gemma-scope.js";
import { hookOfModulePath, saveSparsifySae, transcoderHooksOfModulePath } from "../../src/sae/sparsify.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae, withInferenceK } from "../../src/sae/registry.js";
import type { Sae } from "../../src/sae/sae.js";
import { toDense } from "../../src/sae/sparse-code.js";
import { maxAbsDiff, randn, tempDir } from "../helpers.js";

const fixtures = join(import.meta.dirname, "..", "fixtures", "torch", "dictionary_learning");
const gemmaScope = join(import.meta.dirname, "..", "fixtures", "gemma-scope");
const bin = join(import.meta.dirname, "..", "..", "bin", "saekit.js");
const dir = tempDir();

/**
 * A skip transcoder's decode against a recount: b_dec + f W_dec + sum_i x_i skip(i, c) for
 * every output c of the `rows` rows of x.
 */
function expectSkipDecode(sae: Sae, x: Float32Array, rows: number, W_dec: Float32Array, b_dec: Float32Array,
  skip: (i: number, c: number) => number): void {
  const { d_in: d, d_sae: m } = sae.cfg;
  const code = sae.encode(x, rows);
  const f = toDense(code);
  const y = sae.decode(code, x);
  for (let b = 0; b < rows; b++) {
    for (let c = 0; c < d; c++) {
      let v = b_dec[c]!;
      for (let j = 0; j < m; j++) v += f[b * m + j]! * W_dec[j * d + c]!;
      for (let i = 0; i < d; i++) v += x[b * d + i]! * skip(i, c);
      expect(y[b * d + c]).toBeCloseTo(v, 4);
    }
  }
}

describe("dictionary_learning ae.pt", () => {
  const expected = JSON.parse(readFileSync(join(fixtures, "expected.json"), "utf8"));
  const x = Float32Array.from(expected.x.flat());
  const rows = expected.x.length;
  const cases: Array<[string, string]> = [
    ["standard", "relu"], ["topk", "topk"], ["batchtopk", "batchtopk"], ["matryoshka", "matryoshka"],
    ["jumprelu", "jumprelu"], ["gated", "gated"],
  ];
  for (const [name, architecture] of cases) {
    it(`${name}: the codes and reconstructions dictionary_learning computes`, () => {
      const { sae, metadata, format } = openSae(join(fixtures, name));
      expect(format).toBe("dictionary_learning");
      expect(sae.cfg).toMatchObject({ architecture, d_in: 6, d_sae: 10 });
      if ("k" in sae.cfg) expect(sae.cfg.k).toBe(3);
      expect(metadata).toMatchObject({ model_name: "EleutherAI/pythia-70m-deduped", hook_name: "blocks.3.hook_resid_post", context_size: 128 });
      const code = sae.encode(x, rows);
      expect(maxAbsDiff(toDense(code), Float32Array.from(expected[name].f.flat()))).toBeLessThan(1e-5);
      expect(maxAbsDiff(sae.decode(code), Float32Array.from(expected[name].x_hat.flat()))).toBeLessThan(1e-5);
    });
  }

  it("matryoshka: the nested widths come from group_sizes", () => {
    const { sae } = openSae(join(fixtures, "matryoshka"));
    expect(sae.cfg).toMatchObject({ matryoshka_widths: [2, 5, 10], level_weights: [1, 1, 1] });
    expect(sae.buffers.get("threshold")!.data[0]).toBeCloseTo(0.6, 6);
  });

  it("reads the ae.pt file itself, and infers the class from the keys without config.json", () => {
    const lone = join(dir, "lone");
    mkdirSync(lone);
    copyFileSync(join(fixtures, "topk", "ae.pt"), join(lone, "weights.pt"));
    const { sae, metadata } = openSae(join(lone, "weights.pt"));
    expect(sae.cfg).toMatchObject({ architecture: "topk", k: 3 });
    expect(metadata.hook_name).toBeNull();
  });

  it("saekit convert writes a SAELens folder that computes the same", () => {
    const out = join(dir, "converted-jumprelu");
    const r = spawnSync(process.execPath, [bin, "convert", "--sae", join(fixtures, "jumprelu"), "--out", out], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ from: "dictionary_learning", architecture: "jumprelu", hook_name: "blocks.3.hook_resid_post" });
    const { sae, raw } = loadSae(out);
    expect(raw).toMatchObject({ architecture: "jumprelu", apply_b_dec_to_input: false });
    const code = sae.encode(x, rows);
    expect(maxAbsDiff(sae.decode(code), Float32Array.from(expected.jumprelu.x_hat.flat()))).toBeLessThan(1e-5);
    // Converting into a folder that holds an SAE is refused, leaving it as it was, unless --overwrite.
    const before = readFileSync(join(out, "sae_weights.safetensors"));
    const again = spawnSync(process.execPath, [bin, "convert", "--sae", join(fixtures, "topk"), "--out", out], { encoding: "utf8" });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/converted-jumprelu: holds an SAE already; choose another --out, or --overwrite to replace it/);
    expect(readFileSync(join(out, "sae_weights.safetensors")).equals(before)).toBe(true);
    const replaced = spawnSync(process.execPath, [bin, "convert", "--sae", join(fixtures, "topk"), "--out", out, "--overwrite"], { encoding: "utf8" });
    expect(replaced.status, replaced.stderr).toBe(0);
    expect(loadSae(out).raw).toMatchObject({ architecture: "topk" });
  });
});

describe("Goodfire .pth", () => {
  const goodfire = join(import.meta.dirname, "..", "fixtures", "torch", "goodfire");
  const file = join(goodfire, "Llama-3.1-8B-Instruct-SAE-l19.pth");
  const expected = JSON.parse(readFileSync(join(goodfire, "expected.json"), "utf8"));
  const x = Float32Array.from(expected.x.flat());
  const rows = expected.x.length;

  it("computes what its two linear layers compute, f = ReLU(encoder_linear(x)), x_hat = decoder_linear(f), named by the release's file", () => {
    const { sae, format, metadata } = openSae(file);
    expect(format).toBe("goodfire");
    expect(sae.cfg).toMatchObject({ architecture: "relu", d_in: 6, d_sae: 10, apply_b_dec_to_input: false });
    const code = sae.encode(x, rows);
    expect(maxAbsDiff(toDense(code), Float32Array.from(expected.f.flat()))).toBeLessThan(1e-5);
    expect(maxAbsDiff(sae.decode(code), Float32Array.from(expected.x_hat.flat()))).toBeLessThan(1e-5);
    expect(metadata).toMatchObject({ model_name: "meta-llama/Llama-3.1-8B-Instruct", hook_name: "blocks.19.hook_resid_post" });
    // The folder a hub download leaves (the file alone) opens the same; a file under another name has no hook to read off it.
    expect(isSaePath(goodfire)).toBe(true);
    expect(openSae(goodfire).format).toBe("goodfire");
    const renamed = join(dir, "goodfire-sae.pth");
    copyFileSync(file, renamed);
    expect(openSae(renamed)).toMatchObject({ format: "goodfire", metadata: { hook_name: null, model_name: null } });
  });

  it("a .pth named like a release's file but holding something else is refused, naming the file and what it holds", () => {
    const odd = join(dir, "odd");
    mkdirSync(odd);
    copyFileSync(join(goodfire, "..", "acts-dict.pt"), join(odd, "Model-SAE-l3.pth"));
    expect(() => openSae(odd)).toThrow(/odd[\\/]Model-SAE-l3\.pth: not a state dict of an SAE saekit reads: it holds activations, tokens; expected/);
  });
});

describe("OpenAI sparse_autoencoder .pt", () => {
  const openai = join(import.meta.dirname, "..", "fixtures", "torch", "openai");
  const expected = JSON.parse(readFileSync(join(openai, "expected.json"), "utf8"));
  const x = Float32Array.from(expected.x.flat());
  const rows = expected.x.length;

  for (const [name, architecture, norm] of [["topk", "topk", "layer_norm"], ["relu", "relu", "none"]] as const) {
    it(`${name}: the codes and reconstructions its Autoencoder computes${norm === "none" ? "" : " (inputs layer-normed, scale restored)"}`, () => {
      const { sae, format, raw } = openSae(join(openai, `${name}.pt`));
      expect(format).toBe("openai");
      expect(sae.cfg).toMatchObject({ architecture, d_in: 6, d_sae: 10, input_normalization: norm });
      if (name === "topk") expect(raw).toEqual({ activation: "TopK", activation_state_dict: { k: 3, postact_fn: "ReLU" } });
      const code = sae.encode(x, rows);
      expect(maxAbsDiff(toDense(code), Float32Array.from(expected[name].f.flat()))).toBeLessThan(1e-5);
      expect(maxAbsDiff(sae.decode(code, x), Float32Array.from(expected[name].x_hat.flat()))).toBeLessThan(1e-5);
    });
  }

  it("takes the hook from OpenAI's path layout, and converts to a SAELens folder that SAELens would run the same", () => {
    const layout = join(dir, "gpt2-small", "resid_post_mlp_v5_32k", "autoencoders");
    mkdirSync(layout, { recursive: true });
    copyFileSync(join(openai, "topk.pt"), join(layout, "6.pt"));
    expect(openSae(join(layout, "6.pt")).metadata).toMatchObject({ model_name: "gpt2", hook_name: "blocks.6.hook_resid_post" });
    expect(openSae(join(openai, "topk.pt")).metadata.hook_name).toBeNull();
    expect(() => loadOpenAiSae(join(fixtures, "topk", "ae.pt"))).toThrow(/ae.pt: not an OpenAI sparse_autoencoder state dict/);
    const out = join(dir, "converted-openai");
    const r = spawnSync(process.execPath, [bin, "convert", "--sae", join(layout, "6.pt"), "--out", out], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ from: "openai", architecture: "topk", hook_name: "blocks.6.hook_resid_post" });
    const { sae, raw } = loadSae(out);
    expect(raw).toMatchObject({ architecture: "topk", k: 3, normalize_activations: "layer_norm" });
    expect(maxAbsDiff(sae.decode(sae.encode(x, rows), x), Float32Array.from(expected.topk.x_hat.flat()))).toBeLessThan(1e-5);
  });
});

describe("sparsify folders", () => {
  const d = 5, m = 9, k = 2;
  const rng = new Rng(4);
  const enc = new Tensor([m, d], randn(rng, m * d));
  const encBias = new Tensor([m], randn(rng, m, 0.2));
  const W_dec = new Tensor([m, d], randn(rng, m * d));
  const b_dec = new Tensor([d], randn(rng, d, 0.2));

  function writeFolder(name: string, cfg: Record<string, unknown>, extra: Record<string, Tensor> = {}): string {
    const out = join(dir, name);
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "cfg.json"), JSON.stringify({ activation: "topk", expansion_factor: 32, normalize_decoder: true, num_latents: m, k, multi_topk: false, skip_connection: false, transcode: false, d_in: d, ...cfg }));
    writeSafetensors(join(out, "sae.safetensors"), { "encoder.weight": enc, "encoder.bias": encBias, W_dec, b_dec, ...extra });
    return out;
  }

  it("encodes TopK(ReLU(encoder(x - b_dec))) and decodes f W_dec + b_dec, as sparsify does", () => {
    const { sae, metadata, format } = openSae(writeFolder("layers.3", {}));
    expect(format).toBe("sparsify");
    expect(metadata.hook_name).toBe("blocks.3.hook_resid_post");
    const x = randn(new Rng(5), 4 * d);
    const code = sae.encode(x, 4);
    const f = toDense(code);
    const xHat = sae.decode(code);
    for (let b = 0; b < 4; b++) {
      const pre = Array.from({ length: m }, (_, j) => {
        let s = encBias.data[j]!;
        for (let c = 0; c < d; c++) s += enc.data[j * d + c]! * (x[b * d + c]! - b_dec.data[c]!);
        return Math.max(0, s);
      });
      const kept = pre.map((v, j) => [v, j] as const).sort((u, v) => v[0] - u[0]).slice(0, k);
      const want = new Float64Array(m);
      for (const [v, j] of kept) want[j] = v;
      expect(maxAbsDiff(f.subarray(b * m, (b + 1) * m), want)).toBeLessThan(1e-5);
      for (let c = 0; c < d; c++) {
        let s = b_dec.data[c]!;
        for (let j = 0; j < m; j++) s += want[j]! * W_dec.data[j * d + c]!;
        expect(xHat[b * d + c]).toBeCloseTo(s, 4);
      }
    }
  });

  it("reads groupmax SAEs: the largest ReLU'd pre-activation of each run of d_sae / k latents, as sparsify's fused encoder", () => {
    const dSae = 8, groups = 2; // two runs of four
    const e = new Tensor([dSae, d], randn(new Rng(14), dSae * d));
    const out = join(dir, "layers.5");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "cfg.json"), JSON.stringify({ activation: "groupmax", num_latents: dSae, k: groups, d_in: d }));
    writeSafetensors(join(out, "sae.safetensors"), {
      "encoder.weight": e, "encoder.bias": new Tensor([dSae], randn(new Rng(15), dSae, 0.2)), W_dec: new Tensor([dSae, d], randn(new Rng(16), dSae * d)), b_dec,
    });
    const { sae } = openSae(out);
    expect(sae.cfg).toMatchObject({ architecture: "topk", k: groups, activation: "groupmax" });
    const x = randn(new Rng(17), 6 * d);
    const f = toDense(sae.encode(x, 6));
    const bias = SafetensorsFile.open(join(out, "sae.safetensors")).read("encoder.bias").data;
    for (let b = 0; b < 6; b++) {
      const pre = Array.from({ length: dSae }, (_, j) => {
        let s2 = bias[j]!;
        for (let c = 0; c < d; c++) s2 += e.data[j * d + c]! * (x[b * d + c]! - b_dec.data[c]!);
        return Math.max(0, s2);
      });
      for (let g = 0; g < groups; g++) {
        const run = pre.slice(g * 4, g * 4 + 4);
        const best = run.indexOf(Math.max(...run));
        for (let j = 0; j < 4; j++) expect(f[b * dSae + g * 4 + j], `row ${b} run ${g}`).toBeCloseTo(j === best ? run[j]! : 0, 5);
      }
    }
    // Written back as sparsify writes it; another k would regroup the latents, so it is refused.
    saveSparsifySae(join(dir, "written-gm", "layers.5"), sae);
    expect(JSON.parse(readFileSync(join(dir, "written-gm", "layers.5", "cfg.json"), "utf8"))).toMatchObject({ activation: "groupmax", k: groups });
    expect(toDense(openSae(join(dir, "written-gm", "layers.5")).sae.encode(x, 6))).toEqual(f);
    expect(() => withInferenceK(sae, 4)).toThrow(/groupmax SAE's k is its number of latent runs/);
    expect(() => defaultConfig({ architecture: "topk", d_in: d, d_sae: 9, k: 2, activation: "groupmax" })).toThrow(/splits d_sae = 9 into k = 2 equal runs/);
    expect(() => openSae(writeFolder("layers.6", { activation: "softmax" }))).toThrow(/activation "softmax" is not supported \(topk, groupmax\)/);
  });

  it("reads transcoders: the module's input, not centred by b_dec, to its output", () => {
    const { sae, metadata } = openSae(writeFolder("layers.4.mlp", { transcode: true }));
    expect(metadata).toMatchObject({ hook_name: "blocks.4.ln2.hook_normalized", hook_name_out: "blocks.4.hook_mlp_out" });
    expect(sae.cfg.apply_b_dec_to_input).toBe(false);
    const x = randn(new Rng(6), d);
    const pre = Array.from({ length: m }, (_, j) => Math.max(0, encBias.data[j]! + enc.data.subarray(j * d, (j + 1) * d).reduce((a, w, c) => a + w * x[c]!, 0)));
    const top = pre.map((v, j) => [v, j] as const).sort((u, v) => v[0] - u[0]).slice(0, k);
    const f = toDense(sae.encode(x, 1));
    for (const [v, j] of top) expect(f[j]).toBeCloseTo(v, 5);
    expect(transcoderHooksOfModulePath("model.layers.7")).toEqual({ in: "blocks.7.hook_resid_pre", out: "blocks.7.hook_resid_post" });
    expect(transcoderHooksOfModulePath("layers.2.self_attn")).toEqual({ in: "blocks.2.ln1.hook_normalized", out: "blocks.2.hook_attn_out" });
  });

  it("reads skip transcoders: sae_out += x @ W_skip.mT, as sparsify computes it", () => {
    const W_skip = new Tensor([d, d], randn(new Rng(8), d * d, 0.3));
    const { sae } = openSae(writeFolder("layers.4.mlp", { transcode: true, skip_connection: true, multi_topk: true }, { W_skip }));
    expect(sae.cfg).toMatchObject({ skip_connection: true, multi_topk: true });
    const x = randn(new Rng(9), 2 * d);
    // W_skip [out, in]: skip term sum_i x_i W_skip[c, i].
    expectSkipDecode(sae, x, 2, W_dec.data, b_dec.data, (i, c) => W_skip.data[c * d + i]!);
  });

  it("writes TopK SAEs as sparsify does, which read back to the same codes and reconstructions", () => {
    const cases = [
      { folder: "layers.2", cfg: { apply_b_dec_to_input: true }, transcoder: false },
      // sparsify always centres an SAE's input: this one's bias takes W_enc b_dec instead.
      { folder: "layers.3", cfg: { apply_b_dec_to_input: false }, transcoder: false },
      { folder: "layers.4.mlp", cfg: { apply_b_dec_to_input: false, skip_connection: true, multi_topk: true }, transcoder: true },
    ];
    for (const c of cases) {
      const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k, ...c.cfg }));
      for (const t of sae.params.values()) new Rng(7).fillNormal(t.data, 0.4);
      const out = join(dir, "written", c.folder);
      saveSparsifySae(out, sae, { transcoder: c.transcoder });
      const back = openSae(out);
      expect(back.format).toBe("sparsify");
      expect(JSON.parse(readFileSync(join(out, "cfg.json"), "utf8"))).toMatchObject({ activation: "topk", num_latents: m, k, transcode: c.transcoder, d_in: d });
      const x = randn(new Rng(8), 3 * d);
      const want = sae.encode(x, 3);
      expect(maxAbsDiff(toDense(back.sae.encode(x, 3)), toDense(want))).toBeLessThan(1e-5);
      expect(maxAbsDiff(back.sae.decode(back.sae.encode(x, 3), x), sae.decode(want, x).slice())).toBeLessThan(1e-5);
      if (c.transcoder) expect(back.metadata).toMatchObject({ hook_name: "blocks.4.ln2.hook_normalized", hook_name_out: "blocks.4.hook_mlp_out" });
    }
    expect(() => saveSparsifySae(join(dir, "written", "jr"), createSae(defaultConfig({ architecture: "jumprelu", d_in: d, d_sae: m }))))
      .toThrow(/sparsify reads TopK SAEs .* only; this is a jumprelu SAE/);
  });

  it("names hook points after the module path, and refuses what it cannot splice", () => {
    expect(hookOfModulePath("layers.0")).toBe("blocks.0.hook_resid_post");
    expect(hookOfModulePath("gpt_neox.layers.5")).toBe("blocks.5.hook_resid_post");
    expect(hookOfModulePath("layers.2.mlp")).toBe("blocks.2.hook_mlp_out");
    expect(hookOfModulePath("layers.2.self_attn")).toBe("blocks.2.hook_attn_out");
    expect(hookOfModulePath("embed_tokens")).toBe("hook_embed");
    expect(hookOfModulePath("lm_head")).toBeNull();
    expect(() => openSae(writeFolder("transcoder", { transcode: true }))).toThrow(/transcoder.*cfg.json: a transcoder of module "transcoder", whose input and output hooks saekit does not know/);
    expect(() => openSae(writeFolder("layers.5.mlp", { transcode: true, skip_connection: true }))).toThrow(/sae.safetensors: no tensor named "W_skip"/);
    expect(() => openSae(writeFolder("groupmax", { activation: "groupmax" }))).toThrow(/groupmax.*cfg.json: .*groupmax splits d_sae = 9 into k = 2 equal runs/);
    expect(() => openSae(join(dir, "nothing"))).toThrow(/no such SAE file or folder/);
    mkdirSync(join(dir, "empty"));
    expect(() => openSae(join(dir, "empty"))).toThrow(/not an SAE saekit can read/);
  });
});

describe("Gemma Scope 2 params.safetensors", () => {
  const d = 6, m = 10;
  const rng = new Rng(12);
  const w_enc = new Tensor([d, m], randn(rng, d * m, 0.5)), w_dec = new Tensor([m, d], randn(rng, m * d, 0.5));
  const b_enc = new Tensor([m], randn(rng, m, 0.2)), b_dec = new Tensor([d], randn(rng, d, 0.2));
  const threshold = new Tensor([m], Float32Array.from({ length: m }, (_, j) => 0.05 * j));
  const affine = new Tensor([d, d], randn(rng, d * d, 0.3));
  const write = (folder: string, skip: boolean) => {
    const out = join(dir, folder);
    mkdirSync(out, { recursive: true });
    writeSafetensors(join(out, "params.safetensors"), { w_enc, w_dec, b_enc, b_dec, threshold, ...(skip ? { affine_skip_connection: affine } : {}) });
    return out;
  };

  it("JumpReLU on x W_enc + b_enc, the hook and Gemma 3 model from the release path", () => {
    const { sae, metadata, format } = openSae(write("gemma-scope-2-1b-pt/resid_post/layer_7_width_16k_l0_small", false));
    expect(format).toBe("gemma_scope");
    expect(metadata).toMatchObject({ model_name: "gemma-3-1b-pt", hook_name: "blocks.7.hook_resid_post" });
    expect(sae.cfg).toMatchObject({ architecture: "jumprelu", apply_b_dec_to_input: false, skip_connection: false });
    const x = randn(new Rng(13), 2 * d);
    const f = toDense(sae.encode(x, 2));
    for (let b = 0; b < 2; b++) {
      for (let j = 0; j < m; j++) {
        let pre = b_enc.data[j]!;
        for (let c = 0; c < d; c++) pre += x[b * d + c]! * w_enc.data[c * m + j]!;
        expect(f[b * m + j]).toBeCloseTo(pre > threshold.data[j]! ? pre : 0, 5);
      }
    }
  });

  it("an affine transcoder adds x @ affine_skip_connection, from the MLP's input to its output", () => {
    const { sae, metadata } = openSae(write("gemma-scope-2-270m-it/transcoder_all/layer_3_width_16k_l0_big_affine", true));
    expect(metadata).toMatchObject({ model_name: "gemma-3-270m-it", hook_name: "blocks.3.ln2.hook_normalized", hook_name_out: "blocks.3.hook_mlp_out" });
    expect(sae.cfg.skip_connection).toBe(true);
    // x @ affine: skip term sum_i x_i A[i, c].
    expectSkipDecode(sae, randn(new Rng(14), 3 * d), 3, w_dec.data, b_dec.data, (i, c) => affine.data[i * d + c]!);
  });
});

describe("GemmaScope params.npz", () => {
  const expected = JSON.parse(readFileSync(join(gemmaScope, "expected.json"), "utf8"));
  const x = Float32Array.from(expected.x);
  const rows = x.length / expected.d;
  const releases: Array<[string, string, Record<string, unknown>]> = [
    ["np.savez (stored)", "gemma-scope-2b-pt-res/layer_3/width_16k/average_l0_5",
      { model_name: "gemma-2-2b", hook_name: "blocks.3.hook_resid_post" }],
    ["np.savez_compressed (deflated)", "gemma-scope-9b-it-mlp/layer_7/width_16k/canonical",
      { model_name: "gemma-2-9b-it", hook_name: "blocks.7.hook_mlp_out" }],
  ];
  for (const [label, folder, metadata] of releases) {
    it(`${label}: GemmaScope's JumpReLU codes and reconstructions, hook from the release path`, () => {
      for (const path of [join(gemmaScope, folder), join(gemmaScope, folder, "params.npz")]) {
        const loaded = openSae(path);
        expect(loaded.format).toBe("gemma_scope");
        expect(loaded.sae.cfg).toMatchObject({ architecture: "jumprelu", d_in: 6, d_sae: 10, apply_b_dec_to_input: false });
        expect(loaded.metadata).toMatchObject(metadata);
        const code = loaded.sae.encode(x, rows);
        expect(maxAbsDiff(toDense(code), Float32Array.from(expected.codes))).toBeLessThan(1e-5);
        expect(maxAbsDiff(loaded.sae.decode(code), Float32Array.from(expected.x_hat))).toBeLessThan(1e-5);
      }
    });
  }

  it("knows the model of a transcoder release, and leaves its hooks to the user; attention SAEs read hook_z", () => {
    expect(gemmaScopeMetadata("/cache/gemma-scope-2b-pt-transcoders/layer_12/width_16k/average_l0_76/params.npz"))
      .toMatchObject({ model_name: "gemma-2-2b", hook_name: null });
    expect(gemmaScopeMetadata("/cache/gemma-scope-2b-pt-att/layer_12/width_16k/average_l0_76/params.npz").hook_name).toBe("blocks.12.attn.hook_z");
    expect(gemmaScopeMetadata("/cache/gemma-scope-9b-it-res/layer_9/width_16k/average_l0_88/params.npz"))
      .toMatchObject({ model_name: "gemma-2-9b-it", hook_name: "blocks.9.hook_resid_post" });
  });

  it("converts to a SAELens folder that encodes the same", () => {
    const out = join(dir, "gemma-scope-converted");
    const r = spawnSync(process.execPath, [bin, "convert", "--sae", join(gemmaScope, releases[0]![1]), "--out", out], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const { sae, metadata } = loadSae(out);
    expect(metadata.hook_name).toBe("blocks.3.hook_resid_post");
    expect(maxAbsDiff(toDense(sae.encode(x, rows)), Float32Array.from(expected.codes))).toBeLessThan(1e-5);
  });

  it("names the problem in a broken archive", () => {
    const bad = join(dir, "gemma-scope-bad");
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, "params.npz"), "not a zip");
    expect(() => openSae(bad)).toThrow(/params.npz: no zip end-of-directory record/);
    // A real archive with one array missing.
    const src = readFileSync(join(gemmaScope, releases[0]![1], "params.npz"));
    const cut = Buffer.from(src);
    // Rename the entry (its local header, then its directory record).
    for (let at = cut.indexOf("threshold.npy"); at >= 0; at = cut.indexOf("threshold.npy", at + 1)) cut.write("threshXld", at);
    writeFileSync(join(bad, "params.npz"), cut);
    expect(() => openSae(bad)).toThrow(/missing array "threshold" for a GemmaScope SAE/);
    // A deflated entry that inflates past its declared size is refused, not inflated.
    const deflated = Buffer.from(readFileSync(join(gemmaScope, releases[1]![1], "params.npz")));
    const dirEntry = deflated.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); // first central-directory record (W_enc.npy)
    deflated.writeUInt32LE(16, dirEntry + 24); // claims 16 uncompressed bytes
    writeFileSync(join(bad, "params.npz"), deflated);
    expect(() => openSae(bad)).toThrow(/array "W_enc": its deflated data is corrupt/);
  });
});
