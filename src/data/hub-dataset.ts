/**
 * Datasets on the Hugging Face hub, as SAELens names them (`roneneldan/TinyStories`, or a
 * pretokenized one such as `apollo-research/roneneldan-TinyStories-tokenizer-gpt2`):
 * `--dataset hf:ORG/NAME[/FOLDER][@revision]` reads the dataset repository's .parquet,
 * .jsonl and .txt files (under FOLDER), in name order. The file list is asked of the hub
 * once and kept in the cache; each file is downloaded when reading reaches it, so a harvest
 * of a million tokens from a dataset of hundreds of files fetches only the first few.
 * Without a network, files already in the cache are read, and the error for the first one
 * missing says which folder to fill.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { listFiles } from "@huggingface/hub";
import { writeJsonAtomic } from "../core/atomic.js";
import { type HubOptions, type HubSpec, fetchToFile, hubFailure, hubFolderDir, hubSpecName, hubToken, parseHubSpec } from "../lm/hub.js";
import { type DatasetItem, type TextDatasetOptions, readItems } from "./text.js";

const LISTING = ".saekit-files.json";
const TEXT_FILE = /\.(parquet|jsonl|txt)$/;

export function isHubDataset(spec: string): boolean {
  return spec.startsWith("hf:");
}

/** The items (documents, or token rows) of a hub dataset, downloading each file as reading reaches it. */
export async function* readHubItems(specText: string, opts: TextDatasetOptions = {}): AsyncGenerator<DatasetItem> {
  const spec = parseHubSpec(specText, "dataset");
  const hub = opts.hub ?? {};
  const dir = hubFolderDir(spec, hub.cacheDir);
  const where = hubSpecName(spec);
  for (const file of await hubDatasetFiles(spec, dir, where, hub, TEXT_FILE, ".parquet / .jsonl / .txt")) {
    const local = join(dir, file);
    try {
      await fetchToFile(spec, spec.path ? `${spec.path}/${file}` : file, local, true, hub);
    } catch (err) {
      throw hubFailure(err, `${where}: ${file}`, `put ${file} at ${local}, or pass a local copy of the dataset`);
    }
    yield* readItems(local, opts);
  }
}

/**
 * The dataset's files under its folder whose names match `pattern` (relative to the folder),
 * from the cached listing or the hub; `kinds` names them in messages.
 */
export async function hubDatasetFiles(spec: HubSpec, dir: string, where: string, hub: HubOptions, pattern: RegExp, kinds: string): Promise<string[]> {
  const listing = join(dir, LISTING);
  if (existsSync(listing)) return (JSON.parse(readFileSync(listing, "utf8")) as { files: string[] }).files;
  const files: string[] = [];
  try {
    for await (const entry of listFiles({
      repo: { type: "dataset", name: spec.repo }, revision: spec.revision, path: spec.path || undefined, recursive: true, fetch: hub.fetch, ...hubToken(),
    })) {
      if (entry.type !== "file" || !pattern.test(entry.path)) continue;
      files.push(spec.path ? entry.path.slice(spec.path.length + 1) : entry.path);
    }
  } catch (err) {
    throw hubFailure(err, where, `put its ${kinds} files in ${dir} and list them in ${listing} as {"files": [...]}, or pass a local folder`);
  }
  if (files.length === 0) throw new Error(`${where} has no ${kinds} files`);
  files.sort();
  writeJsonAtomic(listing, { repo: spec.repo, revision: spec.revision, path: spec.path, files });
  return files;
}
