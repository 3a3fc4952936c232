/**
 * GemmaScope SAEs (Google DeepMind's JumpReLU SAEs for Gemma 2): one folder per SAE, e.g.
 * google/gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71/, holding params.npz with
 *
 *   W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in], threshold [d_sae]
 *
 * and the encoder f = JumpReLU_threshold(x W_enc + b_enc): the input is not centred by
 * b_dec (SAELens loads them with apply_b_dec_to_input = false). The hook point and model
 * follow from the release's path: layer_L of a -res release reads blocks.L.hook_resid_post,
 * of an -mlp release blocks.L.hook_mlp_out, of an -att release blocks.L.attn.hook_z, of
 * gemma-scope-2b-* the model gemma-2-2b.
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { NpzFile } from "../core/npz.js";
import { Tensor } from "../core/tensor.js";
import { defaultConfig } from "./config.js";
import { createSae } from "./registry.js";
import type { ParamSet } from "./sae.js";
import type { LoadedSae, SaeMetadata } from "./saelens-format.js";

export const GEMMA_SCOPE_FILE = "params.npz";

/** The params.npz a path names (the file, or a folder holding it), or null. */
export function gemmaScopeFile(path: string): string | null {
  if (path.endsWith(".npz") && existsSync(path)) return path;
  const inside = join(path, GEMMA_SCOPE_FILE);
  return existsSync(path) && statSync(path).isDirectory() && existsSync(inside) ? inside : null;
}

/** Hook point and model name from a GemmaScope path (hub cache folders keep the repository name). */
export function gemmaScopeMetadata(path: string): SaeMetadata {
  const p = resolve(path).replace(/\\/g, "/");
  const layer = /\/layer_(\d+)\//.exec(p)?.[1];
  const release = /gemma-scope-(\d+b)-(pt|it)-(res|mlp|att|transcoders)(?:-canonical)?/.exec(p);
  // Attention SAEs read the heads' concatenated outputs before the projection (hook_z); for
  // transcoders the user names the input and output hooks (--hook, --hook-out).
  const site = release ? ({ res: "hook_resid_post", mlp: "hook_mlp_out", att: "attn.hook_z" } as Record<string, string>)[release[3]!] : undefined;
  const hook = layer === undefined || !site ? null : `blocks.${layer}.${site}`;
  return {
    model_name: release ? `gemma-2-${release[1]}${release[2] === "it" ? "-it" : ""}` : null,
    hook_name: hook, hook_head_index: null, context_size: 1024, prepend_bos: true, dataset_path: null,
  };
}

export function loadGemmaScopeSae(path: string): LoadedSae {
  const file = gemmaScopeFile(path);
  if (!file) throw new Error(`${path}: no ${GEMMA_SCOPE_FILE} (a GemmaScope SAE folder holds one)`);
  const npz = NpzFile.open(file);
  const get = (name: string, rank: number) => {
    if (!npz.has(name)) throw new Error(`${file}: missing array "${name}" for a GemmaScope SAE (has ${npz.names().join(", ")})`);
    const a = npz.read(name);
    if (a.shape.length !== rank) throw new Error(`${file}: "${name}" has shape (${a.shape.join(", ")}), expected ${rank} dimensions`);
    return a;
  };
  const W_enc = get("W_enc", 2);
  const [d, m] = W_enc.shape as [number, number];
  const expect = (name: string, shape: number[]) => {
    const a = get(name, shape.length);
    if (a.shape.some((s, i) => s !== shape[i])) throw new Error(`${file}: "${name}" has shape (${a.shape.join(", ")}), expected (${shape.join(", ")})`);
    return a.data;
  };
  const params: ParamSet = new Map([
    ["W_enc", new Tensor([d, m], W_enc.data).transpose()],
    ["b_enc", new Tensor([m], expect("b_enc", [m]))],
    ["W_dec", new Tensor([m, d], expect("W_dec", [m, d]))],
    ["b_dec", new Tensor([d], expect("b_dec", [d]))],
    ["log_threshold", new Tensor([m], Float32Array.from(expect("threshold", [m]), Math.log))],
  ]);
  const cfg = defaultConfig({ architecture: "jumprelu", d_in: d, d_sae: m, apply_b_dec_to_input: false, decoder_norm: "none" });
  const metadata = gemmaScopeMetadata(file);
  return { sae: createSae(cfg, params), metadata, raw: { architecture: "jumprelu", d_in: d, d_sae: m, apply_b_dec_to_input: false, metadata } };
}
