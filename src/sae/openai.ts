/**
 * SAEs from OpenAI's sparse_autoencoder (Gao et al. 2024, the GPT-2 small SAEs): a
 * torch.save'd Autoencoder state dict, its tensors
 *
 *   pre_bias [d]  latent_bias [n]  encoder.weight [n, d]  decoder.weight [d, n]
 *
 * (plus training statistics saekit does not need) and, as plain values, the activation's
 * class name ("TopK" or "ReLU") and its settings ({k, postact_fn} for TopK). Its forward:
 *
 *   latents = activation(encoder(x - pre_bias) + latent_bias)
 *   recons  = decoder(latents) + pre_bias
 *
 * and a TopK SAE layer-norms each input first and restores the token's std and mean after
 * decoding (its model.py takes "TopK" to mean normalised) — saekit's topk with
 * input_normalization "layer_norm", which computes the same LN. A ReLU SAE is saekit's relu.
 * The hook follows from OpenAI's path layout when the file keeps it:
 * gpt2-small/resid_post_mlp_v5_32k/autoencoders/6.pt reads blocks.6.hook_resid_post of gpt2.
 */
import { TorchCheckpoint } from "../core/torch-checkpoint.js";
import { defaultConfig, type SaeConfig } from "./config.js";
import { createSae } from "./registry.js";
import type { ParamSet } from "./sae.js";
import type { LoadedSae, SaeMetadata } from "./saelens.js";

/** Whether a checkpoint holds an OpenAI Autoencoder's state dict. */
export function isOpenAiStateDict(ck: TorchCheckpoint): boolean {
  return ["pre_bias", "latent_bias", "encoder.weight", "decoder.weight"].every((name) => ck.has(name));
}

export function loadOpenAiSae(file: string, ck = TorchCheckpoint.open(file)): LoadedSae {
  const fail = (msg: string): never => { throw new Error(`${file}: ${msg}`); };
  if (!isOpenAiStateDict(ck)) fail("not an OpenAI sparse_autoencoder state dict (pre_bias, latent_bias, encoder.weight, decoder.weight)");
  const W_enc = ck.read("encoder.weight");
  if (W_enc.shape.length !== 2) fail(`encoder.weight has shape [${W_enc.shape.join(", ")}], expected [n_latents, d]`);
  const [m, d] = W_enc.shape as [number, number];
  const params: ParamSet = new Map([
    ["W_enc", W_enc],
    ["b_enc", ck.read("latent_bias").expectShape([m], `${file}: latent_bias`)],
    ["W_dec", ck.read("decoder.weight").expectShape([d, m], `${file}: decoder.weight`).transpose()],
    ["b_dec", ck.read("pre_bias").expectShape([d], `${file}: pre_bias`)],
  ]);
  const activation = ck.value("activation") ?? "ReLU";
  const settings = ck.value("activation_state_dict") ?? {};
  let cfg: SaeConfig;
  if (activation === "TopK") {
    const { k, postact_fn: post } = settings as { k?: unknown; postact_fn?: unknown };
    if (!Number.isSafeInteger(k) || (k as number) < 1) fail(`a TopK SAE needs an integer activation_state_dict.k, got ${JSON.stringify(k)}`);
    // TopK of the pre-activations, then ReLU on the kept ones: TopK(ReLU(pre)) as a code.
    if (post !== undefined && post !== "ReLU") fail(`a TopK SAE with postact_fn ${JSON.stringify(post)} is not supported (saekit reads ReLU)`);
    cfg = defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: k as number, decoder_norm: "none", input_normalization: "layer_norm" });
  } else if (activation === "ReLU") {
    cfg = defaultConfig({ architecture: "relu", d_in: d, d_sae: m });
  } else {
    return fail(`activation ${JSON.stringify(activation)} is not supported (saekit reads TopK and ReLU)`);
  }
  return { sae: createSae(cfg, params), metadata: openAiMetadata(file), raw: { activation, activation_state_dict: settings } };
}

/** TransformerLens hooks of OpenAI's activation locations (its README's table). */
const LOCATIONS: Record<string, string> = {
  resid_post_mlp: "hook_resid_post",
  resid_delta_mlp: "hook_mlp_out",
  resid_delta_attn: "hook_attn_out",
  resid_post_attn: "hook_resid_mid",
  mlp_post_act: "mlp.hook_post",
};

/** Model and hook from an OpenAI path such as gpt2-small/resid_post_mlp_v5_32k/autoencoders/6.pt. */
export function openAiMetadata(path: string): SaeMetadata {
  const at = /(?:^|\/)([a-z_]+?)(?:_v\d+_\w+)?\/autoencoders\/(\d+)\.pt$/.exec(path.replaceAll("\\", "/"));
  const site = at ? LOCATIONS[at[1]!] : undefined;
  return {
    model_name: /gpt2-small/.test(path) ? "gpt2" : null,
    hook_name: site ? `blocks.${at![2]}.${site}` : null,
    hook_head_index: null, context_size: null, prepend_bos: true, dataset_path: null,
  };
}
