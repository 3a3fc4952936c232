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
 *
 * Gemma Scope 2 (for Gemma 3, e.g. google/gemma-scope-2-1b-pt/resid_post/layer_7_width_16k_l0_small/)
 * holds the same tensors in lower case in params.safetensors; its sites resid_post, mlp_out,
 * attn_out and transcoder (ln2.hook_normalized -> hook_mlp_out, the "affine" ones with
 * affine_skip_connection, x @ A added to the output) name the hooks, the release the model.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { NpzFile } from "../core/npz.js";
import { SafetensorsFile } from "../core/safetensors.js";
import { Tensor } from "../core/tensor.js";
import { defaultConfig } from "./config.js";
import { createSae } from "./registry.js";
import type { ParamSet } from "./sae.js";
import type { LoadedSae, SaeMetadata } from "./saelens-format.js";

export const GEMMA_SCOPE_FILE = "params.npz";
/** Gemma Scope 2 (Gemma 3): the same tensors in lower case, in safetensors. */
export const GEMMA_SCOPE_2_FILE = "params.safetensors";

/** The params.npz or params.safetensors a path names (the file, or a folder holding it), or null. */
export function gemmaScopeFile(path: string): string | null {
  if ((path.endsWith(".npz") || path.endsWith(GEMMA_SCOPE_2_FILE)) && existsSync(path)) return path;
  if (!existsSync(path) || !statSync(path).isDirectory()) return null;
  for (const name of [GEMMA_SCOPE_FILE, GEMMA_SCOPE_2_FILE]) if (existsSync(join(path, name))) return join(path, name);
  return null;
}

/** Hook point and model name from a GemmaScope path (hub cache folders keep the repository name). */
export function gemmaScopeMetadata(path: string): SaeMetadata {
  const p = resolve(path).replace(/\\/g, "/");
  // Gemma Scope 2: gemma-scope-2-1b-pt/resid_post/layer_7_width_16k_l0_small/params.safetensors
  const v2 = /gemma-scope-2-(\d+[mb])-(pt|it)[^/]*\/(resid_post|mlp_out|attn_out|transcoder)(?:_all)?\/layer_(\d+)_/.exec(p);
  if (v2) {
    const [, size, kind, site, layer] = v2;
    const b = `blocks.${layer}`;
    const hooks = site === "resid_post" ? { hook_name: `${b}.hook_resid_post` } : site === "mlp_out" ? { hook_name: `${b}.hook_mlp_out` }
      : site === "attn_out" ? { hook_name: `${b}.hook_attn_out` } : { hook_name: `${b}.ln2.hook_normalized`, hook_name_out: `${b}.hook_mlp_out` };
    return {
      model_name: `gemma-3-${size}-${kind}`, ...hooks, hook_head_index: null, context_size: 1024, prepend_bos: true, dataset_path: null,
    };
  }
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
  if (!file) throw new Error(`${path}: no ${GEMMA_SCOPE_FILE} or ${GEMMA_SCOPE_2_FILE} (a GemmaScope SAE folder holds one)`);
  const v2 = file.endsWith(GEMMA_SCOPE_2_FILE);
  const arrays = v2 ? safetensorsArrays(file) : npzArrays(file);
  const name = (n: string) => (v2 ? n.toLowerCase() : n);
  const get = (n: string, rank: number) => {
    const key = name(n);
    if (!arrays.has(key)) throw new Error(`${file}: missing array "${key}" for a GemmaScope SAE (has ${arrays.names().join(", ")})`);
    const a = arrays.read(key);
    if (a.shape.length !== rank) throw new Error(`${file}: "${key}" has shape (${a.shape.join(", ")}), expected ${rank} dimensions`);
    return a;
  };
  const W_enc = get("W_enc", 2);
  const [d, m] = W_enc.shape as [number, number];
  const expect = (n: string, shape: number[]) => {
    const a = get(n, shape.length);
    if (a.shape.some((s, i) => s !== shape[i])) throw new Error(`${file}: "${name(n)}" has shape (${a.shape.join(", ")}), expected (${shape.join(", ")})`);
    return a.data;
  };
  const params: ParamSet = new Map([
    ["W_enc", new Tensor([d, m], W_enc.data).transpose()],
    ["b_enc", new Tensor([m], expect("b_enc", [m]))],
    ["W_dec", new Tensor([m, d], expect("W_dec", [m, d]))],
    ["b_dec", new Tensor([d], expect("b_dec", [d]))],
    ["log_threshold", new Tensor([m], Float32Array.from(expect("threshold", [m]), Math.log))],
  ]);
  // Gemma Scope 2's affine transcoders add x @ affine_skip_connection [d_in, d_out]: saekit's
  // W_skip [d_out, d_in] is its transpose.
  const skip = v2 && arrays.has("affine_skip_connection");
  if (skip) params.set("W_skip", new Tensor([d, d], expect("affine_skip_connection", [d, d])).transpose());
  const cfg = defaultConfig({ architecture: "jumprelu", d_in: d, d_sae: m, apply_b_dec_to_input: false, decoder_norm: "none", skip_connection: skip });
  const metadata = { ...gemmaScopeMetadata(file), ...modelNameOfConfig(file) };
  return { sae: createSae(cfg, params), metadata, raw: { architecture: "jumprelu", d_in: d, d_sae: m, apply_b_dec_to_input: false, metadata } };
}

/** Arrays by name from a file, read on demand. */
interface Arrays {
  has(name: string): boolean;
  names(): string[];
  read(name: string): { shape: number[]; data: Float32Array };
}

function npzArrays(file: string): Arrays {
  const npz = NpzFile.open(file);
  return { has: (n) => npz.has(n), names: () => npz.names(), read: (n) => npz.read(n) };
}

function safetensorsArrays(file: string): Arrays {
  const st = SafetensorsFile.open(file);
  return { has: (n) => st.has(n), names: () => st.names(), read: (n) => { const t = st.read(n); return { shape: [...t.shape], data: t.data }; } };
}

/** The model name a config.json beside the weights gives, if there is one. */
function modelNameOfConfig(file: string): { model_name?: string } {
  const cfgPath = join(dirname(file), "config.json");
  if (!existsSync(cfgPath)) return {};
  try {
    const raw = JSON.parse(readFileSync(cfgPath, "utf8")) as { model_name?: unknown };
    return typeof raw.model_name === "string" ? { model_name: raw.model_name.replace(/^google\//, "") } : {};
  } catch (err) {
    throw new Error(`${cfgPath}: not valid JSON (${(err as Error).message})`);
  }
}
