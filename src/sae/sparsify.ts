/**
 * SAEs trained by EleutherAI's sparsify: one folder per hook point (`layers.6`,
 * `layers.6.mlp`, `embed_tokens`) holding `cfg.json` (SparseCoderConfig + d_in) and
 * `sae.safetensors` with encoder.weight [F, d_in], encoder.bias [F], W_dec [F, d_in] and
 * b_dec [d_in]. sparsify encodes TopK(ReLU(encoder(x - b_dec))) and decodes
 * f W_dec + b_dec, which is saekit's topk SAE with the same tensors (saekit's W_enc is
 * [d_sae, d_in] like encoder.weight). A transcoder (transcode: true) reads the module's
 * input without subtracting b_dec and predicts its output: for `layers.6.mlp`, from
 * blocks.6.ln2.hook_normalized to blocks.6.hook_mlp_out. A skip transcoder
 * (skip_connection: true) adds x W_skip^T, W_skip [d_in, d_in] (output by input), as saekit
 * holds it.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { writeJsonAtomic } from "../core/atomic.js";
import { parseJson } from "../core/json.js";
import { kernels } from "../core/kernels.js";
import { SafetensorsFile, writeSafetensors } from "../core/safetensors.js";
import { Tensor } from "../core/tensor.js";
import { defaultConfig, type SaeConfig } from "./config.js";
import { createSae } from "./registry.js";
import type { ParamSet, Sae } from "./sae.js";
import type { LoadedSae } from "./saelens.js";

export const SPARSIFY_WEIGHTS = "sae.safetensors";

export function isSparsifyFolder(dir: string): boolean {
  return existsSync(join(dir, "cfg.json")) && existsSync(join(dir, SPARSIFY_WEIGHTS));
}

export function loadSparsifySae(dir: string): LoadedSae {
  const cfgPath = join(dir, "cfg.json");
  const raw = parseJson(readFileSync(cfgPath, "utf8"), cfgPath);
  const fail = (msg: string): never => { throw new Error(`${cfgPath}: ${msg}`); };
  const transcode = raw.transcode === true;
  const hooks = transcode ? transcoderHooksOfModulePath(basename(dir)) : null;
  if (transcode && !hooks) fail(`a transcoder of module "${basename(dir)}", whose input and output hooks saekit does not know`);
  const activation = raw.activation ?? "topk";
  if (activation !== "topk" && activation !== "groupmax") fail(`activation "${String(raw.activation)}" is not supported (topk, groupmax)`);
  const file = SafetensorsFile.open(join(dir, SPARSIFY_WEIGHTS));
  const shape = (name: string) => (file.has(name) ? file.shape(name) : fail(`${SPARSIFY_WEIGHTS} has no tensor "${name}"`));
  const [m, d] = shape("encoder.weight") as [number, number];
  if (Number.isSafeInteger(raw.d_in) && raw.d_in !== d) fail(`d_in ${String(raw.d_in)} does not match encoder.weight [${m}, ${d}]`);
  if (!Number.isSafeInteger(raw.k)) fail(`"k" must be an integer, got ${JSON.stringify(raw.k)}`);
  const skip = raw.skip_connection === true;
  let cfg: SaeConfig;
  try {
    cfg = defaultConfig({
      architecture: "topk", d_in: d, d_sae: m, k: raw.k as number, decoder_norm: "none", apply_b_dec_to_input: !transcode,
      skip_connection: skip, multi_topk: raw.multi_topk === true, activation,
    });
  } catch (err) {
    return fail((err as Error).message);
  }
  const read = (name: string, dims: number[]) => file.read(name).expectShape(dims, `${file.path}: tensor "${name}"`);
  const params: ParamSet = new Map([
    ["W_enc", read("encoder.weight", [m, d])],
    ["b_enc", read("encoder.bias", [m])],
    ["W_dec", read("W_dec", [m, d])],
    ["b_dec", read("b_dec", [d])],
  ]);
  if (skip) params.set("W_skip", read("W_skip", [d, d]));
  const metadata = hooks ? { hook_name: hooks.in, hook_name_out: hooks.out } : { hook_name: hookOfModulePath(basename(dir)) };
  return { sae: createSae(cfg, params), metadata, raw };
}

/**
 * Writes a TopK SAE as sparsify saves one: `dir/cfg.json` and `dir/sae.safetensors`
 * (sparsify and the tools built on it, such as delphi, find the hook from the folder's
 * name: call it after the module, `layers.6` or `layers.6.mlp`). A transcoder (`transcoder`
 * true) is saved with transcode: true; an SAE that does not subtract b_dec from its input
 * has b_enc + W_enc b_dec folded into the bias, since sparsify always subtracts it.
 */
export function saveSparsifySae(dir: string, sae: Sae, o: { transcoder?: boolean } = {}): void {
  const cfg = sae.cfg;
  if (cfg.architecture !== "topk") throw new Error(`sparsify reads TopK SAEs (activation "topk" or "groupmax") only; this is a ${cfg.architecture} SAE`);
  const { d_in: d, d_sae: m } = cfg;
  const transcode = o.transcoder === true;
  if (transcode && cfg.apply_b_dec_to_input) throw new Error("a transcoder's input is not centred by b_dec; this SAE subtracts it");
  const get = (name: string) => sae.params.get(name)!;
  const bias = get("b_enc").data.slice();
  if (!transcode && !cfg.apply_b_dec_to_input) {
    // W (x - b_dec) + (b_enc + W b_dec) = W x + b_enc.
    kernels().sgemm(false, true, 1, m, d, 1, get("b_dec").data, d, get("W_enc").data, d, 1, bias, m);
  }
  const tensors: Record<string, Tensor> = {
    "encoder.weight": get("W_enc"), "encoder.bias": new Tensor([m], bias), W_dec: get("W_dec"), b_dec: get("b_dec"),
    ...(cfg.skip_connection ? { W_skip: get("W_skip") } : {}),
  };
  writeSafetensors(join(dir, SPARSIFY_WEIGHTS), tensors, { format: "pt" });
  writeJsonAtomic(join(dir, "cfg.json"), {
    activation: cfg.activation, expansion_factor: m / d, normalize_decoder: cfg.decoder_norm === "unit", num_latents: m, k: cfg.k,
    multi_topk: cfg.multi_topk, skip_connection: cfg.skip_connection, transcode, d_in: d,
  });
}

/**
 * The hooks a transcoder of a module reads and writes: a block (`layers.6`) from its input
 * to its output residual stream, an MLP or attention module from its normalized input to
 * its output. (Gemma 2's modules output before their post-norms, which saekit's hook_mlp_out
 * and hook_attn_out include.)
 */
export function transcoderHooksOfModulePath(path: string): { in: string; out: string } | null {
  const m = /^(?:[\w]+\.)?layers\.(\d+)(?:\.(mlp|attention|self_attn))?$/.exec(path);
  if (!m) return null;
  const b = `blocks.${m[1]}`;
  if (m[2] === undefined) return { in: `${b}.hook_resid_pre`, out: `${b}.hook_resid_post` };
  return m[2] === "mlp" ? { in: `${b}.ln2.hook_normalized`, out: `${b}.hook_mlp_out` } : { in: `${b}.ln1.hook_normalized`, out: `${b}.hook_attn_out` };
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
