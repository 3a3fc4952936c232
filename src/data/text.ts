/**
 * Text datasets, streamed one document at a time:
 *   .txt      documents separated by "<|endoftext|>" (TinyStories' own format) when the file
 *             contains it, else by blank lines; or one per line (split: "line")
 *   .jsonl    one JSON object per line, the document in a text field ("text" by default)
 *   .parquet  Hugging Face dataset files: a string column ("text" by default)
 * A folder means every such file in it, in name order; hf:ORG/NAME a dataset repository on
 * the Hugging Face hub, downloaded file by file as reading reaches it (hub-dataset.ts).
 */
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { HubOptions } from "../lm/hub.js";
import { type DocumentSplit, documentSeparator } from "./contexts.js";
import { isHubDataset, readHubDocuments } from "./hub-dataset.js";

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
  const files = readdirSync(path).filter((f) => /\.(txt|jsonl|parquet)$/.test(f)).sort().map((f) => join(path, f));
  if (files.length === 0) throw new Error(`${path}: no .txt, .jsonl or .parquet files in this folder`);
  return files;
}

export async function* readDocuments(path: string, opts: TextDatasetOptions = {}): AsyncGenerator<string> {
  if (isHubDataset(path)) {
    yield* readHubDocuments(path, opts);
    return;
  }
  for (const file of datasetFiles(path)) {
    if (file.endsWith(".parquet")) yield* parquetDocuments(file, opts.textField ?? "text");
    else if (file.endsWith(".jsonl")) yield* jsonlDocuments(file, opts.textField ?? "text");
    else if (file.endsWith(".txt")) yield* textDocuments(file, opts.split ?? "auto");
    else throw new Error(`${file}: unknown dataset file type (.txt, .jsonl, .parquet)`);
  }
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

function* jsonlDocuments(path: string, field: string): Generator<string> {
  for (const { where, record } of jsonlRecords(path)) {
    const text = record[field];
    if (typeof text !== "string") throw new Error(`${where}: no string field "${field}" (set --text-field)`);
    if (text.trim()) yield text;
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

async function* parquetDocuments(path: string, column: string): AsyncGenerator<string> {
  for await (const row of parquetRows(path, [column], "--text-field")) {
    const text = row[column];
    if (typeof text === "string" && text.trim()) yield text;
  }
}

/** The rows of a parquet file, reading only `columns` (each must exist; `option` names the flag that sets them). */
export async function* parquetRows(path: string, columns: string[], option: string): AsyncGenerator<Record<string, unknown>> {
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
  const names = meta.schema.map((s) => s.name);
  for (const column of columns) {
    if (!names.includes(column)) throw new Error(`${path}: no column "${column}" (has ${names.slice(1).join(", ")}); set ${option}`);
  }
  // Row groups one at a time, so memory stays bounded by a row group.
  let rowStart = 0;
  for (const group of meta.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({ file, metadata: meta, columns, rowStart, rowEnd, compressors });
    for (const row of rows) yield row as Record<string, unknown>;
    rowStart = rowEnd;
  }
}
