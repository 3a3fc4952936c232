/**
 * SAEs trained by EleutherAI's sparsify: one folder per hook point (`layers.6`,
 * `layers.6.mlp`, `embed_tokens`) holding `cfg.json` (SparseCoderConfig + d_in) and
 * `sae.safetensors` with encoder.weight [F, d_in], encoder.bias [F], W_dec [F, d_in] and
 * b_dec [d_in]. sparsify encodes TopK(ReLU(encoder(x - b_dec))) and decodes
 * f W_dec + b_dec, which is saekit's topk SAE with the same tensors (saekit's W_enc is
 * [d_sae, d_in] like encoder.weight).
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { SafetensorsFile } from "../core/safetensors.js";
import { defaultConfig } from "./config.js";
import { createSae } from "./registry.js";
import type { ParamSet } from "./sae.js";
import type { LoadedSae } from "./saelens.js";

export const SPARSIFY_WEIGHTS = "sae.safetensors";

export function isSparsifyFolder(dir: string): boolean {
  return existsSync(join(dir, "cfg.json")) && existsSync(join(dir, SPARSIFY_WEIGHTS));
}

export function loadSparsifySae(dir: string): LoadedSae {
  const cfgPath = join(dir, "cfg.json");
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(cfgPath, "utf8"));
  } catch (err) {
    throw new Error(`${cfgPath}: not valid JSON (${(err as Error).message})`);
  }
  const fail = (msg: string): never => { throw new Error(`${cfgPath}: ${msg}`); };
  if (raw.transcode === true) fail("a transcoder (transcode: true) predicts another hook's output; saekit splices SAEs that reconstruct their own input");
  if (raw.skip_connection === true) fail("skip connections (W_skip) are not supported");
  if ((raw.activation ?? "topk") !== "topk") fail(`activation "${String(raw.activation)}" is not supported (topk)`);
  const file = SafetensorsFile.open(join(dir, SPARSIFY_WEIGHTS));
  const shape = (name: string) => (file.has(name) ? file.shape(name) : fail(`${SPARSIFY_WEIGHTS} has no tensor "${name}"`));
  const [m, d] = shape("encoder.weight") as [number, number];
  if (Number.isSafeInteger(raw.d_in) && raw.d_in !== d) fail(`d_in ${String(raw.d_in)} does not match encoder.weight [${m}, ${d}]`);
  if (!Number.isSafeInteger(raw.k)) fail(`"k" must be an integer, got ${JSON.stringify(raw.k)}`);
  const cfg = defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: raw.k as number, decoder_norm: "none" });
  const read = (name: string, dims: number[]) => file.read(name).expectShape(dims, `${file.path}: tensor "${name}"`);
  const params: ParamSet = new Map([
    ["W_enc", read("encoder.weight", [m, d])],
    ["b_enc", read("encoder.bias", [m])],
    ["W_dec", read("W_dec", [m, d])],
    ["b_dec", read("b_dec", [d])],
  ]);
  return { sae: createSae(cfg, params), metadata: { hook_name: hookOfModulePath(basename(dir)) }, raw };
}

/**
 * The TransformerLens hook a Hugging Face module path reads (`layers.6` is block 6's
 * output, the residual stream after it), or null when there is no such hook.
 */
export function hookOfModulePath(path: string): string | null {
  const m = /^(?:[\w]+\.)?layers\.(\d+)(?:\.(mlp|attention|self_attn))?$/.exec(path);
  if (!m) return path === "embed_tokens" || path === "embed_in" ? "hook_embed" : null;
  const kind = m[2] === undefined ? "hook_resid_post" : m[2] === "mlp" ? "hook_mlp_out" : "hook_attn_out";
  return `blocks.${m[1]}.${kind}`;
}
