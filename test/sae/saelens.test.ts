/**
 * SAELens format: saekit's own round trip for every architecture, and folders laid out
 * exactly as SAELens writes them (v6 and pre-6.0 configs, half-precision weights).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { writeSafetensors } from "../../src/core/safetensors.js";
import { Tensor } from "../../src/core/tensor.js";
import { type SaeConfigInput, defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { loadSae, saveSae } from "../../src/sae/saelens.js";
import { toDense } from "../../src/sae/sparse-code.js";
import { maxAbsDiff, randn, tempDir } from "../helpers.js";

const dir = tempDir();

function randomize(sae: ReturnType<typeof createSae>, seed: number) {
  const rng = new Rng(seed);
  for (const [name, t] of sae.params) {
    if (name === "log_threshold") t.data.fill(Math.log(0.3));
    else rng.fillNormal(t.data, name.startsWith("b_") ? 0.1 : 0.4);
  }
  return sae;
}

describe("saekit SAEs round-trip through SAELens format", () => {
  const inputs: SaeConfigInput[] = [
    { architecture: "relu", d_in: 6, d_sae: 10 },
    { architecture: "topk", d_in: 6, d_sae: 10, k: 3 },
    { architecture: "batchtopk", d_in: 6, d_sae: 10, k: 3 },
    { architecture: "matryoshka", d_in: 6, d_sae: 10, k: 3, matryoshka_widths: [4, 10] },
    { architecture: "jumprelu", d_in: 6, d_sae: 10 },
    { architecture: "gated", d_in: 6, d_sae: 10 },
    { architecture: "abstopk", d_in: 6, d_sae: 10, k: 3 },
    { architecture: "vsae", d_in: 6, d_sae: 10, k: 3, variance: "learned", topk_mode: "abs" },
    { architecture: "vaease", d_in: 6, d_sae: 5, hidden: [7] },
    { architecture: "vaease", d_in: 6, d_sae: 5, hidden: [7], gate: false },
    { architecture: "mp", d_in: 6, d_sae: 10, max_iterations: 4 },
  ];
  for (const input of inputs) {
    it(`${input.architecture}${"gate" in input ? " without the gate" : ""}: same codes and reconstructions after save and load`, () => {
      const sae = randomize(createSae(defaultConfig(input)), 1);
      if (sae.buffers.has("threshold")) sae.buffers.get("threshold")!.data.fill(0.2);
      const out = join(dir, `rt-${input.architecture}${"gate" in input ? "-vae" : ""}`);
      saveSae(out, sae, { metadata: { model_name: "tiny", hook_name: "blocks.0.hook_resid_post" } });
      const loaded = loadSae(out);
      expect(loaded.sae.cfg).toEqual(sae.cfg);
      expect(loaded.metadata.hook_name).toBe("blocks.0.hook_resid_post");
      const x = randn(new Rng(2), 5 * 6);
      const a = sae.encode(x, 5);
      const denseA = toDense(a);
      const xa = sae.decode(a).slice();
      const b = loaded.sae.encode(x, 5);
      expect(maxAbsDiff(toDense(b), denseA)).toBeLessThan(1e-6);
      expect(maxAbsDiff(loaded.sae.decode(b), xa)).toBeLessThan(1e-5);
    });
  }

  for (const [arch, lensName] of [["relu", "skip_transcoder"], ["jumprelu", "jumprelu_skip_transcoder"], ["topk", "topk_skip_transcoder"]] as const) {
    it(`a ${arch} skip transcoder is saved as "${lensName}" with W_skip and computes the same after loading`, () => {
      const sae = randomize(createSae(defaultConfig({ architecture: arch, d_in: 6, d_sae: 10, ...(arch === "topk" ? { k: 3 } : {}), apply_b_dec_to_input: false, skip_connection: true })), 4);
      const out = join(dir, `rt-skip-${arch}`);
      saveSae(out, sae, { metadata: { hook_name: "blocks.0.ln2.hook_normalized", hook_name_out: "blocks.0.hook_mlp_out" } });
      const loaded = loadSae(out);
      expect(loaded.raw).toMatchObject({ architecture: lensName, d_out: 6, hook_name_out: "blocks.0.hook_mlp_out" });
      expect(loaded.sae.cfg).toEqual(sae.cfg);
      const x = randn(new Rng(2), 5 * 6);
      const want = sae.decode(sae.encode(x, 5), x).slice();
      expect(maxAbsDiff(loaded.sae.decode(loaded.sae.encode(x, 5), x), want)).toBeLessThan(1e-5);
      // W_skip x is part of it: the same SAE without it reconstructs otherwise.
      const params = new Map([...sae.params].filter(([n]) => n !== "W_skip"));
      const noSkip = createSae({ ...sae.cfg, skip_connection: false }, params, sae.buffers);
      expect(maxAbsDiff(want, noSkip.decode(noSkip.encode(x, 5)))).toBeGreaterThan(1e-2);
    });
  }

  it("writes W_enc as [d_in, d_sae] and the architecture SAELens knows", () => {
    const sae = randomize(createSae(defaultConfig({ architecture: "topk", d_in: 3, d_sae: 4, k: 2 })), 3);
    const out = join(dir, "layout");
    saveSae(out, sae);
    const { raw } = loadSae(out);
    expect(raw.architecture).toBe("topk");
    expect(raw.k).toBe(2);
    expect(raw.d_in).toBe(3);
    expect(raw.reshape_activations).toBe("none");
    // At attn.hook_z SAELens must flatten the heads itself before encoding.
    saveSae(join(dir, "layout-z"), sae, { metadata: { hook_name: "blocks.0.attn.hook_z" } });
    expect(loadSae(join(dir, "layout-z")).raw.reshape_activations).toBe("hook_z");
  });
});

describe("folders written by SAELens", () => {
  const d = 4;
  const m = 6;
  const rng = new Rng(9);
  const W_enc = new Tensor([d, m], randn(rng, d * m)); // SAELens layout [d_in, d_sae]
  const W_dec = new Tensor([m, d], randn(rng, m * d));
  const b_enc = new Tensor([m], randn(rng, m, 0.1));
  const b_dec = new Tensor([d], randn(rng, d, 0.1));

  function write(name: string, cfg: unknown, tensors: Record<string, Tensor | { dtype: "F16" | "BF16"; shape: number[]; data: Float32Array }>): string {
    const out = join(dir, name);
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "cfg.json"), JSON.stringify(cfg));
    writeSafetensors(join(out, "sae_weights.safetensors"), tensors);
    return out;
  }

  /** SAELens' forward, written out: pre = (x - b_dec) W_enc + b_enc. */
  function pre(x: Float32Array, row: number, j: number): number {
    let s = b_enc.data[j]!;
    for (let c = 0; c < d; c++) s += (x[row * d + c]! - b_dec.data[c]!) * W_enc.data[c * m + j]!;
    return s;
  }

  it("a v6 topk SAE encodes as TopK(ReLU(pre))", () => {
    const out = write("lens-topk", {
      architecture: "topk", d_in: d, d_sae: m, k: 2, dtype: "float32", device: "cpu",
      apply_b_dec_to_input: true, normalize_activations: "none", reshape_activations: "none",
      metadata: { model_name: "pythia-70m", hook_name: "blocks.0.hook_resid_post", context_size: 128 },
    }, { W_enc, W_dec, b_enc, b_dec });
    const { sae, metadata, logFeatureSparsity } = loadSae(out);
    expect(metadata.model_name).toBe("pythia-70m");
    expect(logFeatureSparsity).toBeUndefined();
    // SAELens' sparsity.safetensors: log10 feature density, one value per latent.
    writeSafetensors(join(out, "sparsity.safetensors"), { sparsity: Tensor.from([m], [-1, -2.5, -10, -0.3, -4, -6]) });
    expect([...loadSae(out).logFeatureSparsity!]).toEqual([...Float32Array.of(-1, -2.5, -10, -0.3, -4, -6)]);
    writeSafetensors(join(out, "sparsity.safetensors"), { sparsity: Tensor.from([2], [-1, -2]) });
    expect(() => loadSae(out)).toThrow(/sparsity.safetensors: tensor "sparsity": expected shape \[6\], got \[2\]/);
    writeSafetensors(join(out, "sparsity.safetensors"), { other: Tensor.from([m], [0, 0, 0, 0, 0, 0]) });
    expect(() => loadSae(out)).toThrow(/sparsity.safetensors: missing tensor "sparsity"/);
    const x = randn(new Rng(1), 3 * d);
    const f = toDense(sae.encode(x, 3));
    for (let b = 0; b < 3; b++) {
      const p = Array.from({ length: m }, (_, j) => pre(x, b, j));
      const top = p.map((v, j) => [v, j] as const).sort((u, v) => v[0] - u[0]).slice(0, 2);
      for (let j = 0; j < m; j++) {
        const kept = top.find((t) => t[1] === j);
        expect(f[b * m + j]).toBeCloseTo(kept ? Math.max(0, kept[0]) : 0, 5);
      }
    }
  });

  it("a topk SAE with rescale_acts_by_decoder_norm computes SAELens' codes and reconstructions", () => {
    // SAELens: f = TopK(ReLU(pre * n_j)), x_hat = sum_j (f_j / n_j) W_dec_j + b_dec, n_j = ||W_dec_j||.
    const out = write("lens-topk-rescaled", {
      architecture: "topk", d_in: d, d_sae: m, k: 2, apply_b_dec_to_input: true, rescale_acts_by_decoder_norm: true, metadata: {},
    }, { W_enc, W_dec, b_enc, b_dec });
    const { sae } = loadSae(out);
    const n = Array.from({ length: m }, (_, j) => Math.hypot(...W_dec.data.subarray(j * d, (j + 1) * d)));
    const x = randn(new Rng(5), 3 * d);
    const code = sae.encode(x, 3);
    const f = toDense(code);
    const xHat = sae.decode(code);
    for (let b = 0; b < 3; b++) {
      const scaled = Array.from({ length: m }, (_, j) => pre(x, b, j) * n[j]!);
      const top = scaled.map((v, j) => [v, j] as const).sort((u, v) => v[0] - u[0]).slice(0, 2);
      const want = new Array<number>(m).fill(0);
      for (const [v, j] of top) want[j] = Math.max(0, v);
      for (let j = 0; j < m; j++) expect(f[b * m + j]).toBeCloseTo(want[j]!, 4);
      for (let c = 0; c < d; c++) {
        const recon = b_dec.data[c]! + want.reduce((a, v, j) => a + (v / n[j]!) * W_dec.data[j * d + c]!, 0);
        expect(xHat[b * d + c]).toBeCloseTo(recon, 4);
      }
    }
  });

  it("normalize_activations constant_norm_rescale and layer_norm: each token normalised on the way in, its scale restored on the way out", () => {
    for (const mode of ["constant_norm_rescale", "layer_norm"] as const) {
      const out = write(`lens-${mode}`, {
        architecture: "standard", d_in: d, d_sae: m, apply_b_dec_to_input: true, normalize_activations: mode, metadata: {},
      }, { W_enc, W_dec, b_enc, b_dec });
      const { sae } = loadSae(out);
      expect(sae.cfg.input_normalization).toBe(mode);
      const x = randn(new Rng(11), 3 * d, 3);
      for (let c = 0; c < d; c++) x[2 * d + c]! += 5; // an offset the layer norm takes out and puts back
      const code = sae.encode(x, 3);
      const f = toDense(code);
      const xHat = sae.decode(code, x).slice();
      for (let b = 0; b < 3; b++) {
        // SAELens' run_time_activation_norm_fn_in / _out, written out in float64.
        const row = Array.from(x.subarray(b * d, (b + 1) * d));
        const mean = row.reduce((a, v) => a + v, 0) / d;
        const std = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / (d - 1)); // torch's x.std: Bessel's correction
        const norm = Math.hypot(...row);
        const xn = mode === "layer_norm" ? row.map((v) => (v - mean) / (std + 1e-5)) : row.map((v) => (v * Math.sqrt(d)) / norm);
        const [scale, shift] = mode === "layer_norm" ? [std, mean] : [norm / Math.sqrt(d), 0];
        const want = Array.from({ length: m }, (_, j) => {
          let s = b_enc.data[j]!;
          for (let c = 0; c < d; c++) s += (xn[c]! - b_dec.data[c]!) * W_enc.data[c * m + j]!;
          return Math.max(0, s);
        });
        for (let j = 0; j < m; j++) expect(f[b * m + j]).toBeCloseTo(want[j]!, 4);
        for (let c = 0; c < d; c++) {
          const y = b_dec.data[c]! + want.reduce((a, v, j) => a + v * W_dec.data[j * d + c]!, 0);
          expect(xHat[b * d + c]).toBeCloseTo(y * scale + shift, 4);
        }
      }
      expect(() => sae.decode(code)).toThrow(/normalises each token \((constant_norm_rescale|layer_norm)\): decode needs the input x/);
      // Saved again by saekit, cfg.json keeps the normalisation for SAELens.
      const again = join(dir, `resaved-${mode}`);
      saveSae(again, sae);
      expect(JSON.parse(readFileSync(join(again, "cfg.json"), "utf8")).normalize_activations).toBe(mode);
      const reloaded = loadSae(again).sae;
      expect(maxAbsDiff(reloaded.decode(reloaded.encode(x, 3), x), xHat)).toBeLessThan(1e-6);
    }
    expect(() => loadSae(write("mp-ln", { architecture: "matching_pursuit", d_in: d, d_sae: m, normalize_activations: "layer_norm", metadata: {} }, { W_dec, b_dec })))
      .toThrow(/mp-ln\/cfg.json: mp SAE config: input_normalization is for the linear-encoder architectures, not mp/);
  });

  it("training checkpoints: BatchTopK / Matryoshka with a scalar topk_threshold and rescaled activations, JumpReLU's log_threshold", () => {
    const n = Array.from({ length: m }, (_, j) => Math.hypot(...W_dec.data.subarray(j * d, (j + 1) * d)));
    const theta = 0.3;
    const topk_threshold = Tensor.from([], [theta]);
    const x = randn(new Rng(6), 3 * d);
    for (const [arch, extra] of [["batchtopk", {}], ["matryoshka_batchtopk", { matryoshka_widths: [2, 6] }]] as const) {
      const { sae } = loadSae(write(`ckpt-${arch}`, {
        architecture: arch, d_in: d, d_sae: m, k: 2, apply_b_dec_to_input: true, rescale_acts_by_decoder_norm: true, metadata: {}, ...extra,
      }, { W_enc, W_dec, b_enc, b_dec, topk_threshold }));
      expect(sae.cfg.architecture).toBe(arch === "batchtopk" ? "batchtopk" : "matryoshka");
      if (sae.cfg.architecture === "matryoshka") expect(sae.cfg.matryoshka_widths).toEqual([2, 6]);
      // SAELens: f = (pre * n_j) where that exceeds the threshold; x_hat = sum_j (f_j / n_j) W_dec_j + b_dec.
      const code = sae.encode(x, 3);
      const f = toDense(code);
      const xHat = sae.decode(code);
      for (let b = 0; b < 3; b++) {
        const want = Array.from({ length: m }, (_, j) => { const v = pre(x, b, j) * n[j]!; return v > theta ? v : 0; });
        for (let j = 0; j < m; j++) expect(f[b * m + j]).toBeCloseTo(want[j]!, 4);
        for (let c = 0; c < d; c++) {
          expect(xHat[b * d + c]).toBeCloseTo(b_dec.data[c]! + want.reduce((a, v, j) => a + (v / n[j]!) * W_dec.data[j * d + c]!, 0), 4);
        }
      }
    }
    const thresholds = Float32Array.from({ length: m }, (_, j) => 0.1 * (j + 1));
    const log_threshold = new Tensor([m], Float32Array.from(thresholds, Math.log));
    const { sae } = loadSae(write("ckpt-jumprelu", { architecture: "jumprelu", d_in: d, d_sae: m, apply_b_dec_to_input: true, metadata: {} },
      { W_enc, W_dec, b_enc, b_dec, log_threshold }));
    const f = toDense(sae.encode(x, 3));
    for (let b = 0; b < 3; b++) for (let j = 0; j < m; j++) expect(f[b * m + j]).toBeCloseTo(pre(x, b, j) > thresholds[j]! ? pre(x, b, j) : 0, 4);
  });

  it("a training checkpoint's activation scaler is folded in: the SAE then takes raw activations", () => {
    const cfg = { architecture: "standard", d_in: d, d_sae: m, apply_b_dec_to_input: true, metadata: {} };
    const plain = loadSae(write("unscaled", cfg, { W_enc, W_dec, b_enc, b_dec })).sae;
    const out = write("scaled", cfg, { W_enc, W_dec, b_enc, b_dec });
    writeFileSync(join(out, "activation_scaler.json"), JSON.stringify({ scaling_factor: 2.5 }));
    const scaled = loadSae(out).sae;
    const x = randn(new Rng(7), 2 * d);
    // The checkpoint was trained on 2.5 x: its codes of x are the plain weights' codes of 2.5 x,
    // and its reconstructions come back in x's units.
    const codeOfScaled = plain.encode(Float32Array.from(x, (v) => 2.5 * v), 2);
    expect(maxAbsDiff(toDense(scaled.encode(x, 2)), toDense(codeOfScaled))).toBeLessThan(1e-4);
    const back = plain.decode(codeOfScaled).map((v) => v / 2.5);
    expect(maxAbsDiff(scaled.decode(scaled.encode(x, 2)), back)).toBeLessThan(1e-4);
    writeFileSync(join(out, "activation_scaler.json"), JSON.stringify({ scaling_factor: -1 }));
    expect(() => loadSae(out)).toThrow(/activation_scaler.json: scaling_factor must be a positive number, got -1/);
  });

  it("a pre-6.0 standard SAE (flat config, activation_fn_str) in F16 encodes as ReLU(pre)", () => {
    const out = write("lens-standard-f16", {
      d_in: d, d_sae: m, activation_fn_str: "relu", apply_b_dec_to_input: true, hook_name: "blocks.3.hook_resid_post",
      model_name: "pythia-70m-deduped", context_size: 128, dtype: "float16",
    }, {
      W_enc: { dtype: "F16", shape: [d, m], data: W_enc.data },
      W_dec: { dtype: "F16", shape: [m, d], data: W_dec.data },
      b_enc: { dtype: "F16", shape: [m], data: b_enc.data },
      b_dec: { dtype: "F16", shape: [d], data: b_dec.data },
    });
    const { sae, metadata } = loadSae(out);
    expect(sae.cfg.architecture).toBe("relu");
    expect(metadata.hook_name).toBe("blocks.3.hook_resid_post");
    const x = randn(new Rng(2), 2 * d);
    const f = toDense(sae.encode(x, 2));
    for (let b = 0; b < 2; b++) for (let j = 0; j < m; j++) expect(f[b * m + j]).toBeCloseTo(Math.max(0, pre(x, b, j)), 2);
  });

  it("a jumprelu SAE keeps entries above its threshold", () => {
    const threshold = new Tensor([m], Float32Array.from({ length: m }, (_, j) => 0.1 * j));
    const out = write("lens-jumprelu", { architecture: "jumprelu", d_in: d, d_sae: m, apply_b_dec_to_input: true, metadata: {} },
      { W_enc, W_dec, b_enc, b_dec, threshold });
    const { sae } = loadSae(out);
    const x = randn(new Rng(3), 4 * d);
    const f = toDense(sae.encode(x, 4));
    for (let b = 0; b < 4; b++) {
      for (let j = 0; j < m; j++) {
        const p = pre(x, b, j);
        expect(f[b * m + j]).toBeCloseTo(p > threshold.data[j]! ? p : 0, 5);
      }
    }
  });

  it("a gated SAE fires where pre + b_gate > 0, with magnitude ReLU(exp(r_mag) pre + b_mag)", () => {
    const rng2 = new Rng(11);
    const b_gate = new Tensor([m], randn(rng2, m, 0.5));
    const r_mag = new Tensor([m], randn(rng2, m, 0.3));
    const b_mag = new Tensor([m], randn(rng2, m, 0.5));
    const out = write("lens-gated", { architecture: "gated", d_in: d, d_sae: m, apply_b_dec_to_input: true, metadata: {} },
      { W_enc, W_dec, b_gate, r_mag, b_mag, b_dec });
    const { sae } = loadSae(out);
    expect(sae.cfg.architecture).toBe("gated");
    const x = randn(new Rng(4), 5 * d);
    const f = toDense(sae.encode(x, 5));
    let fired = 0;
    for (let b = 0; b < 5; b++) {
      for (let j = 0; j < m; j++) {
        const bare = pre(x, b, j) - b_enc.data[j]!; // W_enc (x - b_dec), without SAELens' b_enc
        const want = bare + b_gate.data[j]! > 0 ? Math.max(0, Math.exp(r_mag.data[j]!) * bare + b_mag.data[j]!) : 0;
        if (want > 0) fired++;
        expect(f[b * m + j]).toBeCloseTo(want, 5);
      }
    }
    expect(fired).toBeGreaterThan(0);
  });

  it("names the problem: missing tensor, wrong shape, unknown architecture, bad cfg", () => {
    const base = { architecture: "standard", d_in: d, d_sae: m, metadata: {} };
    expect(() => loadSae(write("missing", base, { W_enc, W_dec, b_enc }))).toThrow(/missing tensor "b_dec"/);
    expect(() => loadSae(write("shape", base, { W_enc: W_dec, W_dec, b_enc, b_dec }))).toThrow(/"W_enc": expected shape \[4, 6\], got \[6, 4\]/);
    expect(() => loadSae(write("gated-no-gate", { ...base, architecture: "gated" }, { W_enc, W_dec, b_enc, b_dec }))).toThrow(/missing tensor "b_gate" for a gated SAE/);
    expect(() => loadSae(write("matryoshka", { ...base, architecture: "matryoshka_batchtopk" }, { W_enc, W_dec, b_enc, b_dec }))).toThrow(/a matryoshka_batchtopk SAE needs an integer "k"/);
    expect(() => loadSae(write("clt", { ...base, architecture: "clt" }, { W_enc, W_dec, b_enc, b_dec }))).toThrow(/"clt" is not supported/);
    expect(() => loadSae(write("noint", { ...base, d_sae: "six" }, { W_enc, W_dec, b_enc, b_dec }))).toThrow(/"d_sae" must be a positive integer/);
    // The folded training scale is no normalisation at inference.
    expect(() => loadSae(write("odd-norm", { ...base, normalize_activations: "sometimes" }, { W_enc, W_dec, b_enc, b_dec })))
      .toThrow(/unknown normalize_activations "sometimes"/);
    const folded = loadSae(write("folded-scale", { ...base, normalize_activations: "expected_average_only_in" }, { W_enc, W_dec, b_enc, b_dec }));
    const plain = loadSae(write("plain", base, { W_enc, W_dec, b_enc, b_dec }));
    // A cfg.json as Python's json module writes a NaN (here a setting read for nothing): read, not refused as JSON.
    const pythonNaN = write("python-nan", { ...base, lp_norm: 1 }, { W_enc, W_dec, b_enc, b_dec });
    writeFileSync(join(pythonNaN, "cfg.json"), readFileSync(join(pythonNaN, "cfg.json"), "utf8").replace('"lp_norm":1', '"lp_norm":NaN'));
    expect(readFileSync(join(pythonNaN, "cfg.json"), "utf8")).toContain('"lp_norm":NaN');
    expect(maxAbsDiff(toDense(loadSae(pythonNaN).sae.encode(randn(new Rng(9), d), 1)), toDense(plain.sae.encode(randn(new Rng(9), d), 1)))).toBe(0);
    const xs = randn(new Rng(8), 2 * d);
    expect(maxAbsDiff(toDense(folded.sae.encode(xs, 2)), toDense(plain.sae.encode(xs, 2)))).toBe(0);
    expect(() => loadSae(write("bdec-flag", { ...base, apply_b_dec_to_input: "no" }, { W_enc, W_dec, b_enc, b_dec })))
      .toThrow(/cfg.json: "apply_b_dec_to_input" must be true or false, got "no"/);
    // A saekit file's SAELens fields edited on their own (k, as SAELens users set it for
    // inference) are not silently overruled by the "saekit" block.
    const own = join(dir, "edited-k");
    saveSae(own, createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 2 })));
    const cfg = JSON.parse(readFileSync(join(own, "cfg.json"), "utf8"));
    writeFileSync(join(own, "cfg.json"), JSON.stringify({ ...cfg, k: 3 }));
    expect(() => loadSae(own)).toThrow(/cfg.json: "k" is 3 but the "saekit" block says 2; change both/);
    writeFileSync(join(own, "cfg.json"), JSON.stringify({ ...cfg, k: 3, saekit: { ...cfg.saekit, config: { ...cfg.saekit.config, k: 3 } } }));
    expect((loadSae(own).sae.cfg as { k: number }).k).toBe(3);
    // Settings of other architectures, which earlier versions stored when given, are
    // dropped on reading; defaultConfig itself refuses them by name.
    writeFileSync(join(own, "cfg.json"), JSON.stringify({ ...cfg, saekit: { ...cfg.saekit, config: { ...cfg.saekit.config, l0_coefficient: 3, beta: 1 } } }));
    expect(loadSae(own).sae.cfg).toEqual(cfg.saekit.config);
    expect(() => defaultConfig({ ...cfg.saekit.config, l0_coefficient: 3, beta: 1 }))
      .toThrow(/^topk SAE config: l0_coefficient, beta are not settings of a topk SAE$/);
    const broken = join(dir, "broken");
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, "cfg.json"), "{not json");
    expect(() => loadSae(broken)).toThrow(/cfg.json: not valid JSON/);
    expect(() => loadSae(join(dir, "nowhere"))).toThrow(/no cfg.json/);
  });
});
