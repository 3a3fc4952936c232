/**
 * Goodfire's SAEs (Ember's: Llama-3.1-8B-Instruct at layer 19, Llama-3.3-70B-Instruct at
 * layer 50, on the hub as Goodfire/<model>-SAE-l<layer>): a torch.save'd state dict of two
 * nn.Linear layers,
 *
 *   encoder_linear.weight [n, d]  encoder_linear.bias [n]  decoder_linear.weight [d, n]  decoder_linear.bias [d]
 *
 * computing f = ReLU(encoder_linear(x)), x_hat = decoder_linear(f): saekit's relu SAE with
 * b_dec not subtracted from the input (SAELens reads them as "standard" with
 * apply_b_dec_to_input false). The model and hook follow from the file's name when it is
 * the release's own: Llama-3.1-8B-Instruct-SAE-l19.pth reads blocks.19.hook_resid_post of
 * meta-llama/Llama-3.1-8B-Instruct.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { TorchCheckpoint } from "../core/torch-checkpoint.js";
import { defaultConfig } from "./config.js";
import { createSae } from "./registry.js";
import type { ParamSet } from "./sae.js";
import type { LoadedSae, SaeMetadata } from "./saelens.js";

const TENSORS = ["encoder_linear.weight", "encoder_linear.bias", "decoder_linear.weight", "decoder_linear.bias"];

/** A release's file name: <model>-SAE-l<layer>.pth (or .pt). */
const RELEASE_FILE = /^(.+)-SAE-l(\d+)\.pth?$/;

/** In a folder (a release downloaded from the hub), its one file named as a release's; null otherwise. */
export function goodfireFile(dir: string): string | null {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return null;
  const files = readdirSync(dir).filter((f) => RELEASE_FILE.test(f));
  return files.length === 1 ? join(dir, files[0]!) : null;
}

/** Whether a checkpoint holds a Goodfire SAE's state dict (its four tensors and nothing else). */
export function isGoodfireStateDict(ck: TorchCheckpoint): boolean {
  return TENSORS.every((name) => ck.has(name)) && ck.names().length === TENSORS.length;
}

export function loadGoodfireSae(file: string, ck = TorchCheckpoint.open(file)): LoadedSae {
  const fail = (msg: string): never => { throw new Error(`${file}: ${msg}`); };
  if (!isGoodfireStateDict(ck)) fail(`not a Goodfire SAE state dict (${TENSORS.join(", ")})`);
  const W_enc = ck.read("encoder_linear.weight");
  if (W_enc.shape.length !== 2) fail(`encoder_linear.weight has shape [${W_enc.shape.join(", ")}], expected [n_latents, d]`);
  const [m, d] = W_enc.shape as [number, number];
  const params: ParamSet = new Map([
    ["W_enc", W_enc],
    ["b_enc", ck.read("encoder_linear.bias").expectShape([m], `${file}: encoder_linear.bias`)],
    ["W_dec", ck.read("decoder_linear.weight").expectShape([d, m], `${file}: decoder_linear.weight`).transpose()],
    ["b_dec", ck.read("decoder_linear.bias").expectShape([d], `${file}: decoder_linear.bias`)],
  ]);
  const cfg = defaultConfig({ architecture: "relu", d_in: d, d_sae: m, apply_b_dec_to_input: false });
  return { sae: createSae(cfg, params), metadata: goodfireMetadata(file), raw: { tensors: TENSORS } };
}

/** Model and hook from a Goodfire release's file name, <model>-SAE-l<layer>.pth (or .pt). */
export function goodfireMetadata(path: string): SaeMetadata {
  const at = RELEASE_FILE.exec(basename(path));
  return {
    // Meta's models under their hub organisation; any other as the file names it.
    model_name: at ? (at[1]!.startsWith("Llama-") ? `meta-llama/${at[1]}` : at[1]!) : null,
    hook_name: at ? `blocks.${at[2]}.hook_resid_post` : null,
    hook_head_index: null, context_size: null, prepend_bos: true, dataset_path: null,
  };
}
