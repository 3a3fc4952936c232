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
 */
import { randomUUID } from "node:crypto";
import type { Sae } from "../sae/sae.js";
import type { SpliceEvalResult } from "./splice.js";

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
