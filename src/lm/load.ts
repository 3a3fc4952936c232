/**
 * Loading a language model: a Hugging Face model folder (config.json, model.safetensors
 * or a sharded index, tokenizer.json), a llama2.c checkpoint (.bin), or `hf:ORG/NAME[@rev]`
 * fetched into a local cache (hub.ts). The same files already in memory: model-files.ts.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ProgressBar } from "../util/progress.js";
import { parseJson } from "../core/json.js";
import { checkTokenizerFits, hfLanguageModel } from "./hf-model.js";
import { resolveHubModel } from "./hub.js";
import { llama2cFromBytes } from "./llama2c.js";
import { type Llama2cTokenizer, llama2cTokenizerFromBytes } from "./llama2c-tokenizer.js";
import type { LanguageModel } from "./model.js";
import type { LoadedModel } from "./model-files.js";
import { HfTokenizer, type TextTokenizer, gpt2TokenizerJson } from "./tokenizer.js";
import { openHfWeights } from "./weights.js";

export type { LoadedModel } from "./model-files.js";

export interface LoadModelOptions {
  /** A tokenizer file or folder overriding the model's own (required for llama2.c .bin files). */
  tokenizer?: string;
  /** Where hf: models are cached (default ~/.cache/saekit/hub or $SAEKIT_CACHE). */
  cacheDir?: string;
  /** Draw progress bars on a terminal: downloads, and reading a big checkpoint's weights (default true). */
  progress?: boolean;
  fetch?: typeof fetch;
  /**
   * Keep the weight matrices as float32 (default) or bfloat16, at half the memory
   * (LanguageModel.storeWeightsAs): a Hugging Face checkpoint's matrices are read into
   * bfloat16 as they are loaded; a llama2.c file, small by nature, is rounded once loaded.
   */
  weights?: "f32" | "bf16";
  /**
   * Load only what running to these hooks needs (names or patterns, as a harvest takes
   * them): the blocks up to the last one's, no unembedding. An early layer of a big model
   * then loads in a fraction of the time and memory; the model refuses passes beyond and
   * logits. A llama2.c file, small by nature, is read whole.
   */
  hooks?: readonly string[];
}

export async function loadModel(spec: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const path = spec.startsWith("hf:") ? await resolveHubModel(spec, opts) : spec;
  if (!existsSync(path)) throw new Error(`${path}: no such model folder or file`);
  if (statSync(path).isFile()) {
    if (!path.endsWith(".bin")) throw new Error(`${path}: a model is a Hugging Face folder or a llama2.c .bin file`);
    const model = loadLlama2c(path);
    if (opts.weights) model.storeWeightsAs(opts.weights);
    const tokenizer = opts.tokenizer ? openTokenizer(opts.tokenizer) : null;
    return { model, tokenizer, bosId: model.cfg.bosTokenId, source: path };
  }
  const cfgPath = join(path, "config.json");
  if (!existsSync(cfgPath)) throw new Error(`${path}: no config.json; expected a Hugging Face model folder`);
  const bar = weightsBar(path, opts.progress);
  // For hooks, the shards holding none of what they need may be absent (a partial download).
  const model = hfLanguageModel(parseJson(readFileSync(cfgPath, "utf8"), cfgPath), cfgPath, openHfWeights(path, opts.hooks !== undefined), path,
    { dtype: opts.weights, hooks: opts.hooks, progress: bar.update });
  bar.finish();
  const tokPath = opts.tokenizer ?? path;
  const tokenizer = opts.tokenizer || hasTokenizerFiles(path) ? openTokenizer(tokPath) : null;
  if (tokenizer) checkTokenizerFits(tokenizer, model.cfg, tokPath);
  return { model, tokenizer, bosId: model.cfg.bosTokenId, source: path };
}

/**
 * A progress bar (on a terminal) for reading a checkpoint's weights, drawn once there are
 * at least 256M values to read (1 GiB of float32: seconds of loading), in millions of values.
 */
function weightsBar(path: string, enabled = true): { update: (done: number, total: number) => void; finish: () => void } {
  let bar: ProgressBar | null = null;
  return {
    update: (done, total) => {
      if (!enabled || total < 2 ** 28) return;
      bar ??= new ProgressBar(Math.round(total / 1e6), `load ${path} (M values)`);
      bar.update(Math.round(done / 1e6));
    },
    finish: () => bar?.finish(),
  };
}

function hasTokenizerFiles(dir: string): boolean {
  return existsSync(join(dir, "tokenizer.json")) || (existsSync(join(dir, "vocab.json")) && existsSync(join(dir, "merges.txt")));
}

/** A tokenizer.json / folder (Hugging Face) or a llama2.c tokenizer .bin. */
export function openTokenizer(path: string): TextTokenizer {
  return path.endsWith(".bin") ? loadLlama2cTokenizer(path) : loadTokenizer(path);
}

/** A llama2.c checkpoint file. */
export function loadLlama2c(path: string): LanguageModel {
  return llama2cFromBytes(readBytes(path, "the checkpoint"), path);
}

/** A llama2.c tokenizer file (tok512.bin, tokenizer.bin). */
export function loadLlama2cTokenizer(path: string, vocabSize?: number): Llama2cTokenizer {
  return llama2cTokenizerFromBytes(readBytes(path, "the tokenizer"), path, vocabSize);
}

function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: cannot read ${what} (${(err as Error).message})`);
  }
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: cannot read JSON (${(err as Error).message})`);
  }
}

/**
 * Loads a tokenizer from a tokenizer.json file, or a folder holding tokenizer.json or
 * vocab.json + merges.txt.
 */
export function loadTokenizer(path: string): HfTokenizer {
  if (!existsSync(path)) throw new Error(`${path}: no such tokenizer file or folder`);
  if (statSync(path).isDirectory()) {
    const json = join(path, "tokenizer.json");
    if (existsSync(json)) return new HfTokenizer(readJson(json), json);
    const vocab = join(path, "vocab.json");
    const merges = join(path, "merges.txt");
    if (existsSync(vocab) && existsSync(merges)) {
      return new HfTokenizer(gpt2TokenizerJson(readJson(vocab) as Record<string, number>, readFileSync(merges, "utf8")), vocab);
    }
    throw new Error(`${path}: no tokenizer.json (or vocab.json + merges.txt)`);
  }
  return new HfTokenizer(readJson(path), path);
}
