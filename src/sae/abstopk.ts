/**
 * AbsTopK SAE (Zhu, Khalili, Zhu 2025): the proximal operator of an l0 constraint,
 *   f = H_k(pre): keep the k entries of largest |pre| with their sign, no ReLU,
 * so one latent can encode both directions of a concept. Everything else is the TopK SAE;
 * metrics must count L0 and liveness as f != 0 (saekit always does).
 */
import { SelectMode } from "../core/kernels.js";
import { TopKSae } from "./topk.js";

export class AbsTopKSae extends TopKSae {
  protected override get mode(): SelectMode {
    return SelectMode.Abs;
  }
}
