/**
 * Every architecture's hand-written backward against finite differences of its float64
 * reference loss, on fixed random data and noise (no ties at any selection boundary).
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { type SaeConfigInput, defaultConfig } from "../../src/sae/config.js";
import { setDenseCodeDensity } from "../../src/sae/dense-code.js";
import { JumpReluSae } from "../../src/sae/jumprelu.js";
import { createSae } from "../../src/sae/registry.js";
import type { Sae } from "../../src/sae/sae.js";
import { zerosLike } from "../../src/sae/sae.js";
import { expectGradientsMatch, gradCheck, toParams64 } from "./gradcheck.js";
import { jumpReluThresholdGrad } from "./reference-losses.js";

const D = 5;
const M = 12;
const BATCH = 4;

function randomSae(input: Partial<SaeConfigInput> & { architecture: SaeConfigInput["architecture"] }, seed = 1): Sae {
  const sae = createSae(defaultConfig({ d_in: D, d_sae: M, ...input }));
  const rng = new Rng(seed);
  for (const [name, t] of sae.params) {
    const scale = name.startsWith("b_") ? 0.1 : 0.5;
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * scale;
  }
  if (sae.params.has("b_logvar")) sae.params.get("b_logvar")!.data.fill(-0.5);
  if (sae.params.has("log_gamma")) sae.params.get("log_gamma")!.data[0] = 0.2;
  if (sae.params.has("log_threshold")) {
    const lt = sae.params.get("log_threshold")!.data;
    for (let j = 0; j < lt.length; j++) lt[j] = Math.log(0.2 + 0.3 * rng.uniform());
  }
  return sae;
}

function batch(seed = 7): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(BATCH * D));
}

const someDead = () => Uint8Array.from({ length: M }, (_, j) => (j % 3 === 0 ? 1 : 0));
const allDead = () => new Uint8Array(M).fill(1);

// The third element: which latents are dead (AuxK's); true is someDead's four.
const cases: Array<[string, Partial<SaeConfigInput> & { architecture: SaeConfigInput["architecture"] }, boolean | "all"]> = [
  ["topk", { architecture: "topk", k: 3 }, false],
  ["topk + AuxK", { architecture: "topk", k: 3, aux_k: 2, aux_alpha: 0.5 }, true],
  // AuxK's three paths: dense products (above), every dead latent selected, sparse kernels.
  ["topk + AuxK selecting every dead latent", { architecture: "topk", k: 3, aux_k: 4, aux_alpha: 0.5 }, true],
  ["topk + AuxK among many dead latents (the sparse kernels)", { architecture: "topk", k: 3, aux_k: 2, aux_alpha: 0.5 }, "all"],
  ["abstopk + AuxK among many dead latents (the sparse kernels)", { architecture: "abstopk", k: 3, aux_k: 2, aux_alpha: 0.5 }, "all"],
  ["topk without b_dec on input", { architecture: "topk", k: 3, apply_b_dec_to_input: false }, false],
  ["topk + Multi-TopK + AuxK", { architecture: "topk", k: 2, multi_topk: true, aux_k: 2, aux_alpha: 0.5 }, true],
  ["topk groupmax (sparsify) + AuxK", { architecture: "topk", k: 3, activation: "groupmax", aux_k: 2, aux_alpha: 0.5 }, true],
  ["abstopk + AuxK", { architecture: "abstopk", k: 3, aux_k: 2, aux_alpha: 0.5 }, true],
  ["abstopk + Multi-TopK", { architecture: "abstopk", k: 2, multi_topk: true }, false],
  ["batchtopk + AuxK", { architecture: "batchtopk", k: 3, aux_k: 2, aux_alpha: 0.5 }, true],
  ["matryoshka + AuxK", { architecture: "matryoshka", k: 2, matryoshka_widths: [3, 7, 12], level_weights: [0.5, 1, 2], aux_k: 2, aux_alpha: 0.5 }, true],
  ["matryoshka, default levels", { architecture: "matryoshka", k: 2 }, false],
  ["relu (L1 mid warm-up)", { architecture: "relu", l1_coefficient: 0.7, l1_warmup_steps: 10 }, false],
  ["panneal Lp^p at p = 0.6 (mid warm-up), free decoder norms", { architecture: "panneal", l1_coefficient: 0.7, l1_warmup_steps: 10, p_start: 0.6, decoder_norm: "none", anneal_end: 100 }, false],
  ["panneal Lp at p = 0.5", { architecture: "panneal", l1_coefficient: 0.4, sparsity_function: "Lp", p_start: 0.5, anneal_end: 100 }, false],
  ["panneal Lp^p at p = 1 (the L1 penalty)", { architecture: "panneal", l1_coefficient: 0.7, anneal_end: 100 }, false],
  ["jumprelu", { architecture: "jumprelu", l0_coefficient: 0.3, bandwidth: 0.5 }, false],
  ["jumprelu with a target L0", { architecture: "jumprelu", l0_coefficient: 0.3, bandwidth: 0.5, target_l0: 2 }, false],
  ["jumprelu tanh + pre-activation loss", { architecture: "jumprelu", l0_coefficient: 0.3, bandwidth: 0.5, sparsity_loss_mode: "tanh", tanh_scale: 2, pre_act_loss_coefficient: 0.4 }, true],
  ["gated (L1 mid warm-up)", { architecture: "gated", l1_coefficient: 0.7, l1_warmup_steps: 10 }, false],
  ["gated without b_dec on input", { architecture: "gated", l1_coefficient: 0.4, apply_b_dec_to_input: false }, false],
  ["gated_anneal Lp^p at p = 0.6 (mid warm-up), free decoder norms", { architecture: "gated_anneal", l1_coefficient: 0.7, l1_warmup_steps: 10, p_start: 0.6, decoder_norm: "none", anneal_end: 100 }, false],
  ["gated_anneal Lp at p = 0.5", { architecture: "gated_anneal", l1_coefficient: 0.4, sparsity_function: "Lp", p_start: 0.5, anneal_end: 100 }, false],
  ["gated_anneal at p = 1 (gated's L1 penalty)", { architecture: "gated_anneal", l1_coefficient: 0.7, anneal_end: 100 }, false],
  ["vsae all/fixed/relu", { architecture: "vsae", k: 3, beta: 0.8, kl_warmup_steps: 10 }, false],
  ["vsae all/fixed/relu, ReLU on mu", { architecture: "vsae", k: 3, beta: 0.8, relu_mu: true }, false],
  ["vsae active/fixed/abs", { architecture: "vsae", k: 3, beta: 0.8, kl_scope: "active", topk_mode: "abs" }, false],
  ["vsae all/learned/abs", { architecture: "vsae", k: 3, beta: 0.8, variance: "learned", topk_mode: "abs" }, false],
  ["vsae learned without b_dec on input", { architecture: "vsae", k: 3, beta: 0.8, variance: "learned", apply_b_dec_to_input: false }, false],
  ["vsae active/learned/relu + AuxK", { architecture: "vsae", k: 3, beta: 0.8, variance: "learned", kl_scope: "active", relu_mu: true, aux_k: 2, aux_alpha: 0.5 }, true],
  ["vaease linear", { architecture: "vaease" }, false],
  ["vaease MLP encoder", { architecture: "vaease", hidden: [7, 6] }, false],
  ["plain VAE (vaease without the gate), MLP encoder", { architecture: "vaease", hidden: [7], gate: false }, false],
  ["mp", { architecture: "mp" }, false],
  ["mp, at most 2 steps, without b_dec on input", { architecture: "mp", max_iterations: 2, apply_b_dec_to_input: false }, false],
  ["mp stopped by the residual threshold", { architecture: "mp", residual_threshold: 2.5 }, false],
];

describe("gradient check (float64 finite differences)", () => {
  // Every case as an SAE (reconstructing x), as a transcoder (predicting another target)
  // and, for the linear-encoder architectures, as a skip transcoder (+ W_skip x).
  const variants = [["", {}], [", as a transcoder", { apply_b_dec_to_input: false }],
    [", as a skip transcoder", { apply_b_dec_to_input: false, skip_connection: true }]] as const;
  // The linear-encoder SAEs run each check twice: on the sparse code kernels, and on their
  // dense GEMM twins (dense-code.ts), which a code of this density would take by default.
  const codePaths = [[" (sparse kernels)", Infinity], [" (dense GEMMs)", 0]] as const;
  for (const [label, input, withDead] of cases) for (const [suffix, extra] of variants) for (const [path, density] of codePaths) {
    const linear = input.architecture !== "vaease" && input.architecture !== "mp";
    if (!linear && density === 0) continue;
    if ("skip_connection" in extra && !linear) continue;
    if (suffix && input.architecture === "mp") continue; // a matching pursuit is never a transcoder
    it(`${label}${suffix}${linear ? path : ""}`, () => {
      const sae = randomSae({ ...extra, ...input });
      const skip = sae instanceof JumpReluSae ? ["log_threshold"] : [];
      const target = suffix ? batch(13) : undefined;
      const previous = setDenseCodeDensity(density);
      let r: ReturnType<typeof gradCheck>;
      try {
        r = gradCheck(sae, { x: batch(), batch: BATCH, step: 5, seed: 3, dead: withDead === "all" ? allDead() : withDead ? someDead() : null, target }, { skip });
      } finally {
        setDenseCodeDensity(previous);
      }
      expectGradientsMatch(r, label);
      // The check must exercise something: the reconstruction gradients are not zero.
      expect(r.errors.W_dec!.fdNorm).toBeGreaterThan(1e-3);
      if ("skip_connection" in extra) expect(r.errors.W_skip!.fdNorm).toBeGreaterThan(1e-3);
      // The gated SAE's magnitude path and gate must both be exercised.
      for (const name of ["r_mag", "b_mag", "b_enc"]) if (r.errors[name] && (input.architecture === "gated" || input.architecture === "gated_anneal")) expect(r.errors[name]!.fdNorm, name).toBeGreaterThan(1e-3);
    });
  }

  for (const [label, extra, dead] of [
    ["step", {}, null],
    ["tanh + pre-activation loss", { sparsity_loss_mode: "tanh", tanh_scale: 2, pre_act_loss_coefficient: 0.4 }, someDead()],
    ["target L0", { target_l0: 2 }, null],
  ] as const) {
    it(`jumprelu's threshold pseudo-gradient equals the straight-through formula (${label})`, () => {
      const sae = randomSae({ architecture: "jumprelu", l0_coefficient: 0.3, bandwidth: 0.5, ...extra }) as JumpReluSae;
      const x = batch();
      const grads = zerosLike(sae.params);
      sae.lossAndGrad({ x, batch: BATCH, step: 5, seed: 3, dead }, grads);
      const want = jumpReluThresholdGrad(sae.cfg, toParams64(sae.params), { x: Float64Array.from(x), batch: BATCH, step: 5, seed: 3, dead });
      const got = grads.get("log_threshold")!.data;
      expect(want.some((v) => v !== 0)).toBe(true); // some entries sit in the band
      for (let j = 0; j < M; j++) expect(Math.abs(got[j]! - want[j]!)).toBeLessThan(1e-5 * (1 + Math.abs(want[j]!)));
    });
  }
});
