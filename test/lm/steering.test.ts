/**
 * Steering with SAE latents: the hook adds scale x the latent's decoder direction at every
 * position, generation applies it to the prompt and to every new token, and the CLI wires
 * an SAE's latents to it; clamping sets a latent to a value in the activation.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { packageRoot } from "../../src/core/native.js";
import { clampingHook, generate, steeringHook } from "../../src/lm/generate.js";
import { loadModel } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { saveSae } from "../../src/sae/saelens.js";
import { tempDir } from "../helpers.js";
import { writeTinyNeox } from "./fixtures.js";

describe("steering", async () => {
  const dir = tempDir();
  const modelDir = writeTinyNeox(join(dir, "model"), { seed: 5 });
  const { model } = await loadModel(modelDir);
  const d = model.cfg.dModel;
  const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 16, k: 2 }));
  new Rng(3).fillNormal(sae.params.get("W_dec")!.data, 1);
  const W_dec = sae.params.get("W_dec")!.data;
  const hook = "blocks.0.hook_resid_post";

  it("adds scale x W_dec[latent] (summed over latents) to every position", () => {
    const act = new Float32Array(3 * d).fill(1);
    steeringHook(W_dec, d, [{ latent: 2, scale: 4 }, { latent: 5, scale: -1 }])(act, { name: hook, batch: 1, seq: 3, width: d });
    for (let r = 0; r < 3; r++) for (let c = 0; c < d; c++) expect(act[r * d + c]).toBeCloseTo(1 + 4 * W_dec[2 * d + c]! - W_dec[5 * d + c]!, 5);
    expect(() => steeringHook(W_dec, d, [{ latent: 16, scale: 1 }])).toThrow(/latent 16 is outside the SAE's 16 latents/);
  });

  it("steers every forward pass of a generation: the same tokens as steering by hand, not those of no steering", () => {
    const prompt = [0, 5, 9];
    const steer = steeringHook(W_dec, d, [{ latent: 1, scale: 30 }]);
    const steered = generate(model, prompt, { maxNew: 8, hooks: { [hook]: steer } });
    const plain = generate(model, prompt, { maxNew: 8 });
    expect(steered).not.toEqual(plain);
    // By hand, without the cache: rerun the whole sequence with the hook for every new token.
    const seq = [...prompt];
    const V = model.cfg.vocabSize;
    for (let i = 0; i < 8; i++) {
      const logits = model.forward(Int32Array.from(seq), 1, seq.length, { hooks: { [hook]: steeringHook(W_dec, d, [{ latent: 1, scale: 30 }]) } }).logits!;
      const last = logits.subarray((seq.length - 1) * V);
      seq.push(last.indexOf(Math.max(...last)));
    }
    expect(steered).toEqual(seq.slice(prompt.length));
    expect(generate(model, prompt, { maxNew: 8, hooks: { [hook]: steeringHook(W_dec, d, [{ latent: 1, scale: 0 }]) } })).toEqual(plain);
  });

  it("saekit generate --sae --steer", () => {
    const saeDir = join(dir, "sae");
    saveSae(saeDir, sae, { metadata: { hook_name: hook } });
    const bin = join(packageRoot(), "bin", "saekit.js");
    const run = (...extra: string[]) => spawnSync(process.execPath, [bin, "generate", "--model", modelDir, "--prompt", "Once upon", "--max-new", "8", ...extra], { encoding: "utf8" });
    const plain = run();
    const steered = run("--sae", saeDir, "--steer", "1:30");
    expect(plain.status, plain.stderr).toBe(0);
    expect(steered.status, steered.stderr).toBe(0);
    expect(steered.stdout).not.toBe(plain.stdout);
    expect(run("--sae", saeDir, "--steer", "1:30").stdout).toBe(steered.stdout);
    expect(run("--steer", "1:30").stderr).toMatch(/--sae goes with --steer or --clamp/);
    expect(run("--sae", saeDir).stderr).toMatch(/--sae goes with --steer or --clamp/);
    expect(run("--sae", saeDir, "--steer", "1=30").stderr).toMatch(/expected latent:scale pairs/);
    // Clamping a latent high changes the continuation; clamping and steering together run.
    const clamped = run("--sae", saeDir, "--clamp", "3:40");
    expect(clamped.status, clamped.stderr).toBe(0);
    expect(clamped.stdout).not.toBe(plain.stdout);
    expect(run("--sae", saeDir, "--clamp", "3:40", "--steer", "1:30").status).toBe(0);
    expect(run("--sae", saeDir, "--clamp", "3").stderr).toMatch(/expected latent:value pairs/);
  });

  it("clamping moves each activation by (value - f) x W_dec[latent]: exact on an identity SAE, by the formula on any", () => {
    // AbsTopK with k = d and identity weights: f = x, so clamping latent j sets coordinate j.
    const id = createSae(defaultConfig({ architecture: "abstopk", d_in: d, d_sae: d, k: d }));
    for (const name of ["W_enc", "W_dec"]) for (let i = 0; i < d; i++) id.params.get(name)!.data[i * d + i] = 1;
    const rng = new Rng(9);
    const x = rng.fillNormal(new Float32Array(3 * d));
    const act = x.slice();
    clampingHook(id, [{ latent: 4, value: 7 }, { latent: 0, value: 0 }])(act, { name: hook, batch: 1, seq: 3, width: d });
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < d; c++) expect(act[r * d + c]).toBe(c === 4 ? 7 : c === 0 ? 0 : x[r * d + c]);
    }
    // A TopK SAE: the formula with f from its own code (0 where the latent is not selected).
    const topk = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 16, k: 2 }));
    for (const t of topk.params.values()) new Rng(4).fillNormal(t.data, 0.5);
    const dec = topk.params.get("W_dec")!.data;
    const y = rng.fillNormal(new Float32Array(2 * d));
    const edited = y.slice();
    clampingHook(topk, [{ latent: 6, value: 2.5 }])(edited, { name: hook, batch: 1, seq: 2, width: d });
    const code = topk.encode(y, 2);
    for (let r = 0; r < 2; r++) {
      let f = 0;
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) if (code.idx[e] === 6) f = code.val[e]!;
      for (let c = 0; c < d; c++) expect(edited[r * d + c]).toBeCloseTo(y[r * d + c]! + (2.5 - f) * dec[6 * d + c]!, 5);
    }
    expect(() => clampingHook(topk, [{ latent: 16, value: 1 }])).toThrow(/latent 16 is outside the SAE's 16 latents/);
    // An SAE that layer-norms each token decodes at the token's scale: the move is std times as large.
    const ln = createSae({ ...topk.cfg, input_normalization: "layer_norm" }, topk.params);
    const normed = y.slice();
    clampingHook(ln, [{ latent: 6, value: 2.5 }])(normed, { name: hook, batch: 1, seq: 2, width: d });
    const lnCode = ln.encode(y, 2);
    for (let r = 0; r < 2; r++) {
      const row = Array.from(y.subarray(r * d, (r + 1) * d));
      const mean = row.reduce((a, v) => a + v, 0) / d;
      const std = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / (d - 1));
      let f = 0;
      for (let e = lnCode.rowPtr[r]!; e < lnCode.rowPtr[r + 1]!; e++) if (lnCode.idx[e] === 6) f = lnCode.val[e]!;
      for (let c = 0; c < d; c++) expect(normed[r * d + c]).toBeCloseTo(y[r * d + c]! + (2.5 - f) * std * dec[6 * d + c]!, 5);
    }
  });
});
