/**
 * SAE configurations: plain data that round-trips to JSON (snake_case, like SAELens'
 * cfg.json), one type per architecture. Notation used throughout src/sae/:
 *
 *   pre   = W_enc (x - b_dec) + b_enc          (W_enc stored [d_sae, d_in], one row per latent)
 *   f     = the sparse code (architecture-specific activation of pre)
 *   x_hat = W_dec^T f + b_dec                  (W_dec [d_sae, d_in])
 *
 * Losses are per token, summed over d_in and averaged over the batch, as in SAELens and
 * the vSAE paper: ||x - x_hat||^2 = sum_d (x_d - x_hat_d)^2.
 */

import { withDefaults } from "../util/defaults.js";
import { INPUT_NORMALIZATIONS, type InputNormalization } from "./input-norm.js";

export const ARCHITECTURES = ["relu", "panneal", "topk", "batchtopk", "matryoshka", "jumprelu", "gated", "gated_anneal", "abstopk", "vsae", "vaease", "mp"] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export interface BaseSaeConfig {
  architecture: Architecture;
  d_in: number;
  d_sae: number;
  /** "unit": decoder rows held at unit norm (gradient's parallel part removed, rows
   *  renormalised after each step), as dictionary_learning and sparsify do; "none": free. */
  decoder_norm: "unit" | "none";
  /** Subtract b_dec from the input before encoding (SAELens' apply_b_dec_to_input). */
  apply_b_dec_to_input: boolean;
  /**
   * A skip connection (skip transcoders: sparsify's skip_connection, SAELens'
   * skip_transcoder): x_hat = W_dec^T f + b_dec + W_skip x, W_skip [d_in, d_in] (output by
   * input) initialised to zero, so the sparse code only explains what a linear map cannot.
   */
  skip_connection: boolean;
  /**
   * A per-token normalisation around the SAE (input-norm.ts), as SAELens' normalize_activations
   * "constant_norm_rescale" and "layer_norm": the SAE encodes each token rescaled (or
   * layer-normed) and decode maps its output back. Read from SAEs other tools trained, for
   * inference; saekit does not train with it ("none").
   */
  input_normalization: InputNormalization;
}

/** SAELens "standard": f = ReLU(pre); loss += l1 * sum_j f_j ||W_dec_j|| (L1 warm-up). */
export interface ReluConfig extends BaseSaeConfig {
  architecture: "relu";
  l1_coefficient: number;
  /** L1 coefficient ramps linearly from 0 over this many steps. */
  l1_warmup_steps: number;
}

/**
 * A sparsity penalty annealed in p (p-annealing.ts): sum_j u_j^p ("Lp^p") or its 1/p-th
 * power ("Lp") over u_j = v_j ||W_dec_j||, with p falling from p_start toward p_end in
 * n_sparsity_updates steps between anneal_start and anneal_end. At each change of p the
 * coefficient is rescaled by the ratio of the penalty at the old and the new p over the
 * batches since the last change (at most sparsity_queue_length), so the penalty's weight
 * carries over.
 */
export interface PAnnealSettings {
  /** The initial coefficient of the penalty (dictionary_learning's initial_sparsity_penalty). */
  l1_coefficient: number;
  /** The coefficient ramps linearly from 0 over this many steps (sparsity_warmup_steps). */
  l1_warmup_steps: number;
  /** "Lp^p": mean over tokens of sum_j u_j^p; "Lp": of (sum_j u_j^p)^(1/p) (u_j = v_j ||W_dec_j||). */
  sparsity_function: "Lp^p" | "Lp";
  p_start: number;
  /** Where p heads; the last of the linearly spaced values, reached only at anneal_end. */
  p_end: number;
  /** The step of the first update (p stays at p_start until the second). */
  anneal_start: number;
  /** The step of the last update; 0: the end of the run (never reached, so p_end itself is not used). */
  anneal_end: number;
  /** Updates of p (and of the coefficient), spaced evenly from anneal_start to anneal_end. */
  n_sparsity_updates: number;
  /** At most this many batches (the latest since the last change) compare the penalties at the current and the next p. */
  sparsity_queue_length: number;
}

/**
 * p-annealing (Karvonen et al. 2024; dictionary_learning's PAnnealTrainer, one of SAEBench's
 * Pythia-70M sweeps): a ReLU SAE whose sparsity penalty, on f = ReLU(pre), is annealed in p
 * (panneal.ts).
 */
export interface PAnnealConfig extends BaseSaeConfig, PAnnealSettings {
  architecture: "panneal";
}

/**
 * Gated SAE (SAELens "gated"): a Heaviside gate on pre + b_gate picks the latents, a
 * rescaled magnitude path ReLU(exp(r_mag) pre + b_mag) sets their values; loss += l1 on the
 * gate's ReLU (times decoder norms) + an auxiliary reconstruction through the gate.
 */
export interface GatedConfig extends BaseSaeConfig {
  architecture: "gated";
  l1_coefficient: number;
  l1_warmup_steps: number;
}

/**
 * Gated SAE with p-annealing (dictionary_learning's GatedAnnealTrainer, Karvonen et al.
 * 2024): the gated SAE whose penalty on the gate's ReLU (times decoder norms) is annealed in
 * p (p-annealing.ts) instead of held at L1. Inference is a gated SAE (SAELens "gated").
 */
export interface GatedAnnealConfig extends BaseSaeConfig, PAnnealSettings {
  architecture: "gated_anneal";
}

/** AuxK (OpenAI, dictionary_learning): dead latents reconstruct the residual. */
export interface AuxKOptions {
  /** Latents used for the auxiliary reconstruction; 0 disables AuxK. */
  aux_k: number;
  /** Weight of the normalised auxiliary loss. */
  aux_alpha: number;
}

/** f = TopK(ReLU(pre)) (topk) or H_k(pre): k largest |pre|, sign kept, no ReLU (abstopk). */
export interface TopKConfig extends BaseSaeConfig, AuxKOptions {
  architecture: "topk" | "abstopk";
  k: number;
  /**
   * Multi-TopK (Gao et al. 2024, sparsify's multi_topk): the top 4k latents must also
   * reconstruct, loss += ||x - x_hat_4k||^2 / 8, so the SAE still works when run with a
   * larger k than it was trained at.
   */
  multi_topk: boolean;
  /**
   * "topk", or (topk only) sparsify's "groupmax": the d_sae latents in k runs of d_sae / k,
   * each token keeping the largest (ReLU'd) of every run, so every run takes part in every
   * token; d_sae must be divisible by k.
   */
  activation: "topk" | "groupmax";
}

/** Top k*batch over the whole batch; inference uses a learned threshold (a JumpReLU). */
export interface BatchTopKConfig extends BaseSaeConfig, AuxKOptions {
  architecture: "batchtopk";
  k: number;
  /** EMA rate of the inference threshold toward the smallest selected activation. */
  threshold_momentum: number;
}

/**
 * Matryoshka BatchTopK (Bussmann et al. 2025, "Learning Multi-Level Features with Matryoshka
 * SAEs"; SAELens "matryoshka_batchtopk", dictionary_learning MatryoshkaBatchTopKSAE): a
 * BatchTopK SAE whose first matryoshka_widths[i] latents must also reconstruct on their own.
 */
export interface MatryoshkaConfig extends BaseSaeConfig, AuxKOptions {
  architecture: "matryoshka";
  k: number;
  threshold_momentum: number;
  /** Nested dictionary sizes, strictly increasing, the last = d_sae (SAELens' matryoshka_widths). */
  matryoshka_widths: number[];
  /** Weight of each level's reconstruction loss, one per width (default 1 each: the paper's sum). */
  level_weights: number[];
}

/**
 * f = pre * H(pre - theta), theta = exp(log_threshold); loss += l0 * sparsity, where the
 * sparsity is sum_j H(pre_j - theta_j) ("step", GDM's L0) or sum_j tanh(tanh_scale f_j
 * ||W_dec_j||) ("tanh", Anthropic's); optionally Anthropic's pre-activation loss on dead latents.
 */
export interface JumpReluConfig extends BaseSaeConfig {
  architecture: "jumprelu";
  l0_coefficient: number;
  /** SAELens' jumprelu_sparsity_loss_mode. */
  sparsity_loss_mode: "step" | "tanh";
  /** SAELens' jumprelu_tanh_scale (tanh mode). */
  tanh_scale: number;
  /** Weight of sum_j relu(theta_j - pre_j) ||W_dec_j|| over dead latents (0: off; SAELens suggests 3e-6). */
  pre_act_loss_coefficient: number;
  /**
   * Step mode only: aim at this mean L0 with dictionary_learning's penalty
   * l0_coefficient * (L0 / target_l0 - 1)^2 instead of l0_coefficient * L0 (0: off).
   */
  target_l0: number;
  /** Width of the rectangle kernel of the straight-through estimator. */
  bandwidth: number;
  init_threshold: number;
  /** L0 coefficient ramps linearly from 0 over this many steps. */
  l0_warmup_steps: number;
}

/** The variational TopK SAE of "Analysis of Variational Sparse Autoencoders". */
export interface VsaeConfig extends BaseSaeConfig, AuxKOptions {
  architecture: "vsae";
  k: number;
  /** KL weight (the paper's beta; kl_coeff in the published code). */
  beta: number;
  /** KL weight ramps as min(1, step / kl_warmup_steps). */
  kl_warmup_steps: number;
  /** KL over all d_sae latents (the paper) or only the k selected per token. */
  kl_scope: "all" | "active";
  /** sigma = 1 (the paper) or a learned log-variance head (clamped to [-6, 2]). */
  variance: "fixed" | "learned";
  /** TopK on z after ReLU, or by |z| keeping the sign (the published code). */
  topk_mode: "relu" | "abs";
  /** mu = ReLU(pre) (the published code) or mu = pre (the paper). */
  relu_mu: boolean;
}

/** VAEase ("Sparse Autoencoders, Again?"): the decoder sees (1 - sigma) * z. */
export interface VaeaseConfig extends BaseSaeConfig {
  architecture: "vaease";
  /** Widths of the encoder's Swish hidden layers ([] = linear heads on x). */
  hidden: number[];
  /** Initial log of the shared decoder variance gamma. */
  init_log_gamma: number;
  /**
   * true: the decoder sees (1 - sigma) * z (VAEase); false: z itself, a plain VAE (the
   * paper's VAE baseline, whose active dimensions are the same for every input).
   */
  gate: boolean;
}

/**
 * Matching pursuit SAE (Costa et al. 2025; SAELens "matching_pursuit"): no encoder; each
 * token's code is found greedily against the decoder's rows (matching-pursuit.ts). Its
 * pursuit stops when the support stops growing, the residual is small, or after
 * max_iterations steps, so L0 varies per token.
 */
export interface MatchingPursuitConfig extends BaseSaeConfig {
  architecture: "mp";
  /** A token's pursuit stops once ||residual|| falls below this (SAELens' residual_threshold). */
  residual_threshold: number;
  /** At most this many pursuit steps per token (SAELens' max_iterations; default d_in). */
  max_iterations: number;
}

export type SaeConfig = ReluConfig | PAnnealConfig | GatedConfig | GatedAnnealConfig | TopKConfig | BatchTopKConfig | MatryoshkaConfig | JumpReluConfig
  | VsaeConfig | VaeaseConfig | MatchingPursuitConfig;

/** Options a user may set when creating an SAE; the rest come from defaults. */
export type SaeConfigInput = { architecture: Architecture; d_in: number; d_sae: number } & Record<string, unknown>;

/**
 * The peers' defaults, per architecture (see ../shared/reference/sae-ecosystem.md), with
 * the settings `input` gives (undefined ones ignored). A setting the architecture does not
 * have is refused by name rather than stored and silently ignored.
 */
export function defaultConfig(input: SaeConfigInput): SaeConfig {
  const cfg = architectureDefaults(input);
  const stray = Object.keys(input).filter((key) => input[key] !== undefined && !(key in cfg));
  if (stray.length) {
    throw new RangeError(`${input.architecture} SAE config: ${stray.join(", ")} ${stray.length === 1 ? "is not a setting" : "are not settings"} of a ${input.architecture} SAE`);
  }
  const merged = withDefaults(cfg, input);
  if (merged.architecture === "matryoshka") completeMatryoshkaLevels(merged);
  validateConfig(merged);
  return merged;
}

/** The names of an architecture's settings (its config's fields). */
export function settingsOf(architecture: Architecture): string[] {
  return Object.keys(architectureDefaults({ architecture, d_in: 1, d_sae: 1 }));
}

function architectureDefaults(input: SaeConfigInput): SaeConfig {
  const { architecture, d_in, d_sae } = input;
  const base = { d_in, d_sae, apply_b_dec_to_input: true, skip_connection: false, input_normalization: "none" as InputNormalization };
  const aux = { aux_k: Math.max(1, Math.floor(d_in / 2)), aux_alpha: 1 / 32 };
  let cfg: SaeConfig;
  switch (architecture) {
    case "relu":
      cfg = { ...base, architecture, decoder_norm: "none", l1_coefficient: 5, l1_warmup_steps: 0 };
      break;
    case "panneal":
    case "gated_anneal":
      // dictionary_learning's unit-norm decoder (ConstrainedAdam) and initial coefficient; the
      // rest as SAEBench's Pythia-70M p-anneal sweep set them (GatedAnnealTrainer's own
      // defaults anneal to p = 0, which leaves the penalty no gradient; p_end must be > 0).
      cfg = {
        ...base, architecture, decoder_norm: "unit", l1_coefficient: 0.1, l1_warmup_steps: 0, sparsity_function: "Lp^p",
        p_start: 1, p_end: 0.2, anneal_start: 10000, anneal_end: 0, n_sparsity_updates: 10, sparsity_queue_length: 10,
      };
      break;
    case "gated":
      cfg = { ...base, architecture, decoder_norm: "none", l1_coefficient: 1, l1_warmup_steps: 0 };
      break;
    case "topk":
    case "abstopk":
      cfg = { ...base, ...aux, architecture, decoder_norm: "unit", k: 32, multi_topk: false, activation: "topk" };
      break;
    case "batchtopk":
      cfg = { ...base, ...aux, architecture, decoder_norm: "unit", k: 32, threshold_momentum: 0.01 };
      break;
    case "matryoshka":
      cfg = {
        ...base, ...aux, architecture, decoder_norm: "unit", k: 32, threshold_momentum: 0.01,
        matryoshka_widths: [], level_weights: [],
      };
      break;
    case "jumprelu":
      cfg = {
        ...base, architecture, decoder_norm: "none", l0_coefficient: 1, bandwidth: 0.05, init_threshold: 0.01, l0_warmup_steps: 0,
        sparsity_loss_mode: "step", tanh_scale: 4, pre_act_loss_coefficient: 0, target_l0: 0,
      };
      break;
    case "vsae":
      cfg = {
        ...base, ...aux, architecture, decoder_norm: "none", k: 32, beta: 1, kl_warmup_steps: 0,
        kl_scope: "all", variance: "fixed", topk_mode: "relu", relu_mu: false,
      };
      break;
    case "vaease":
      cfg = { ...base, architecture, decoder_norm: "none", hidden: [], init_log_gamma: 0, gate: true };
      break;
    case "mp":
      if (input.k !== undefined) {
        throw new RangeError("mp SAE config: a matching pursuit has no k; bound its latents per token with max_iterations");
      }
      // Unit-norm atoms: each pursuit step then removes the residual's whole component along
      // the chosen row, as matching pursuit assumes (SAELens leaves the norms free).
      cfg = { ...base, architecture, decoder_norm: "unit", residual_threshold: 1e-2, max_iterations: d_in };
      break;
    default:
      throw new Error(`unknown architecture "${architecture as string}" (known: ${ARCHITECTURES.join(", ")})`);
  }
  return cfg;
}

/** Throws an error naming the field for any value that cannot work. */
export function validateConfig(cfg: SaeConfig): void {
  const fail = (msg: string): never => { throw new RangeError(`${cfg.architecture} SAE config: ${msg}`); };
  const posInt = (name: string, v: unknown) => {
    if (!Number.isSafeInteger(v) || (v as number) < 1) fail(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  const nonNeg = (name: string, v: unknown) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  };
  if (!(ARCHITECTURES as readonly string[]).includes(cfg.architecture)) fail(`unknown architecture`);
  posInt("d_in", cfg.d_in);
  posInt("d_sae", cfg.d_sae);
  if (cfg.decoder_norm !== "unit" && cfg.decoder_norm !== "none") fail(`decoder_norm must be "unit" or "none"`);
  if (typeof cfg.skip_connection !== "boolean") fail(`skip_connection must be true or false, got ${JSON.stringify(cfg.skip_connection)}`);
  if (cfg.skip_connection && (cfg.architecture === "vaease" || cfg.architecture === "mp")) {
    fail(`skip connections are for the linear-encoder architectures; ${cfg.architecture} has none`);
  }
  if (!(INPUT_NORMALIZATIONS as readonly string[]).includes(cfg.input_normalization)) {
    fail(`input_normalization must be one of ${INPUT_NORMALIZATIONS.join(", ")}, got ${JSON.stringify(cfg.input_normalization)}`);
  }
  if (cfg.input_normalization !== "none") {
    if (cfg.architecture === "vaease" || cfg.architecture === "mp") fail(`input_normalization is for the linear-encoder architectures, not ${cfg.architecture}`);
    if (cfg.skip_connection) fail("input_normalization and a skip connection together are not supported");
  }
  if ("k" in cfg) {
    posInt("k", cfg.k);
    if (cfg.k > cfg.d_sae) fail(`k (${cfg.k}) must not exceed d_sae (${cfg.d_sae})`);
  }
  if ("aux_k" in cfg) {
    if (!Number.isSafeInteger(cfg.aux_k) || cfg.aux_k < 0) fail(`aux_k must be a non-negative integer`);
    nonNeg("aux_alpha", cfg.aux_alpha);
  }
  switch (cfg.architecture) {
    case "topk":
    case "abstopk":
      if (typeof cfg.multi_topk !== "boolean") fail(`multi_topk must be true or false, got ${JSON.stringify(cfg.multi_topk)}`);
      if (cfg.activation !== "topk" && cfg.activation !== "groupmax") fail(`activation must be "topk" or "groupmax", got ${JSON.stringify(cfg.activation)}`);
      if (cfg.activation === "groupmax") {
        if (cfg.architecture !== "topk") fail("groupmax is an activation of topk SAEs (ReLU'd runs), not of abstopk");
        if (cfg.d_sae % cfg.k !== 0) fail(`groupmax splits d_sae = ${cfg.d_sae} into k = ${cfg.k} equal runs; choose a k that divides it`);
      }
      break;
    case "relu":
    case "gated":
      nonNeg("l1_coefficient", cfg.l1_coefficient);
      nonNeg("l1_warmup_steps", cfg.l1_warmup_steps);
      break;
    case "panneal":
    case "gated_anneal":
      nonNeg("l1_coefficient", cfg.l1_coefficient);
      nonNeg("l1_warmup_steps", cfg.l1_warmup_steps);
      if (cfg.sparsity_function !== "Lp^p" && cfg.sparsity_function !== "Lp") fail(`sparsity_function must be "Lp^p" or "Lp", got ${JSON.stringify(cfg.sparsity_function)}`);
      // p = 0 would make the penalty a constant count (u^0 = 1) with no gradient.
      for (const name of ["p_start", "p_end"] as const) {
        if (!(typeof cfg[name] === "number" && cfg[name] > 0 && Number.isFinite(cfg[name]))) fail(`${name} must be a positive number, got ${JSON.stringify(cfg[name])}`);
      }
      nonNeg("anneal_start", cfg.anneal_start);
      nonNeg("anneal_end", cfg.anneal_end);
      if (!Number.isSafeInteger(cfg.anneal_start) || !Number.isSafeInteger(cfg.anneal_end)) fail("anneal_start and anneal_end must be whole steps");
      posInt("n_sparsity_updates", cfg.n_sparsity_updates);
      posInt("sparsity_queue_length", cfg.sparsity_queue_length);
      break;
    case "batchtopk":
      if (!(cfg.threshold_momentum > 0 && cfg.threshold_momentum <= 1)) fail("threshold_momentum must be in (0, 1]");
      break;
    case "matryoshka": {
      if (!(cfg.threshold_momentum > 0 && cfg.threshold_momentum <= 1)) fail("threshold_momentum must be in (0, 1]");
      const widths = cfg.matryoshka_widths;
      if (!Array.isArray(widths) || widths.length === 0) fail("matryoshka_widths must be a non-empty array");
      widths.forEach((w, i) => posInt(`matryoshka_widths[${i}]`, w));
      for (let i = 1; i < widths.length; i++) {
        if (widths[i]! <= widths[i - 1]!) fail(`matryoshka_widths must be strictly increasing, got ${JSON.stringify(widths)}`);
      }
      if (widths.at(-1) !== cfg.d_sae) fail(`the last matryoshka width must be d_sae (${cfg.d_sae}), got ${JSON.stringify(widths)}`);
      if (!Array.isArray(cfg.level_weights) || cfg.level_weights.length !== widths.length) {
        fail(`level_weights needs one weight per matryoshka width (${widths.length}), got ${JSON.stringify(cfg.level_weights)}`);
      }
      cfg.level_weights.forEach((w, i) => nonNeg(`level_weights[${i}]`, w));
      break;
    }
    case "jumprelu":
      nonNeg("l0_coefficient", cfg.l0_coefficient);
      if (!(cfg.bandwidth > 0)) fail("bandwidth must be > 0");
      if (!(cfg.init_threshold > 0)) fail("init_threshold must be > 0");
      nonNeg("l0_warmup_steps", cfg.l0_warmup_steps);
      if (cfg.sparsity_loss_mode !== "step" && cfg.sparsity_loss_mode !== "tanh") fail(`sparsity_loss_mode must be "step" or "tanh"`);
      if (!(cfg.tanh_scale > 0)) fail("tanh_scale must be > 0");
      nonNeg("pre_act_loss_coefficient", cfg.pre_act_loss_coefficient);
      nonNeg("target_l0", cfg.target_l0);
      if (cfg.target_l0 > 0 && cfg.sparsity_loss_mode !== "step") fail("target_l0 goes with sparsity_loss_mode \"step\"");
      break;
    case "vsae":
      nonNeg("beta", cfg.beta);
      nonNeg("kl_warmup_steps", cfg.kl_warmup_steps);
      if (cfg.kl_scope !== "all" && cfg.kl_scope !== "active") fail(`kl_scope must be "all" or "active"`);
      if (cfg.variance !== "fixed" && cfg.variance !== "learned") fail(`variance must be "fixed" or "learned"`);
      if (cfg.topk_mode !== "relu" && cfg.topk_mode !== "abs") fail(`topk_mode must be "relu" or "abs"`);
      break;
    case "mp":
      nonNeg("residual_threshold", cfg.residual_threshold);
      posInt("max_iterations", cfg.max_iterations);
      break;
    case "vaease":
      if (!Array.isArray(cfg.hidden)) fail("hidden must be an array of layer widths");
      cfg.hidden.forEach((h, i) => posInt(`hidden[${i}]`, h));
      if (!Number.isFinite(cfg.init_log_gamma)) fail("init_log_gamma must be a number");
      if (typeof cfg.gate !== "boolean") fail("gate must be true (VAEase) or false (a plain VAE)");
      break;
  }
}

/**
 * Fills in a Matryoshka config's levels: without widths, five nested dictionaries of
 * d_sae / 16, / 8, / 4, / 2 and d_sae (those narrower than k dropped); widths that stop
 * short of d_sae get d_sae appended, as SAELens does; without weights, 1 per level.
 */
function completeMatryoshkaLevels(cfg: MatryoshkaConfig): void {
  if (cfg.matryoshka_widths.length === 0) {
    const widths = [16, 8, 4, 2].map((f) => Math.floor(cfg.d_sae / f)).filter((w) => w >= Math.max(1, cfg.k));
    cfg.matryoshka_widths = [...new Set([...widths, cfg.d_sae])];
  } else if (cfg.matryoshka_widths.at(-1)! < cfg.d_sae) {
    cfg.matryoshka_widths = [...cfg.matryoshka_widths, cfg.d_sae];
  }
  if (cfg.level_weights.length === 0) cfg.level_weights = cfg.matryoshka_widths.map(() => 1);
}

/** Linear warm-up factor min(1, step / steps) (1 when steps is 0). */
export function warmup(step: number, steps: number): number {
  return steps <= 0 ? 1 : Math.min(1, step / steps);
}
