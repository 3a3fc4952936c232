/**
 * `hf:ORG/NAME[@revision]` model specs: the files of a Hugging Face model repository,
 * downloaded once into a local cache with @huggingface/hub and read from there afterwards.
 * Without a network the error says exactly which folder to fill by hand.
 */
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { downloadFile } from "@huggingface/hub";
import { writeJsonAtomic } from "../core/atomic.js";
import { ProgressBar } from "../util/progress.js";
import { indexShardNames } from "./weights.js";

export interface HubSpec {
  repo: string;
  revision: string;
}

export function parseHubSpec(spec: string): HubSpec {
  const m = /^hf:([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/.exec(spec);
  if (!m) throw new Error(`"${spec}" is not a hub model spec; use hf:ORG/NAME or hf:ORG/NAME@revision`);
  return { repo: m[1]!, revision: m[2] ?? "main" };
}

export function defaultCacheDir(): string {
  return process.env.SAEKIT_CACHE ?? join(homedir(), ".cache", "saekit", "hub");
}

/** The local folder a hub model is cached in. */
export function hubModelDir(spec: HubSpec, cacheDir = defaultCacheDir()): string {
  return join(cacheDir, spec.repo.replace("/", "--"), spec.revision.replace(/\//g, "--"));
}

const COMPLETE = ".saekit-complete.json";

/**
 * The local folder holding a hub model, downloading config.json, the weights
 * (single file or index + shards) and the tokenizer files on first use.
 */
export async function resolveHubModel(specText: string, opts: { cacheDir?: string; progress?: boolean; fetch?: typeof fetch } = {}): Promise<string> {
  const spec = parseHubSpec(specText);
  const dir = hubModelDir(spec, opts.cacheDir);
  if (existsSync(join(dir, COMPLETE))) return dir;
  mkdirSync(dir, { recursive: true });
  const get = (path: string, required: boolean) => fetchToFile(spec, path, join(dir, path), required, opts);
  try {
    await get("config.json", true);
    if (!(await fetchWeights(dir, get))) {
      throw new Error(`${spec.repo} has no model.safetensors, pytorch_model.bin or their .index.json`);
    }
    for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) await get(f, false);
  } catch (err) {
    const e = err as Error;
    const offline = /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network/i.test(`${e.message} ${String((e as { cause?: unknown }).cause ?? "")}`);
    throw new Error(offline
      ? `cannot reach the Hugging Face hub to download ${spec.repo}@${spec.revision} (${e.message}). ` +
        `Without a network, put the model's config.json, model.safetensors (or the index and shards; or pytorch_model.bin) and tokenizer.json in ${dir} ` +
        `(then create ${join(dir, COMPLETE)} containing {}), or pass the folder itself as the model.`
      : `downloading ${spec.repo}@${spec.revision}: ${e.message}`, { cause: err });
  }
  writeJsonAtomic(join(dir, COMPLETE), { repo: spec.repo, revision: spec.revision, downloaded: new Date().toISOString() });
  return dir;
}

/** The weights, safetensors first: a single file, or an index and every shard it names. */
async function fetchWeights(dir: string, get: (path: string, required: boolean) => Promise<boolean>): Promise<boolean> {
  for (const base of ["model.safetensors", "pytorch_model.bin"]) {
    if (await get(base, false)) return true;
    if (await get(`${base}.index.json`, false)) {
      for (const shard of indexShardNames(join(dir, `${base}.index.json`))) await get(shard, true);
      return true;
    }
  }
  return false;
}

/** Downloads one file (atomically: temp then rename); false if the repo has no such file. */
async function fetchToFile(spec: HubSpec, path: string, dest: string, required: boolean,
  opts: { progress?: boolean; fetch?: typeof fetch }): Promise<boolean> {
  if (existsSync(dest)) return true;
  const blob = await downloadFile({ repo: spec.repo, path, revision: spec.revision, fetch: opts.fetch, xet: false });
  if (!blob) {
    if (required) throw new Error(`${spec.repo} has no file ${path}`);
    return false;
  }
  const tmp = `${dest}.part`;
  const bar = new ProgressBar(blob.size, `download ${path}`, opts.progress !== false && process.stderr.isTTY === true);
  let done = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      done += chunk.byteLength;
      bar.update(done);
      ctl.enqueue(chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(blob.stream().pipeThrough(counter) as import("node:stream/web").ReadableStream), createWriteStream(tmp));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  bar.finish();
  renameSync(tmp, dest);
  return true;
}
