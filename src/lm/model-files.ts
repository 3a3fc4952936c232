/**
 * A language model from files already in memory — a folder dropped into a web page, files
 * fetch()ed from a repository: a Hugging Face model (config.json, model.safetensors or a
 * sharded model.safetensors.index.json with its shards, and tokenizer.json or GPT-2's
 * vocab.json + merges.txt) or a llama2.c checkpoint (.bin) with its tokenizer (.bin).
 * Needs no file system, so it runs in the browser; load.ts reads the same from disk.
 */
import { SafetensorsReader } from "../core/safetensors-format.js";
import { parseJson } from "../core/json.js";
import { checkTokenizerFits, hfLanguageModel } from "./hf-model.js";
import { llama2cFromBytes } from "./llama2c.js";
import { llama2cTokenizerFromBytes } from "./llama2c-tokenizer.js";
import type { LanguageModel } from "./model.js";
import { HfTokenizer, type TextTokenizer, gpt2TokenizerJson } from "./tokenizer.js";
import { CheckpointWeights, shardNamesOf } from "./weight-reader.js";

export interface LoadedModel {
  model: LanguageModel;
  /** null when the model has no tokenizer (pass one with `tokenizer`). */
  tokenizer: TextTokenizer | null;
  /** BOS token id to prepend to contexts (null: none). */
  bosId: number | null;
  /** Where it came from: a folder or file path. */
  source: string;
}

export interface ModelFilesOptions {
  /** Names the files in errors. Default "the model files". */
  source?: string;
  /** llama2.c: which .bin is the checkpoint and which the tokenizer (default: the larger is the checkpoint). */
  checkpoint?: string;
  tokenizer?: string;
  /**
   * Keep the weight matrices as float32 (default) or bfloat16, at half the memory, as
   * loadModel's `weights`: a Hugging Face checkpoint's matrices are read straight into it, a
   * llama2.c one is rounded once loaded.
   */
  weights?: "f32" | "bf16";
}

const text = new TextDecoder();

/** The model (and tokenizer) the files make up, keyed by file name (a path's last part counts). */
export function modelFromFiles(files: ReadonlyMap<string, Uint8Array>, o: ModelFilesOptions = {}): LoadedModel {
  const source = o.source ?? "the model files";
  const byName = new Map([...files].map(([path, bytes]) => [path.split(/[\\/]/).pop()!, bytes]));
  const at = (name: string) => `${source}/${name}`;
  const config = byName.get("config.json");
  if (!config) return llama2cFromFiles(byName, source, o);

  const json = parseJson(text.decode(config), at("config.json"));
  const model = hfLanguageModel(json, at("config.json"), hfCheckpoint(byName, at), source, { dtype: o.weights });
  const tokenizer = hfTokenizer(byName, at);
  if (tokenizer) checkTokenizerFits(tokenizer, model.cfg, source);
  return { model, tokenizer, bosId: model.cfg.bosTokenId, source };
}

/** model.safetensors, or the shards a model.safetensors.index.json lists, read from memory. */
function hfCheckpoint(files: Map<string, Uint8Array>, at: (name: string) => string): CheckpointWeights {
  const single = files.get("model.safetensors");
  if (single) return new CheckpointWeights(at("model.safetensors"), [{ path: at("model.safetensors"), file: SafetensorsReader.fromBytes(single, at("model.safetensors")) }]);
  const index = files.get("model.safetensors.index.json");
  if (index) {
    const shards = shardNamesOf(text.decode(index), at("model.safetensors.index.json")).map((name) => {
      const bytes = files.get(name);
      if (!bytes) throw new Error(`${at("model.safetensors.index.json")}: shard ${name} is not among the files given`);
      return { path: at(name), file: SafetensorsReader.fromBytes(bytes, at(name)) };
    });
    return new CheckpointWeights(at("model.safetensors.index.json"), shards);
  }
  const torch = files.has("pytorch_model.bin") ? " (pytorch_model.bin is read from a folder on disk only)" : "";
  throw new Error(`${at("")}: no model.safetensors or model.safetensors.index.json among the files${torch}`);
}

function hfTokenizer(files: Map<string, Uint8Array>, at: (name: string) => string): HfTokenizer | null {
  const json = (name: string) => parseJson(text.decode(files.get(name)!), at(name));
  if (files.has("tokenizer.json")) return new HfTokenizer(json("tokenizer.json"), at("tokenizer.json"));
  if (files.has("vocab.json") && files.has("merges.txt")) {
    return new HfTokenizer(gpt2TokenizerJson(json("vocab.json") as Record<string, number>, text.decode(files.get("merges.txt")!)), at("vocab.json"));
  }
  return null;
}

/** A llama2.c checkpoint and, when given, its tokenizer: the .bin files. */
function llama2cFromFiles(files: Map<string, Uint8Array>, source: string, o: ModelFilesOptions): LoadedModel {
  const bins = [...files.keys()].filter((n) => n.endsWith(".bin")).sort((a, b) => files.get(b)!.length - files.get(a)!.length);
  const checkpoint = o.checkpoint ?? bins[0];
  if (!checkpoint || !files.has(checkpoint)) {
    throw new Error(`${source}: neither a Hugging Face model (config.json) nor a llama2.c checkpoint (.bin) among ${[...files.keys()].join(", ") || "no files"}`);
  }
  const model = llama2cFromBytes(files.get(checkpoint)!, checkpoint);
  if (o.weights) model.storeWeightsAs(o.weights);
  const tokName = o.tokenizer ?? bins.find((n) => n !== checkpoint);
  const tokenizer = tokName && files.has(tokName) ? llama2cTokenizerFromBytes(files.get(tokName)!, tokName, model.cfg.vocabSize) : null;
  return { model, tokenizer, bosId: model.cfg.bosTokenId, source: checkpoint };
}
