/**
 * SAEs trained by saprmarks/dictionary_learning (the Pythia-70M "10_32768" dictionaries and
 * the SAEBench sweeps): `trainer_i/ae.pt`, a torch.save'd state dict, beside `config.json`
 * ({trainer: {dict_class, k, layer, lm_name, submodule_name, ...}, buffer: {ctx_len, ...}}).
 * Each dictionary class maps onto a saekit architecture computing the same codes and
 * reconstructions (dictionary_learning/dictionary.py, trainers/top_k.py, batch_top_k.py):
 *
 *   AutoEncoder          relu(encoder(x - bias)); decoder(f) + bias              -> relu
 *   AutoEncoderTopK      TopK(relu(encoder(x - b_dec))); decoder(f) + b_dec      -> topk
 *   BatchTopKSAE         f = post * (post > threshold), post = relu(encoder(x - b_dec))
 *                        (its inference default)                                -> batchtopk
 *   MatryoshkaBatchTopKSAE the same with W_enc [d, F], W_dec [F, d] and group_sizes  -> matryoshka
 *   JumpReluAutoEncoder  f = relu(pre * (pre > threshold)) * |W_dec_j|, pre = x W_enc + b_enc;
 *                        decode (f / |W_dec_j|) W_dec + b_dec                   -> jumprelu
 *   GatedAutoEncoder     e = encoder(x - decoder_bias); f = (e + gate_bias > 0) *
 *                        relu(exp(r_mag) e + mag_bias) * |W_dec_j|; decode as JumpReLU -> gated
 *
 * For JumpReLU and gated the decoder norms are folded into the weights (encoder rows and
 * biases, and the threshold, scaled by |W_dec_j|; W_dec rows by 1 / |W_dec_j|), so
 * saekit's codes equal the ones dictionary_learning reports.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseJson } from "../core/json.js";
import { Tensor } from "../core/tensor.js";
import { TorchCheckpoint } from "../core/torch-checkpoint.js";
import { defaultConfig } from "./config.js";
import { foldDecoderNorms } from "./decoder-norms.js";
import { createSae } from "./registry.js";
import type { ParamSet } from "./sae.js";
import type { LoadedSae, SaeMetadata } from "./saelens.js";

export const DL_WEIGHTS = "ae.pt";

/** The ae.pt a path names: the file itself or a trainer folder holding it. */
export function dictionaryLearningFile(path: string): string | null {
  // (A .pth file too: torch.save's other usual name, which Goodfire's SAEs carry.)
  if (existsSync(path) && statSync(path).isFile()) return /\.pth?$/.test(path) ? path : null;
  return existsSync(join(path, DL_WEIGHTS)) ? join(path, DL_WEIGHTS) : null;
}

export function loadDictionaryLearningSae(path: string): LoadedSae {
  const file = dictionaryLearningFile(path) ?? (() => { throw new Error(`${path}: no ${DL_WEIGHTS} (a dictionary_learning SAE)`); })();
  const ck = TorchCheckpoint.open(file);
  const cfgPath = join(dirname(file), "config.json");
  const raw = existsSync(cfgPath) ? parseJson(readFileSync(cfgPath, "utf8"), cfgPath) : {};
  const trainer = (raw.trainer ?? {}) as Record<string, unknown>;
  const fail = (msg: string): never => { throw new Error(`${file}: ${msg}`); };
  const read = (name: string) => (ck.has(name) ? ck.read(name) : fail(`no tensor "${name}" for a ${dictClass} SAE`));
  // Without config.json the class shows in the state dict's keys.
  const dictClass = String(trainer.dict_class ?? (ck.has("group_sizes") ? "MatryoshkaBatchTopKSAE" : ck.has("W_enc") ? "JumpReluAutoEncoder" : ck.has("k") ? "AutoEncoderTopK" : ck.has("bias") ? "AutoEncoder" : "unknown"));
  const params: ParamSet = new Map();
  const buffers: ParamSet = new Map();
  let architecture: "relu" | "topk" | "batchtopk" | "matryoshka" | "jumprelu" | "gated";
  let extra: Record<string, unknown> = {};
  switch (dictClass) {
    case "AutoEncoder":
      architecture = "relu";
      params.set("W_enc", read("encoder.weight"));
      params.set("b_enc", read("encoder.bias"));
      params.set("W_dec", read("decoder.weight").transpose());
      params.set("b_dec", read("bias"));
      break;
    case "AutoEncoderTopK":
    case "BatchTopKSAE": {
      architecture = dictClass === "AutoEncoderTopK" ? "topk" : "batchtopk";
      params.set("W_enc", read("encoder.weight"));
      params.set("b_enc", read("encoder.bias"));
      params.set("W_dec", read("decoder.weight").transpose());
      params.set("b_dec", read("b_dec"));
      extra = { k: ck.has("k") ? ck.readInts("k")[0] : trainer.k };
      if (architecture === "batchtopk") buffers.set("threshold", batchThreshold(read("threshold"), params));
      break;
    }
    case "MatryoshkaBatchTopKSAE": {
      architecture = "matryoshka";
      params.set("W_enc", read("W_enc").transpose()).set("b_enc", read("b_enc")).set("W_dec", read("W_dec")).set("b_dec", read("b_dec"));
      buffers.set("threshold", batchThreshold(read("threshold"), params));
      if (!ck.has("group_sizes")) fail(`no tensor "group_sizes" for a ${dictClass} SAE`);
      let width = 0;
      const widths = Array.from(ck.readInts("group_sizes"), (size) => (width += Number(size)));
      extra = { k: ck.has("k") ? ck.readInts("k")[0] : trainer.k, matryoshka_widths: widths };
      break;
    }
    case "JumpReluAutoEncoder": {
      architecture = "jumprelu";
      extra = { apply_b_dec_to_input: false };
      params.set("W_enc", read("W_enc").transpose()).set("b_enc", read("b_enc")).set("W_dec", read("W_dec")).set("b_dec", read("b_dec"));
      const threshold = read("threshold").data;
      const norms = foldDecoderNorms(params, ["b_enc"]);
      // relu(pre * (pre > theta)) keeps only pre > max(theta, 0); saekit's threshold is exp(log).
      params.set("log_threshold", new Tensor([norms.length], Float32Array.from(norms, (n, j) => Math.log(Math.max(threshold[j]!, 1e-30) * n))));
      break;
    }
    case "GatedAutoEncoder": {
      architecture = "gated";
      params.set("W_enc", read("encoder.weight")).set("b_enc", read("gate_bias")).set("W_dec", read("decoder.weight").transpose());
      params.set("b_dec", read("decoder_bias")).set("r_mag", read("r_mag")).set("b_mag", read("mag_bias"));
      foldDecoderNorms(params, ["b_enc", "b_mag"]);
      break;
    }
    case "unknown": {
      // No config and no key of a known class: name what the file holds, for the user to tell what it is.
      const names = ck.names();
      const listed = names.slice(0, 8).join(", ") + (names.length > 8 ? `, ... (${names.length} in all)` : "");
      return fail(`not a state dict of an SAE saekit reads: it holds ${listed || "no tensors"}; expected a dictionary_learning SAE's (encoder.weight, decoder.weight, ...), an OpenAI sparse_autoencoder's or a Goodfire SAE's (encoder_linear.weight, ...)`);
    }
    default:
      return fail(`dictionary class "${dictClass}" is not supported (AutoEncoder, AutoEncoderTopK, BatchTopKSAE, MatryoshkaBatchTopKSAE, JumpReluAutoEncoder, GatedAutoEncoder)`);
  }
  const [m, d] = params.get("W_enc")!.shape as [number, number];
  const cfg = defaultConfig({ architecture, d_in: d, d_sae: m, decoder_norm: "none", ...extra });
  const sae = createSae(cfg, params, buffers);
  return { sae, metadata: dictionaryLearningMetadata(raw), raw };
}

/**
 * BatchTopK's scalar inference threshold as saekit's per-latent buffer. A threshold below
 * 0 (never trained) lets every ReLU-positive latent through.
 */
function batchThreshold(threshold: Tensor, params: ParamSet): Tensor {
  const m = params.get("W_enc")!.shape[0]!;
  return new Tensor([m], new Float32Array(m).fill(Math.max(0, threshold.data[0]!)));
}

function dictionaryLearningMetadata(raw: Record<string, unknown>): SaeMetadata {
  const trainer = (raw.trainer ?? {}) as Record<string, unknown>;
  const buffer = (raw.buffer ?? {}) as Record<string, unknown>;
  // dictionary_learning names submodules like "resid_post_layer_3"; others have no TransformerLens twin.
  const m = /^resid_post_layer_(\d+)$/.exec(String(trainer.submodule_name ?? ""));
  return {
    model_name: (trainer.lm_name as string) ?? null,
    hook_name: m ? `blocks.${m[1]}.hook_resid_post` : null,
    context_size: (buffer.ctx_len as number) ?? null,
  };
}
