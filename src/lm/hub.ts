/**
 * `hf:ORG/NAME[/FOLDER][@revision]` specs: the files of a Hugging Face repository (or a
 * folder of it, such as one SAE of a release), downloaded once into a local cache with
 * @huggingface/hub and read from there afterwards. Without a network the error says exactly
 * which folder to fill by hand.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { downloadFile, fileDownloadInfo } from "@huggingface/hub";
import { writeJsonAtomic } from "../core/atomic.js";
import { ProgressBar } from "../util/progress.js";
import { configFromHf } from "./config.js";
import { parseJson } from "../core/json.js";
import { readsTensor } from "./hf-model.js";
import { partsForHooks } from "./model.js";
import { indexWeightMap } from "./weights.js";

export interface HubSpec {
  /** A model repository (models, SAE releases) or a dataset repository. */
  type: "model" | "dataset";
  repo: string;
  revision: string;
  /** A folder inside the repository ("" for its root), e.g. one SAE of a release. */
  path: string;
}

/** hf:ORG/NAME[/FOLDER...][@revision], naming a repository of the given type. */
export function parseHubSpec(spec: string, type: HubSpec["type"] = "model"): HubSpec {
  const m = /^hf:([\w.-]+\/[\w.-]+)((?:\/[\w.-]+)*)(?:@([\w./-]+))?$/.exec(spec);
  if (!m || /(^|\/)\.\.?(\/|$)/.test(m[2]!)) throw new Error(`"${spec}" is not a hub spec; use hf:ORG/NAME, hf:ORG/NAME/FOLDER or either with @revision`);
  return { type, repo: m[1]!, path: m[2]!.slice(1), revision: m[3] ?? "main" };
}

/** A spec as messages name it: "ORG/NAME[/FOLDER]@revision", with "dataset " before a dataset's. */
export function hubSpecName(spec: HubSpec): string {
  return `${spec.type === "dataset" ? "dataset " : ""}${spec.repo}${spec.path ? `/${spec.path}` : ""}@${spec.revision}`;
}

export function defaultCacheDir(): string {
  return process.env.SAEKIT_CACHE ?? join(homedir(), ".cache", "saekit", "hub");
}

/** The local folder a hub folder is cached in (datasets under datasets/, as the hub names them). */
export function hubFolderDir(spec: HubSpec, cacheDir = defaultCacheDir()): string {
  return join(cacheDir, ...(spec.type === "dataset" ? ["datasets"] : []), spec.repo.replace("/", "--"),
    spec.revision.replace(/\//g, "--"), ...(spec.path ? spec.path.split("/") : []));
}

const COMPLETE = ".saekit-complete.json";

export interface HubOptions {
  cacheDir?: string;
  progress?: boolean;
  fetch?: typeof fetch;
}

/** Downloads one file of the folder into it; false when the repository has no such file. */
export type HubGet = (file: string, required: boolean) => Promise<boolean>;

/**
 * The local copy of a folder of a hub repository, made on first use by `fetchFiles`
 * (which downloads what it needs through `get`) and marked complete once it has all of it.
 * Without a network the error says which folder to fill by hand with `expected`.
 */
export async function resolveHubFolder(specText: string, expected: string, opts: HubOptions,
  fetchFiles: (get: HubGet, dir: string, spec: HubSpec) => Promise<void | "partial">, type: HubSpec["type"] = "model"): Promise<string> {
  const spec = parseHubSpec(specText, type);
  const dir = hubFolderDir(spec, opts.cacheDir);
  if (existsSync(join(dir, COMPLETE))) return dir;
  mkdirSync(dir, { recursive: true });
  const get: HubGet = (file, required) => fetchToFile(spec, spec.path ? `${spec.path}/${file}` : file, join(dir, file), required, opts);
  const where = hubSpecName(spec);
  let fetched: void | "partial";
  try {
    fetched = await fetchFiles(get, dir, spec);
  } catch (err) {
    throw hubFailure(err, where, `put ${expected} in ${dir} (then create ${join(dir, COMPLETE)} containing {}), or pass the folder itself`);
  }
  // Part of the files (fetchFiles knows what its caller needs): the next call fetches the rest.
  if (fetched === "partial") return dir;
  writeJsonAtomic(join(dir, COMPLETE), { repo: spec.repo, path: spec.path, revision: spec.revision, downloaded: new Date().toISOString() });
  return dir;
}

/**
 * The error for a failed download of `where`: without a network, it says what to do
 * instead (`offline`); otherwise it passes the hub's own message on.
 */
export function hubFailure(err: unknown, where: string, offline: string): Error {
  const e = err as Error;
  const isOffline = /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network/i.test(`${e.message} ${String((e as { cause?: unknown }).cause ?? "")}`);
  return new Error(isOffline
    ? `cannot reach the Hugging Face hub to download ${where} (${e.message}). Without a network, ${offline}.`
    : `downloading ${where}: ${e.message}`, { cause: err });
}

/**
 * The local folder holding a hub model, downloading config.json, the weights
 * (single file or index + shards) and the tokenizer files on first use. With `hooks`, a
 * sharded checkpoint's shards that hold nothing running to those hooks reads are left for
 * later (an early layer of an 8B model needs one of its four).
 */
export function resolveHubModel(specText: string, opts: HubOptions & { hooks?: readonly string[] } = {}): Promise<string> {
  return resolveHubFolder(specText,
    "the model's config.json, model.safetensors (or the index and shards; or pytorch_model.bin) and tokenizer.json", opts,
    async (get, dir) => {
      await get("config.json", true);
      const needed = opts.hooks ? shardFilter(dir, opts.hooks) : () => true;
      const weights = await fetchWeights(dir, get, needed);
      if (!weights) throw new Error("no model.safetensors, pytorch_model.bin or their .index.json");
      for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) await get(f, false);
      return weights === "partial" ? "partial" : undefined;
    });
}

/** Whether a tensor is one loading the model for `hooks` reads, from the downloaded config.json. */
function shardFilter(dir: string, hooks: readonly string[]): (tensor: string) => boolean {
  const cfgPath = join(dir, "config.json");
  return readsTensor(partsForHooks(configFromHf(parseJson(readFileSync(cfgPath, "utf8"), cfgPath), cfgPath), hooks));
}

/**
 * The weights, safetensors first: a single file, or an index and the shards it names that
 * hold a `needed` tensor ("partial" when it leaves some out); false when there are none.
 */
async function fetchWeights(dir: string, get: HubGet, needed: (tensor: string) => boolean): Promise<boolean | "partial"> {
  for (const base of ["model.safetensors", "pytorch_model.bin"]) {
    if (await get(base, false)) return true;
    const index = join(dir, `${base}.index.json`);
    if (await get(`${base}.index.json`, false)) {
      const map = indexWeightMap(index);
      const all = new Set(Object.values(map));
      const wanted = new Set(Object.entries(map).filter(([tensor]) => needed(tensor)).map(([, shard]) => shard));
      for (const shard of all) if (wanted.has(shard)) await get(shard, true);
      return wanted.size < all.size ? "partial" : true;
    }
  }
  return false;
}

/** The user's access token, as huggingface_hub reads it: gated repositories (Gemma, Llama) need it. */
export function hubToken(): { accessToken: `hf_${string}` } | Record<string, never> {
  const token = process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  return token ? { accessToken: token as `hf_${string}` } : {};
}

/**
 * Downloads one file of the repository; false if it has no such file. The bytes go to
 * `dest.part`, renamed to `dest` once complete. A download cut off (a dropped connection, a
 * kill) leaves its `.part` with `.part.json` naming the file's ETag and size, and the next
 * call asks only for the rest (an HTTP range request), unless the file has changed since.
 */
export async function fetchToFile(spec: HubSpec, path: string, dest: string, required: boolean, opts: HubOptions): Promise<boolean> {
  if (existsSync(dest)) return true;
  mkdirSync(dirname(dest), { recursive: true });
  const repo = { type: spec.type, name: spec.repo };
  const info = await fileDownloadInfo({ repo, path, revision: spec.revision, fetch: opts.fetch, ...hubToken() });
  if (!info) {
    if (required) throw new Error(`${spec.repo} has no file ${path}`);
    return false;
  }
  const blob = (await downloadFile({ repo, path, revision: spec.revision, fetch: opts.fetch, xet: false, downloadInfo: info, ...hubToken() }))!;
  const tmp = `${dest}.part`;
  const meta = `${tmp}.json`;
  const same = readJsonOr(meta) as { etag?: string; size?: number } | null;
  let start = existsSync(tmp) && same?.etag === info.etag && same.size === info.size ? statSync(tmp).size : 0;
  if (start > info.size) start = 0;
  if (start === 0) {
    rmSync(tmp, { force: true });
    writeJsonAtomic(meta, { etag: info.etag, size: info.size });
  }
  const bar = new ProgressBar(info.size, `download ${path}`, opts.progress !== false && process.stderr.isTTY === true);
  let done = start;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      done += chunk.byteLength;
      bar.update(done);
      ctl.enqueue(chunk);
    },
  });
  if (info.size === 0) {
    writeFileSync(tmp, new Uint8Array(0));
  } else if (start < info.size) {
    const rest = start > 0 ? blob.slice(start, info.size) : blob;
    await pipeline(Readable.fromWeb(rest.stream().pipeThrough(counter) as import("node:stream/web").ReadableStream),
      createWriteStream(tmp, { flags: start > 0 ? "a" : "w" }));
  }
  const got = statSync(tmp).size;
  if (got !== info.size) throw new Error(`${spec.repo}/${path}: got ${got} of ${info.size} bytes; run again to fetch the rest`);
  bar.finish();
  renameSync(tmp, dest);
  rmSync(meta, { force: true });
  return true;
}

function readJsonOr(path: string): unknown {
  try { return JSON.parse(readFileSync(path, "utf8")); } catch { return null; }
}
