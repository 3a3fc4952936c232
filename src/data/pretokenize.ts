/**
 * `saekit pretokenize`: a text dataset tokenized and packed into contexts once, written as a
 * pretokenized dataset — an `input_ids` column of ctx token ids per row, as SAELens'
 * pretokenize runner writes it — that harvest, train --model, eval and SAELens read without
 * tokenizing again (data/text.ts takes each row as one context). `.parquet` (what Hugging
 * Face datasets are stored as; int32 lists, row groups of 1000) or `.jsonl`, written
 * atomically.
 */
import { existsSync } from "node:fs";
import { writeFileAtomic } from "../core/atomic.js";

export interface PretokenizeOptions {
  /** Context length (every row has exactly this many tokens). */
  ctx: number;
  /** Rows to write at most: the first ceil(tokens / ctx) contexts. */
  tokens: number;
  /** Recorded in the parquet file's key-value metadata (tokenizer, dataset, BOS, ...). */
  info?: Record<string, unknown>;
  /** Write over a file already at `out` (refused otherwise: it may be a dataset, this one's input even). */
  overwrite?: boolean;
}

export const TOKENS_COLUMN = "input_ids";

/** Writes the first contexts of the stream to `out` (.parquet or .jsonl); returns how many. */
export async function pretokenize(contexts: AsyncIterable<Int32Array>, out: string, o: PretokenizeOptions): Promise<{ rows: number }> {
  const parquet = out.endsWith(".parquet");
  if (!parquet && !out.endsWith(".jsonl")) throw new Error(`${out}: a pretokenized dataset is written as .parquet or .jsonl`);
  if (!o.overwrite && existsSync(out)) throw new Error(`${out}: exists already; choose another output, or overwrite it (--overwrite)`);
  const wanted = Math.ceil(o.tokens / o.ctx);
  const rows: Int32Array[] = [];
  for await (const c of contexts) {
    if (rows.length >= wanted) break;
    if (c.length !== o.ctx) throw new Error(`pretokenize: a context of ${c.length} tokens, expected ${o.ctx}`);
    rows.push(c.slice());
  }
  if (rows.length === 0) throw new Error(`pretokenize: the dataset has no context of ${o.ctx} tokens`);
  if (parquet) {
    writeFileAtomic(out, await parquetBytes(rows, o.info ?? {}));
  } else {
    writeFileAtomic(out, (function* () {
      for (const r of rows) yield `{"${TOKENS_COLUMN}":[${r.join(",")}]}\n`;
    })());
  }
  return { rows: rows.length };
}

/** The rows as a parquet file: one list<int32> column, the info as key-value metadata. */
async function parquetBytes(rows: Int32Array[], info: Record<string, unknown>): Promise<Uint8Array> {
  const { parquetWriteBuffer } = await import("hyparquet-writer");
  const buf = parquetWriteBuffer({
    columnData: [{ name: TOKENS_COLUMN, data: rows.map((r) => Array.from(r)) }],
    schema: [
      { name: "root", num_children: 1 },
      { name: TOKENS_COLUMN, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
      { name: "list", repetition_type: "REPEATED", num_children: 1 },
      { name: "element", type: "INT32", repetition_type: "REQUIRED" },
    ],
    rowGroupSize: 1000,
    kvMetadata: [{ key: "saekit", value: JSON.stringify(info) }],
  });
  return new Uint8Array(buf);
}
