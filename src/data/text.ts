/**
 * Text datasets, streamed one document at a time:
 *   .txt      documents separated by "<|endoftext|>" (TinyStories' own format) when the file
 *             contains it, else by blank lines; or one per line (split: "line")
 *   .jsonl    one JSON object per line, the document in a text field ("text" by default)
 *   .parquet  Hugging Face dataset files: a string column ("text" by default)
 *   .arrow    the same in Arrow IPC files, as a dataset saved with `save_to_disk` holds them
 * A folder means every such file in it, in name order (a dataset saved to disk: the files
 * its state.json lists); hf:ORG/NAME a dataset repository on the Hugging Face hub,
 * downloaded file by file as reading reaches it (hub-dataset.ts).
 */
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ArrowIpcFile } from "../core/arrow-ipc.js";
import { openFileSource } from "../core/file-range.js";
import type { HubOptions } from "../lm/hub.js";
import { isArrowDataset, savedDatasetFiles } from "./arrow-activations.js";
import { intListRows, isIntListColumn, requireColumn, stringRows } from "./arrow-rows.js";
import { type DocumentSplit, documentSeparator } from "./contexts.js";
import { isHubDataset, readHubItems } from "./hub-dataset.js";

export interface TextDatasetOptions {
  /** For hf: datasets: the cache folder and fetch function (hub-dataset.ts). */
  hub?: HubOptions;
  /** Field (jsonl) or column (parquet) holding the text. */
  textField?: string;
  /** .txt documents: "auto" (eot if present, else blank lines), "eot", "blank" or "line". */
  split?: DocumentSplit;
}

const CHUNK = 1 << 20;

/** The files a dataset path names. */
export function datasetFiles(path: string): string[] {
  if (!existsSync(path)) throw new Error(`${path}: no such dataset file or folder`);
  if (!statSync(path).isDirectory()) return [path];
  if (isArrowDataset(path)) return savedDatasetFiles(path);
  const files = readdirSync(path).filter((f) => /\.(txt|jsonl|parquet|arrow)$/.test(f)).sort().map((f) => join(path, f));
  if (files.length === 0) throw new Error(`${path}: no .txt, .jsonl, .parquet or .arrow files in this folder`);
  return files;
}

/**
 * One item of a dataset: a document's text, or — a pretokenized dataset, as SAELens reads
 * them — one row of token ids, a context already built (data/contexts.ts cuts it to size).
 */
export type DatasetItem = string | Int32Array;

/**
 * The fields (jsonl) or columns (parquet) SAELens takes as already tokenized, in its order
 * of preference, ahead of the text field.
 */
export const TOKEN_FIELDS = ["tokens", "input_ids"] as const;

/** The dataset's items, file by file: text documents, or token rows where a file has a token field. */
export async function* readItems(path: string, opts: TextDatasetOptions = {}): AsyncGenerator<DatasetItem> {
  if (isHubDataset(path)) {
    yield* readHubItems(path, opts);
    return;
  }
  for (const file of datasetFiles(path)) {
    if (file.endsWith(".parquet")) yield* parquetItems(file, opts.textField ?? "text");
    else if (file.endsWith(".arrow")) yield* arrowItems(file, opts.textField ?? "text");
    else if (file.endsWith(".jsonl")) yield* jsonlItems(file, opts.textField ?? "text");
    else if (file.endsWith(".txt")) yield* textDocuments(file, opts.split ?? "auto");
    else throw new Error(`${file}: unknown dataset file type (.txt, .jsonl, .parquet, .arrow)`);
  }
}

/** The dataset's documents; a pretokenized dataset has none to give. */
export async function* readDocuments(path: string, opts: TextDatasetOptions = {}): AsyncGenerator<string> {
  for await (const item of readItems(path, opts)) {
    if (typeof item !== "string") throw new Error(`${path}: a pretokenized dataset (a ${TOKEN_FIELDS.join(" / ")} field) has token ids, not the text this needs`);
    yield item;
  }
}

/**
 * A record's text, or null where it has none to give: an empty or whitespace-only text, or a
 * null (a missing value, as Hugging Face datasets store them) is skipped, as SAELens skips
 * empty documents; a field that is not text at all is an error naming `where` and the option.
 */
export function documentText(record: Record<string, unknown>, field: string, where: string, option = "--text-field"): string | null {
  const text = record[field];
  if (text === null) return null;
  if (typeof text !== "string") throw new Error(`${where}: no string field "${field}" (set ${option})`);
  return text.trim() ? text : null;
}

/** A token row as int32 ids, whatever the file stored (numbers, int64 as bigint); `where` names it in errors. */
export function tokenRow(value: unknown, where: string): Int32Array {
  if (!Array.isArray(value) && !ArrayBuffer.isView(value)) throw new Error(`${where}: the token field is not a list of token ids`);
  const ids = value as ArrayLike<number | bigint>;
  const row = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = Number(ids[i]);
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new Error(`${where}: token ${i} is ${String(ids[i])}, not a token id`);
    row[i] = id;
  }
  return row;
}

/** Streams a file as UTF-8 text in pieces, never splitting a multi-byte character. */
function* textPieces(path: string): Generator<string> {
  const fd = openSync(path, "r");
  const decoder = new TextDecoder("utf-8");
  const buf = Buffer.alloc(CHUNK);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      yield decoder.decode(buf.subarray(0, n), { stream: true });
    }
    const rest = decoder.decode();
    if (rest) yield rest;
  } finally {
    closeSync(fd);
  }
}

/** Splits a stream of text pieces on a separator (regex), yielding the pieces between. */
function* splitStream(pieces: Iterable<string>, separator: RegExp): Generator<string> {
  let carry = "";
  for (const piece of pieces) {
    carry += piece;
    const parts = carry.split(separator);
    carry = parts.pop()!;
    yield* parts;
  }
  yield carry;
}

function* textDocuments(path: string, split: DocumentSplit): Generator<string> {
  const first = split === "auto" ? textPieces(path).next() : null;
  const separator = documentSeparator(split, first && !first.done ? first.value : "");
  for (const doc of splitStream(textPieces(path), separator)) {
    const text = doc.trim();
    if (text) yield text;
  }
}

/** A .jsonl file's items: each record's token field when it has one, else its text field. */
function* jsonlItems(path: string, field: string): Generator<DatasetItem> {
  for (const { where, record } of jsonlRecords(path)) {
    const tokens = TOKEN_FIELDS.find((f) => f in record);
    if (tokens) {
      yield tokenRow(record[tokens], where);
      continue;
    }
    if (!(field in record)) throw new Error(`${where}: no field "${field}" (set --text-field), and no ${TOKEN_FIELDS.join(" / ")} field`);
    const text = documentText(record, field, where);
    if (text !== null) yield text;
  }
}

/** Each object of a .jsonl file, with "file:line" for error messages. */
export function* jsonlRecords(path: string): Generator<{ where: string; record: Record<string, unknown> }> {
  let line = 0;
  for (const raw of splitStream(textPieces(path), /\r?\n/)) {
    line++;
    if (!raw.trim()) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (err) {
      throw new Error(`${path}:${line}: not valid JSON (${(err as Error).message})`);
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new Error(`${path}:${line}: not a JSON object`);
    yield { where: `${path}:${line}`, record: obj as Record<string, unknown> };
  }
}

/** A .parquet file's items: its token column's rows when it has one, else its text column's. */
async function* parquetItems(path: string, column: string): AsyncGenerator<DatasetItem> {
  let tokens: string | undefined;
  const pick = (available: string[]) => {
    tokens = TOKEN_FIELDS.find((f) => available.includes(f));
    return [tokens ?? column];
  };
  let index = 0;
  for await (const row of parquetRows(path, pick, "--text-field")) {
    if (tokens) {
      yield tokenRow(row[tokens], `${path}: row ${index}`);
    } else {
      const text = documentText(row, column, `${path}: row ${index}`);
      if (text !== null) yield text;
    }
    index++;
  }
}

/**
 * An Arrow file's items (a dataset saved with save_to_disk): its token column's rows when it
 * has one, else its text column's, null and empty texts skipped.
 */
function* arrowItems(path: string, column: string): Generator<DatasetItem> {
  const file = ArrowIpcFile.open(openFileSource(path), path);
  const tokens = TOKEN_FIELDS.find((f) => isIntListColumn(file, f));
  let index = 0;
  if (tokens) {
    for (const row of intListRows(file, tokens)) {
      if (row === null) throw new Error(`${path}: row ${index} has no ${tokens}`);
      yield tokenRow(row, `${path}: row ${index++}`);
    }
    return;
  }
  requireColumn(file, column, "--text-field");
  for (const text of stringRows(file, column)) if (text !== null && text.trim()) yield text;
}

/**
 * The rows of a parquet file, reading only `columns` — or the columns a function picks from
 * the file's top-level ones — each of which must exist (`option` names the flag that sets them).
 */
export async function* parquetRows(path: string, columns: string[] | ((available: string[]) => string[]),
  option: string): AsyncGenerator<Record<string, unknown>> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import("hyparquet");
  const { compressors } = await import("hyparquet-compressors");
  let file;
  let meta;
  try {
    file = await asyncBufferFromFile(path);
    meta = await parquetMetadataAsync(file);
  } catch (err) {
    throw new Error(`${path}: not a readable parquet file (${(err as Error).message})`);
  }
  const names = topLevelColumns(meta.schema);
  const wanted = typeof columns === "function" ? columns(names) : columns;
  for (const column of wanted) {
    if (!names.includes(column)) throw new Error(`${path}: no column "${column}" (has ${names.join(", ")}); set ${option}`);
  }
  // Row groups one at a time, so memory stays bounded by a row group.
  let rowStart = 0;
  for (const group of meta.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({ file, metadata: meta, columns: wanted, rowStart, rowEnd, compressors });
    for (const row of rows) yield row as Record<string, unknown>;
    rowStart = rowEnd;
  }
}

/** The names of a parquet schema's top-level columns (not the parts of nested ones, such as a list's "element"). */
function topLevelColumns(schema: ReadonlyArray<{ name: string; num_children?: number }>): string[] {
  const names: string[] = [];
  let at = 1;
  // Skips an element and everything nested under it, returning where the next sibling starts.
  const skip = (i: number): number => {
    let next = i + 1;
    for (let c = 0; c < (schema[i]!.num_children ?? 0); c++) next = skip(next);
    return next;
  };
  for (let c = 0; c < (schema[0]?.num_children ?? 0) && at < schema.length; c++) {
    names.push(schema[at]!.name);
    at = skip(at);
  }
  return names;
}
