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
 *   JumpReluAutoEncoder  f = relu(pre * (pre > threshold)) * |W_dec_j|, pre = x W_enc + b_enc;
 *                        decode (f / |W_dec_j|) W_dec + b_dec                   -> jumprelu
 *
 * For JumpReLU the decoder norms are folded into the weights (W_enc, b_enc and the
 * threshold scaled by |W_dec_j|, W_dec rows by 1 / |W_dec_j|), so saekit's codes equal the
 * ones dictionary_learning reports.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { Tensor } from "../core/tensor.js";
import { TorchCheckpoint } from "../core/torch-checkpoint.js";
import { defaultConfig } from "./config.js";
import { createSae } from "./registry.js";
import type { ParamSet } from "./sae.js";
import type { LoadedSae, SaeMetadata } from "./saelens.js";

export const DL_WEIGHTS = "ae.pt";

/** The ae.pt a path names: the file itself or a trainer folder holding it. */
export function dictionaryLearningFile(path: string): string | null {
  if (existsSync(path) && statSync(path).isFile()) return path.endsWith(".pt") ? path : null;
  return existsSync(join(path, DL_WEIGHTS)) ? join(path, DL_WEIGHTS) : null;
}

export function loadDictionaryLearningSae(path: string): LoadedSae {
  const file = dictionaryLearningFile(path) ?? (() => { throw new Error(`${path}: no ${DL_WEIGHTS} (a dictionary_learning SAE)`); })();
  const ck = TorchCheckpoint.open(file);
  const cfgPath = join(dirname(file), "config.json");
  const raw: Record<string, unknown> = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
  const trainer = (raw.trainer ?? {}) as Record<string, unknown>;
  const fail = (msg: string): never => { throw new Error(`${file}: ${msg}`); };
  const read = (name: string) => (ck.has(name) ? ck.read(name) : fail(`no tensor "${name}" for a ${dictClass} SAE`));
  // Without config.json the class shows in the state dict's keys.
  const dictClass = String(trainer.dict_class ?? (ck.has("W_enc") ? "JumpReluAutoEncoder" : ck.has("k") ? "AutoEncoderTopK" : ck.has("bias") ? "AutoEncoder" : "unknown"));
  const params: ParamSet = new Map();
  const buffers: ParamSet = new Map();
  let architecture: "relu" | "topk" | "batchtopk" | "jumprelu";
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
      if (architecture === "batchtopk") {
        // A threshold below 0 (never trained) lets every ReLU-positive latent through.
        const theta = Math.max(0, read("threshold").data[0]!);
        buffers.set("threshold", new Tensor([params.get("W_enc")!.shape[0]!], new Float32Array(params.get("W_enc")!.shape[0]!).fill(theta)));
      }
      break;
    }
    case "JumpReluAutoEncoder": {
      architecture = "jumprelu";
      extra = { apply_b_dec_to_input: false };
      const W_enc = read("W_enc").transpose();
      const W_dec = read("W_dec");
      const b_enc = read("b_enc");
      const threshold = read("threshold");
      const [m, d] = W_dec.shape as [number, number];
      const logThreshold = new Float32Array(m);
      for (let j = 0; j < m; j++) {
        let norm = 0;
        for (let i = 0; i < d; i++) norm += W_dec.data[j * d + i]! ** 2;
        norm = Math.sqrt(norm) || 1;
        for (let i = 0; i < d; i++) {
          W_enc.data[j * d + i]! *= norm;
          W_dec.data[j * d + i]! /= norm;
        }
        b_enc.data[j]! *= norm;
        // relu(pre * (pre > theta)) keeps only pre > max(theta, 0); saekit's threshold is exp(log).
        logThreshold[j] = Math.log(Math.max(threshold.data[j]!, 1e-30) * norm);
      }
      params.set("W_enc", W_enc).set("b_enc", b_enc).set("W_dec", W_dec).set("b_dec", read("b_dec"));
      params.set("log_threshold", new Tensor([m], logThreshold));
      break;
    }
    default:
      return fail(`dictionary class "${dictClass}" is not supported (AutoEncoder, AutoEncoderTopK, BatchTopKSAE, JumpReluAutoEncoder)`);
  }
  const [m, d] = params.get("W_enc")!.shape as [number, number];
  const cfg = defaultConfig({ architecture, d_in: d, d_sae: m, decoder_norm: "none", ...extra });
  const sae = createSae(cfg, params, buffers);
  return { sae, metadata: dictionaryLearningMetadata(raw), raw };
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
