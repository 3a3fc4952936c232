/**
 * The rows of a variable-length Arrow column, a record batch at a time: strings (Utf8,
 * LargeUtf8: a text dataset's documents) or lists of integers (a pretokenized dataset's
 * token rows, as SAELens' pretokenize runner saves them), with null entries as null. What
 * a Hugging Face dataset saved to disk (`save_to_disk`) holds, read without loading it
 * whole; fixed-shape numeric columns are arrow-column.ts's.
 */
import type { ArrowIpcFile, ColumnStart, RecordBatch } from "../core/arrow-ipc.js";
import { columnOf, describeType, readInt, readInt32s, readOffsets } from "./arrow-column.js";

/** Refuses a file without column `name`, saying which it has and the option (`set ${option}`) that names another. */
export function requireColumn(file: ArrowIpcFile, name: string, option: string): void {
  if (!file.fields.some((f) => f.name === name)) throw new Error(`${file.where}: no column "${name}" (has ${file.fields.map((f) => f.name).join(", ")}); set ${option}`);
}

/** Whether `name` is a column of strings. */
export function isStringColumn(file: ArrowIpcFile, name: string): boolean {
  const f = file.fields.find((g) => g.name === name);
  return f !== undefined && !f.dictionary && (f.type.name === "Utf8" || f.type.name === "LargeUtf8");
}

/** Whether `name` is a column of lists of integers. */
export function isIntListColumn(file: ArrowIpcFile, name: string): boolean {
  const f = file.fields.find((g) => g.name === name);
  const list = f?.type.name === "List" || f?.type.name === "LargeList" || f?.type.name === "FixedSizeList";
  return f !== undefined && !f.dictionary && list && f.children.length === 1 && f.children[0]!.type.name === "Int" && !f.children[0]!.dictionary;
}

/** The strings of column `name`, row by row (null where the entry is null). */
export function* stringRows(file: ArrowIpcFile, name: string): Generator<string | null> {
  const { field, start } = columnOf(file, name);
  if (!isStringColumn(file, name)) throw new Error(`${file.where}: column "${name}" is ${describeType(field)}, not strings`);
  const offsetBytes = field.type.name === "LargeUtf8" ? 8 : 4;
  const decoder = new TextDecoder();
  for (const batch of file.batches) {
    const n = rowsOf(file, batch, start, name);
    if (n === 0) continue;
    const valid = validity(file, batch, start, n);
    const offsets = readOffsets(file, batch, start.buffer + 1, 0, n + 1, offsetBytes);
    const bytes = file.readBuffer(batch, start.buffer + 2, offsets[0]!, checkedSpan(file, offsets, name));
    for (let r = 0; r < n; r++) {
      yield valid && !valid(r) ? null : decoder.decode(bytes.subarray(offsets[r]! - offsets[0]!, offsets[r + 1]! - offsets[0]!));
    }
  }
}

/** The integer lists of column `name`, row by row, as int32 (null where the entry is null). */
export function* intListRows(file: ArrowIpcFile, name: string): Generator<Int32Array | null> {
  const { field, start } = columnOf(file, name);
  if (!isIntListColumn(file, name)) throw new Error(`${file.where}: column "${name}" is ${describeType(field)}, not lists of integers`);
  const leaf = field.children[0]!.type;
  const bits = leaf.bitWidth!;
  if (![8, 16, 32, 64].includes(bits)) throw new Error(`${file.where}: column "${name}" holds ${bits}-bit integers`);
  const fixed = field.type.name === "FixedSizeList" ? field.type.listSize! : null;
  for (const batch of file.batches) {
    const n = rowsOf(file, batch, start, name);
    if (n === 0) continue;
    const valid = validity(file, batch, start, n);
    const childNode = batch.nodes[start.node + 1];
    if (!childNode) throw new Error(`${file.where}: column "${name}" has no values in a record batch`);
    const values = start.buffer + (fixed !== null ? 1 : 2) + 1; // past the list's buffers and the values' validity
    if (fixed !== null) {
      // Checked against the values buffer before anything is sized by the row count.
      if (childNode.length !== n * fixed) throw new Error(`${file.where}: column "${name}" has ${childNode.length} values for ${n} lists of ${fixed}`);
      file.bufferPosition(batch, values, 0, n * fixed * (bits / 8));
    }
    // A fixed-size list has only a validity buffer; a list has offsets too.
    const offsets = fixed !== null ? Array.from({ length: n + 1 }, (_, r) => r * fixed)
      : readOffsets(file, batch, start.buffer + 1, 0, n + 1, field.type.name === "LargeList" ? 8 : 4);
    if (childNode.nullCount > 0) throw new Error(`${file.where}: column "${name}" has ${childNode.nullCount} null token ids`);
    const span = checkedSpan(file, offsets, name);
    if (offsets[0]! + span > childNode.length) throw new Error(`${file.where}: column "${name}" reads values up to ${offsets[0]! + span} of ${childNode.length}`);
    const ints = readInt32s(file, batch, values, offsets[0]!, span, bits, leaf.signed === true,
      (why) => { throw new Error(`${file.where}: column "${name}" ${why}`); });
    for (let r = 0; r < n; r++) yield valid && !valid(r) ? null : ints.slice(offsets[r]! - offsets[0]!, offsets[r + 1]! - offsets[0]!);
  }
}

/** The integers of a column of plain integers (a class label, say), row by row (null where null). */
export function* intRows(file: ArrowIpcFile, name: string): Generator<number | null> {
  const { field, start } = columnOf(file, name);
  const bits = field.type.bitWidth ?? 0;
  if (field.dictionary || field.type.name !== "Int" || ![8, 16, 32, 64].includes(bits)) throw new Error(`${file.where}: column "${name}" is ${describeType(field)}, not integers`);
  for (const batch of file.batches) {
    const n = rowsOf(file, batch, start, name);
    if (n === 0) continue;
    const valid = validity(file, batch, start, n);
    const raw = file.readBuffer(batch, start.buffer + 1, 0, n * (bits / 8));
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let r = 0; r < n; r++) yield valid && !valid(r) ? null : readInt(view, r * (bits / 8), bits, field.type.signed === true);
  }
}

/**
 * Records of the named columns, row by row: strings, plain integers (null where null), as
 * parquet or jsonl records would give them; a column of another type is an error naming it.
 */
export function* arrowRecords(file: ArrowIpcFile, columns: string[], option: string): Generator<Record<string, unknown>> {
  const readers = columns.map((name) => {
    requireColumn(file, name, option);
    return isStringColumn(file, name) ? stringRows(file, name) : intRows(file, name);
  });
  for (;;) {
    const values = readers.map((r) => r.next());
    if (values.some((v) => v.done)) return;
    yield Object.fromEntries(columns.map((name, i) => [name, values[i]!.value]));
  }
}

/** The batch's row count, checked against the column's own entry count. */
function rowsOf(file: ArrowIpcFile, batch: RecordBatch, start: ColumnStart, name: string): number {
  const node = batch.nodes[start.node];
  if (node?.length !== batch.rows) throw new Error(`${file.where}: a record batch of ${batch.rows} rows has ${node?.length ?? "no"} entries in column "${name}"`);
  return batch.rows;
}

/** Which entries are present (null when all are): the validity bitmap, least significant bit first. */
function validity(file: ArrowIpcFile, batch: RecordBatch, start: ColumnStart, n: number): ((r: number) => boolean) | null {
  if (batch.nodes[start.node]!.nullCount === 0) return null;
  const bits = file.readBuffer(batch, start.buffer, 0, Math.ceil(n / 8));
  return (r) => ((bits[r >> 3]! >> (r & 7)) & 1) === 1;
}

/** The values the offsets span, checked to be a non-decreasing run. */
function checkedSpan(file: ArrowIpcFile, offsets: number[], name: string): number {
  for (let r = 0; r + 1 < offsets.length; r++) {
    if (offsets[r + 1]! < offsets[r]!) throw new Error(`${file.where}: column "${name}" has decreasing offsets at row ${r}`);
  }
  return offsets[offsets.length - 1]! - offsets[0]!;
}
