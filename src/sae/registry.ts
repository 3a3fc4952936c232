/** Creates an SAE of any architecture from its config (and, when loading, its tensors). */
import { AbsTopKSae } from "./abstopk.js";
import { BatchTopKSae } from "./batchtopk.js";
import { type SaeConfig, type SaeConfigInput, defaultConfig, validateConfig } from "./config.js";
import { GatedSae } from "./gated.js";
import { GatedAnnealSae } from "./gated-anneal.js";
import { JumpReluSae } from "./jumprelu.js";
import { MatchingPursuitSae } from "./matching-pursuit.js";
import { MatryoshkaSae } from "./matryoshka.js";
import { PAnnealSae } from "./panneal.js";
import { ReluSae } from "./relu.js";
import type { ParamSet, Sae } from "./sae.js";
import { TopKSae } from "./topk.js";
import { VaeaseSae } from "./vaease.js";
import { VariationalSae } from "./vsae.js";

export function createSae(cfg: SaeConfig, params?: ParamSet, buffers?: ParamSet): Sae {
  validateConfig(cfg);
  switch (cfg.architecture) {
    case "relu": return new ReluSae(cfg, params);
    case "panneal": return new PAnnealSae(cfg, params, buffers);
    case "topk": return new TopKSae(cfg, params);
    case "abstopk": return new AbsTopKSae(cfg, params);
    case "batchtopk": return new BatchTopKSae(cfg, params, buffers);
    case "matryoshka": return new MatryoshkaSae(cfg, params, buffers);
    case "jumprelu": return new JumpReluSae(cfg, params);
    case "gated": return new GatedSae(cfg, params);
    case "gated_anneal": return new GatedAnnealSae(cfg, params, buffers);
    case "vsae": return new VariationalSae(cfg, params);
    case "vaease": return new VaeaseSae(cfg, params);
    case "mp": return new MatchingPursuitSae(cfg, params);
  }
}

/** createSae(defaultConfig(input)): an SAE with the peers' defaults for what is not given. */
export function newSae(input: SaeConfigInput): Sae {
  return createSae(defaultConfig(input));
}

/**
 * The same SAE selecting `k` latents per token instead of its trained k: what running a
 * TopK SAE (topk, abstopk, vsae) wider or narrower means, e.g. one trained with Multi-TopK;
 * for a matching pursuit SAE, at most k pursuit steps. Shares the parameters. BatchTopK
 * and Matryoshka SAEs run on a threshold, not a k.
 */
export function withInferenceK(sae: Sae, k: number): Sae {
  const cfg = sae.cfg;
  if (cfg.architecture === "mp") return createSae({ ...cfg, max_iterations: k }, sae.params, sae.buffers);
  if (cfg.architecture !== "topk" && cfg.architecture !== "abstopk" && cfg.architecture !== "vsae") {
    throw new Error(`a ${cfg.architecture} SAE does not select a fixed k per token at inference (topk, abstopk and vsae do; mp takes at most k pursuit steps)`);
  }
  if (cfg.architecture === "topk" && cfg.activation === "groupmax") {
    throw new Error(`a groupmax SAE's k is its number of latent runs (d_sae / k latents each); running it at another k would regroup its latents`);
  }
  return createSae({ ...cfg, k }, sae.params, sae.buffers);
}
