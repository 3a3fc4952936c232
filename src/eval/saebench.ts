/**
 * A splice evaluation as SAEBench's core eval writes it (sae_bench/evals/core/
 * eval_output.py: CoreEvalOutput), so saekit results load into SAEBench's graphing code
 * and anything else that reads its JSON. Metric names map one to one:
 *
 *   model_behavior_preservation     kl_div_score, kl_div_with_ablation, kl_div_with_sae
 *   model_performance_preservation  ce_loss_score, ce_loss_with_ablation, ce_loss_with_sae, ce_loss_without_sae
 *   reconstruction_quality          explained_variance, mse, cossim
 *   shrinkage                       l2_norm_in, l2_norm_out, l2_ratio, relative_reconstruction_bias
 *   sparsity                        l0, l1
 *   token_stats                     total_tokens_eval_reconstruction, total_tokens_eval_sparsity_variance
 *
 * and eval_result_details holds one entry per latent (density, consistent activation
 * heuristic, encoder bias and norm, encoder/decoder cosine). saekit's own result, with
 * the quantities SAEBench has no field for, goes in eval_result_unstructured.
 *
 * A sparse probing run is written as SAEBench's sparse_probing eval (evals/sparse_probing/
 * eval_output.py): llm_test_accuracy, llm_top_{k}_test_accuracy, sae_test_accuracy,
 * sae_top_{k}_test_accuracy, one detail entry per dataset, per-class accuracies in
 * eval_result_unstructured under "{dataset}_results".
 *
 * An absorption run is written as SAEBench's absorption_first_letter eval (evals/absorption/
 * eval_output.py): the six mean / std-dev scores, one detail entry per letter. A TPP run is
 * written as SAEBench's tpp eval (evals/scr_and_tpp/eval_output.py):
 * tpp_threshold_{N}_total_metric / _intended_diff_only / _unintended_diff_only; an SCR run as
 * its scr eval: scr_dir1_threshold_{N}, scr_dir2_threshold_{N}, scr_metric_threshold_{N}. An
 * autointerp run is written as its autointerp eval: autointerp_score and _std_dev, and per
 * latent the explanation, predictions, correct sequences, score and logs.
 */
import { randomUUID } from "node:crypto";
import type { Sae } from "../sae/sae.js";
import type { AbsorptionRunResult } from "./absorption-run.js";
import type { AutoInterpConfig } from "./autointerp.js";
import type { AutoInterpRunResult } from "./autointerp-run.js";
import type { ProbingResult } from "./sparse-probing.js";
import type { SparseProbingRunResult } from "./sparse-probing-run.js";
import type { SpliceEvalResult } from "./splice.js";
import type { ScrRunResult } from "./scr-run.js";
import type { TppRunResult } from "./tpp-run.js";

export interface SaeBenchRunInfo {
  modelName: string;
  dataset: string;
  contextSize: number;
  batchSizePrompts: number;
  excludeSpecialTokens: boolean;
  /** The SAE's cfg.json as read (SAEBench's sae_cfg_dict). */
  saeCfg: Record<string, unknown>;
  /** How the user named the SAE (SAEBench's sae_lens_id). */
  saeId: string;
}

/** Per latent j: b_enc[j], ||W_enc[j]|| and cos(W_enc[j], W_dec[j]) (null without a linear encoder). */
export function encoderStatistics(sae: Sae): Array<{ encoder_bias: number; encoder_norm: number; encoder_decoder_cosine_sim: number }> | null {
  const W_enc = sae.params.get("W_enc");
  const W_dec = sae.params.get("W_dec");
  const b_enc = sae.params.get("b_enc");
  if (!W_enc || !W_dec || !b_enc) return null;
  const { d_in: d, d_sae: m } = sae.cfg;
  return Array.from({ length: m }, (_, j) => {
    let ee = 0, dd = 0, ed = 0;
    for (let c = 0; c < d; c++) {
      const e = W_enc.data[j * d + c]!;
      const w = W_dec.data[j * d + c]!;
      ee += e * e;
      dd += w * w;
      ed += e * w;
    }
    return { encoder_bias: b_enc.data[j]!, encoder_norm: Math.sqrt(ee), encoder_decoder_cosine_sim: ee > 0 && dd > 0 ? ed / Math.sqrt(ee * dd) : 0 };
  });
}

export function saeBenchCoreOutput(r: SpliceEvalResult, sae: Sae, run: SaeBenchRunInfo): Record<string, unknown> {
  if (!r.features) throw new Error("SAEBench output needs the per-latent statistics: evaluate with featurewise: true");
  const rec = r.reconstruction;
  const weights = encoderStatistics(sae);
  const { features, ...rest } = r;
  return {
    eval_type_id: "core",
    eval_config: {
      model_name: run.modelName,
      llm_dtype: "float32",
      batch_size_prompts: run.batchSizePrompts,
      n_eval_reconstruction_batches: Math.ceil(r.contexts / run.batchSizePrompts),
      n_eval_sparsity_variance_batches: Math.ceil(r.contexts / run.batchSizePrompts),
      dataset: run.dataset,
      context_size: run.contextSize,
      compute_kl: true,
      compute_ce_loss: true,
      compute_l2_norms: true,
      compute_sparsity_metrics: true,
      compute_variance_metrics: true,
      compute_featurewise_density_statistics: true,
      compute_featurewise_weight_based_metrics: weights !== null,
      exclude_special_tokens_from_reconstruction: run.excludeSpecialTokens,
      verbose: false,
    },
    eval_id: randomUUID(),
    datetime_epoch_millis: Date.now(),
    eval_result_metrics: {
      model_behavior_preservation: {
        kl_div_score: r.kl_div_score, kl_div_with_ablation: r.kl_div_zero_ablated, kl_div_with_sae: r.kl_div_with_sae,
      },
      model_performance_preservation: {
        ce_loss_score: r.ce_loss_recovered, ce_loss_with_ablation: r.ce_loss_zero_ablated,
        ce_loss_with_sae: r.ce_loss_with_sae, ce_loss_without_sae: r.ce_loss_clean,
      },
      reconstruction_quality: { explained_variance: rec.explained_variance, mse: rec.mse, cossim: rec.cossim },
      shrinkage: {
        l2_norm_in: rec.l2_norm_in, l2_norm_out: rec.l2_norm_out, l2_ratio: rec.l2_ratio,
        relative_reconstruction_bias: rec.relative_reconstruction_bias,
      },
      sparsity: { l0: r.sparsity.l0, l1: r.sparsity.l1 },
      token_stats: {
        // The SAE sees every scored position; CE/KL are averaged over r.positions.
        total_tokens_eval_reconstruction: rec.tokens,
        total_tokens_eval_sparsity_variance: rec.tokens,
      },
      misc_metrics: {
        frac_alive: r.sparsity.frac_alive,
        freq_over_1_percent: r.sparsity.freq_over_1_percent,
        freq_over_10_percent: r.sparsity.freq_over_10_percent,
      },
    },
    eval_result_details: features.density.map((density, index) => ({
      index,
      feature_density: density,
      consistent_activation_heuristic: features.consistent_activation[index],
      ...(weights ? weights[index] : {}),
    })),
    sae_bench_commit_hash: null,
    sae_lens_id: run.saeId,
    sae_lens_release_id: null,
    sae_lens_version: null,
    sae_cfg_dict: run.saeCfg,
    eval_result_unstructured: { saekit: rest },
  };
}

export interface SaeBenchProbingInfo {
  modelName: string;
  /** How the dataset was named (SAEBench's dataset_names entry). */
  dataset: string;
  trainPerClass: number;
  testPerClass: number;
  contextSize: number;
  seed: number;
  saeCfg: Record<string, unknown>;
  saeId: string;
}

/** llm_* or sae_* accuracies of one probing result, as SAEBench names them. */
function probingMetrics(prefix: "llm" | "sae", r: ProbingResult): Record<string, number | null> {
  const out: Record<string, number | null> = { [`${prefix}_test_accuracy`]: r.test_accuracy ?? null };
  for (const [k, acc] of Object.entries(r.top_k_test_accuracy)) out[`${prefix}_top_${k}_test_accuracy`] = acc;
  return out;
}

/** The same, per class ({metric: {class: accuracy}}), for eval_result_unstructured. */
function perClassMetrics(prefix: "llm" | "sae", r: ProbingResult): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  if (r.test_accuracy !== undefined) out[`${prefix}_test_accuracy`] = Object.fromEntries(r.classes.map((c) => [c.class, c.test_accuracy!]));
  for (const k of Object.keys(r.top_k_test_accuracy)) {
    out[`${prefix}_top_${k}_test_accuracy`] = Object.fromEntries(r.classes.map((c) => [c.class, c.top_k_test_accuracy[k]!]));
  }
  return out;
}

/** The SAEBench eval_config fields every labelled-text eval shares. */
function labeledEvalConfig(info: SaeBenchProbingInfo, classes: number) {
  return {
    random_seed: info.seed,
    dataset_names: [info.dataset],
    context_length: info.contextSize,
    sae_batch_size: null,
    llm_batch_size: null,
    llm_dtype: "float32",
    model_name: info.modelName,
    lower_vram_usage: false,
    probe_train_set_size: info.trainPerClass * classes,
    probe_test_set_size: info.testPerClass * classes,
  };
}

/** A TPP run as SAEBench's tpp output. */
export function saeBenchTppOutput(r: TppRunResult, info: SaeBenchProbingInfo): Record<string, unknown> {
  const metrics = (part: Pick<TppRunResult, "total_metric" | "intended_diff_only" | "unintended_diff_only">) => {
    const out: Record<string, number> = {};
    for (const n of Object.keys(part.total_metric)) {
      out[`tpp_threshold_${n}_total_metric`] = part.total_metric[n]!;
      out[`tpp_threshold_${n}_intended_diff_only`] = part.intended_diff_only[n]!;
      out[`tpp_threshold_${n}_unintended_diff_only`] = part.unintended_diff_only[n]!;
    }
    return out;
  };
  const { probe_train_set_size, probe_test_set_size, ...shared } = labeledEvalConfig(info, r.classes.length);
  return {
    eval_type_id: "tpp",
    eval_config: {
      ...shared, perform_scr: false, train_set_size: probe_train_set_size, test_set_size: probe_test_set_size,
      n_values: Object.keys(r.total_metric).map(Number),
    },
    eval_id: randomUUID(),
    datetime_epoch_millis: Date.now(),
    eval_result_metrics: { tpp_metrics: metrics(r) },
    eval_result_details: [{ dataset_name: `${info.dataset}_tpp_results`, ...metrics(r) }],
    eval_result_unstructured: { [info.dataset]: Object.fromEntries(r.classes.map((c) => [c.class, metrics(c)])) },
    sae_bench_commit_hash: null,
    sae_lens_id: info.saeId,
    sae_lens_release_id: null,
    sae_lens_version: null,
    sae_cfg_dict: info.saeCfg,
  };
}

/** An SCR run as SAEBench's scr output (trainPerClass / testPerClass: texts per probe task). */
export function saeBenchScrOutput(r: ScrRunResult, info: SaeBenchProbingInfo): Record<string, unknown> {
  const metrics = (part: Pick<ScrRunResult, "scr_dir1" | "scr_dir2" | "scr_metric">) => {
    const out: Record<string, number | null> = {};
    for (const n of Object.keys(part.scr_dir1)) {
      out[`scr_dir1_threshold_${n}`] = part.scr_dir1[n] ?? null;
      out[`scr_metric_threshold_${n}`] = part.scr_metric[n] ?? null;
      out[`scr_dir2_threshold_${n}`] = part.scr_dir2[n] ?? null;
    }
    return out;
  };
  const { probe_train_set_size, probe_test_set_size, ...shared } = labeledEvalConfig(info, 1);
  return {
    eval_type_id: "scr",
    eval_config: {
      ...shared, perform_scr: true, train_set_size: probe_train_set_size, test_set_size: probe_test_set_size,
      n_values: Object.keys(r.scr_dir1).map(Number),
      column1_vals_lookup: { [info.dataset]: r.pairs.map((p) => p.target) },
    },
    eval_id: randomUUID(),
    datetime_epoch_millis: Date.now(),
    eval_result_metrics: { scr_metrics: metrics(r) },
    eval_result_details: r.pairs.map((p) => ({ dataset_name: `${info.dataset}_scr_${p.target[0]}_${p.target[1]}_results`, ...metrics(p) })),
    sae_bench_commit_hash: null,
    sae_lens_id: info.saeId,
    sae_lens_release_id: null,
    sae_lens_version: null,
    sae_cfg_dict: info.saeCfg,
  };
}

/** One SAE's part of a sparse probing run (index `sae` of run.saes) as SAEBench's output. */
export function saeBenchSparseProbingOutput(run: SparseProbingRunResult, sae: number, info: SaeBenchProbingInfo): Record<string, unknown> {
  const llm = probingMetrics("llm", run.model);
  const saeMetrics = probingMetrics("sae", run.saes[sae]!);
  const kValues = Object.keys(run.model.top_k_test_accuracy).map(Number);
  return {
    eval_type_id: "sparse_probing",
    eval_config: { ...labeledEvalConfig(info, run.classes.length), k_values: kValues },
    eval_id: randomUUID(),
    datetime_epoch_millis: Date.now(),
    eval_result_metrics: { llm, sae: saeMetrics },
    eval_result_details: [{ dataset_name: info.dataset, ...llm, ...saeMetrics }],
    eval_result_unstructured: {
      [`${info.dataset}_results`]: { ...perClassMetrics("sae", run.saes[sae]!), ...perClassMetrics("llm", run.model) },
    },
    sae_bench_commit_hash: null,
    sae_lens_id: info.saeId,
    sae_lens_release_id: null,
    sae_lens_version: null,
    sae_cfg_dict: info.saeCfg,
  };
}

export interface SaeBenchAbsorptionInfo {
  modelName: string;
  seed: number;
  maxK: number;
  f1JumpThreshold: number;
  template: string;
  batch: number;
  l1: number;
  minProbeF1: number;
  minLetters: number;
  saeCfg: Record<string, unknown>;
  saeId: string;
}

/** An absorption run as SAEBench's absorption_first_letter output. */
export function saeBenchAbsorptionOutput(r: AbsorptionRunResult, info: SaeBenchAbsorptionInfo): Record<string, unknown> {
  const { letters, ...summary } = r;
  return {
    eval_type_id: "absorption_first_letter",
    eval_config: {
      model_name: info.modelName,
      random_seed: info.seed,
      f1_jump_threshold: info.f1JumpThreshold,
      max_k_value: info.maxK,
      prompt_template: info.template,
      // saekit finds the word's token itself rather than at a fixed offset from the end.
      prompt_token_pos: null,
      llm_batch_size: info.batch,
      llm_dtype: "float32",
      k_sparse_probe_l1_decay: info.l1,
      k_sparse_probe_batch_size: null,
      k_sparse_probe_num_epochs: null,
      min_GT_probe_f1: info.minProbeF1,
      min_feats_for_eval: info.minLetters,
    },
    eval_id: randomUUID(),
    datetime_epoch_millis: Date.now(),
    eval_result_metrics: {
      mean: {
        mean_absorption_fraction_score: r.mean_absorption_fraction_score,
        mean_full_absorption_score: r.mean_full_absorption_score,
        mean_num_split_features: r.mean_num_split_features,
        std_dev_absorption_fraction_score: r.std_dev_absorption_fraction_score,
        std_dev_full_absorption_score: r.std_dev_full_absorption_score,
        std_dev_num_split_features: r.std_dev_num_split_features,
      },
    },
    eval_result_details: (r.mean_absorption_fraction_score === null ? [] : letters.filter((l) => l.included)).map((l) => ({
      first_letter: l.letter,
      mean_absorption_fraction: l.mean_absorption_fraction,
      full_absorption_rate: l.full_absorption_rate,
      num_full_absorption: l.num_full_absorption,
      num_probe_true_positives: l.num_probe_true_positives,
      num_split_features: l.main_latents.length,
    })),
    eval_result_unstructured: { saekit: { ...summary, letters: letters.map(({ words: _w, ...l }) => l) } },
    sae_bench_commit_hash: null,
    sae_lens_id: info.saeId,
    sae_lens_release_id: null,
    sae_lens_version: null,
    sae_cfg_dict: info.saeCfg,
  };
}

export interface SaeBenchAutoInterpInfo {
  modelName: string;
  dataset: string;
  contextSize: number;
  batch: number;
  totalTokens: number;
  /** The latents the user named, or null when they were sampled. */
  overrideLatents: number[] | null;
  llmModel: string;
  saeCfg: Record<string, unknown>;
  saeId: string;
}

/** An autointerp run as SAEBench's autointerp output (evals/autointerp/eval_output.py). */
export function saeBenchAutoInterpOutput(r: AutoInterpRunResult, cfg: AutoInterpConfig, info: SaeBenchAutoInterpInfo): Record<string, unknown> {
  return {
    eval_type_id: "autointerp",
    eval_config: {
      model_name: info.modelName,
      n_latents: info.overrideLatents ? null : cfg.nLatents,
      override_latents: info.overrideLatents,
      dead_latent_threshold: cfg.deadLatentThreshold,
      random_seed: cfg.seed,
      dataset_name: info.dataset,
      llm_context_size: info.contextSize,
      llm_batch_size: info.batch,
      llm_dtype: "float32",
      buffer: cfg.buffer,
      no_overlap: cfg.noOverlap,
      act_threshold_frac: cfg.actThresholdFrac,
      total_tokens: info.totalTokens,
      scoring: cfg.scoring,
      max_tokens_in_explanation: cfg.maxTokensInExplanation,
      use_demos_in_explanation: cfg.useDemosInExplanation,
      n_top_ex_for_generation: cfg.nTopExForGeneration,
      n_iw_sampled_ex_for_generation: cfg.nIwSampledExForGeneration,
      n_top_ex_for_scoring: cfg.nTopExForScoring,
      n_random_ex_for_scoring: cfg.nRandomExForScoring,
      n_iw_sampled_ex_for_scoring: cfg.nIwSampledExForScoring,
      // Not in SAEBench's config: the judge it hard-codes (gpt-4o-mini) is an option here.
      saekit_llm_model: info.llmModel,
    },
    eval_id: randomUUID(),
    datetime_epoch_millis: Date.now(),
    eval_result_metrics: { autointerp: { autointerp_score: r.autointerp_score, autointerp_std_dev: r.autointerp_std_dev } },
    eval_result_details: [],
    eval_result_unstructured: Object.fromEntries(r.latents.map((l) => [l.latent, {
      latent: l.latent, explanation: l.explanation, predictions: l.predictions ?? null, "correct seqs": l.correct ?? null,
      score: l.score ?? null, logs: l.logs,
    }])),
    sae_bench_commit_hash: null,
    sae_lens_id: info.saeId,
    sae_lens_release_id: null,
    sae_lens_version: null,
    sae_cfg_dict: info.saeCfg,
  };
}
