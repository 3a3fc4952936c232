/**
 * A column of fixed-shape numeric arrays across Arrow files (arrow-ipc.ts): each row an
 * array of shape `dims`, stored as nested lists — variable lists with offsets (32- or
 * 64-bit), as Hugging Face `datasets` stores Array2D, or fixed-size lists, as it stores a
 * Sequence of known length — around floats (16/32/64-bit) or integers. Every list must be
 * full (no nulls) and of its dimension's one size, which each read checks.
 */
import type { ArrowField, ArrowIpcFile, ColumnStart, RecordBatch } from "../core/arrow-ipc.js";
import { type Fail, readFloatsInto } from "../core/byte-source.js";

/** How one dimension is stored: a list with offsets, or a fixed-size list. */
type Level = { kind: "list"; offsetBytes: 4 | 8 } | { kind: "fixed"; size: number };

export type LeafKind = "float" | "int";

/** A run of rows inside one record batch of one file: what a read fetches at once. */
export interface ArrowChunk {
  file: number;
  batch: number;
  firstRow: number;
  rows: number;
}

const FLOAT_DTYPES = { 16: "F16", 32: "F32", 64: "F64" } as const;

export class ArrowArrayColumn {
  /** Shape of one row's array. */
  readonly dims: number[];
  /** Values per row (the product of dims). */
  readonly perRow: number;
  readonly bits: number;
  private readonly levels: Level[];
  private readonly signed: boolean;
  private readonly starts: ColumnStart[];

  /** The column `name` of every file, which must all hold it as the same type. */
  constructor(readonly name: string, readonly kind: LeafKind, private readonly files: ArrowIpcFile[], private readonly paths: string[]) {
    const { field } = columnOf(files[0]!, name);
    const shape = arrayLevels(field, kind) ?? this.fail(`column "${name}" is ${describeType(field)}, not (lists of) ${kind === "float" ? "float vectors" : "integers"}`);
    this.levels = shape.levels;
    this.bits = shape.bits;
    this.signed = shape.signed;
    this.starts = files.map((f, i) => {
      const same = f.fields.find((g) => g.name === name);
      if (!same || describeType(same) !== describeType(field)) this.fail(`${paths[i]} does not hold column "${name}" as ${describeType(field)}, as ${paths[0]} does`);
      return columnOf(f, name).start;
    });
    this.dims = this.findDims();
    if (this.dims.some((n) => n < 1)) this.fail(`column "${name}" holds arrays of shape [${this.dims.join(", ")}]`);
    this.perRow = this.dims.reduce((a, b) => a * b, 1);
    this.checkBatchSizes();
  }

  /** The columns of these fields that are (nested lists of) `kind` values. */
  static candidates(fields: ArrowField[], kind: LeafKind): string[] {
    return fields.filter((f) => arrayLevels(f, kind) !== null).map((f) => f.name);
  }

  /** The chunk's values, [rows * perRow] in row order, as float32 into `into` at `at`. */
  readFloats(chunk: ArrowChunk, into: Float32Array, at = 0): void {
    const { file, batch, lo, count, buffer, fail } = this.leafRange(chunk);
    if (this.kind !== "float") fail("holds integers, not floats");
    if (into.length < at + count) fail(`${count} values do not fit the ${into.length - at} left in the buffer`);
    const bytes = this.bits / 8;
    const position = file.bufferPosition(batch, buffer, lo * bytes, count * bytes);
    readFloatsInto(file.source, position, FLOAT_DTYPES[this.bits as 16 | 32 | 64], into.subarray(at, at + count), fail);
  }

  /** The chunk's values, [rows * perRow] in row order, as int32 (token ids). */
  readInts(chunk: ArrowChunk): Int32Array {
    const { file, batch, lo, count, buffer, fail } = this.leafRange(chunk);
    if (this.kind !== "int") fail("holds floats, not integers");
    return readInt32s(file, batch, buffer, lo, count, this.bits, this.signed, fail);
  }

  /**
   * The leaf values a chunk's rows hold: [lo, lo + count) of the values buffer (its index),
   * found by walking down the levels — rows, the lists inside them, ... — checking that
   * no entry is null and every list has its dimension's size.
   */
  private leafRange(chunk: ArrowChunk): { file: ArrowIpcFile; batch: RecordBatch; lo: number; count: number; buffer: number; fail: Fail } {
    const file = this.files[chunk.file]!;
    const batch = file.batches[chunk.batch]!;
    const where = `${this.paths[chunk.file]}, column "${this.name}", record batch ${chunk.batch}`;
    const fail: Fail = (why) => { throw new Error(`${where}: ${why}`); };
    let { node, buffer } = this.starts[chunk.file]!;
    let lo = chunk.firstRow;
    let hi = chunk.firstRow + chunk.rows;
    for (let level = 0; level <= this.levels.length; level++) {
      const n = batch.nodes[node] ?? fail(`the batch has no field node ${node}`);
      if (n.nullCount > 0) fail(`${n.nullCount} null entries; every value must be present`);
      if (hi > n.length) fail(`reads entries up to ${hi} of ${n.length}`);
      if (level === this.levels.length) break;
      const l = this.levels[level]!;
      const size = this.dims[level]!;
      if (l.kind === "fixed") {
        [lo, hi] = [lo * l.size, hi * l.size];
        buffer += 1;
      } else {
        const offsets = readOffsets(file, batch, buffer + 1, lo, hi - lo + 1, l.offsetBytes);
        for (let k = 0; k + 1 < offsets.length; k++) {
          if (offsets[k + 1]! - offsets[k]! !== size) fail(`entry ${lo + k} holds ${offsets[k + 1]! - offsets[k]!} values at depth ${level + 1}, not ${size}: the column's arrays must all be [${this.dims.join(", ")}]`);
        }
        [lo, hi] = [offsets[0]!, offsets[offsets.length - 1]!];
        buffer += 2;
      }
      node += 1;
    }
    // `buffer` is the leaf's validity bitmap; its values follow.
    return { file, batch, lo, count: hi - lo, buffer: buffer + 1, fail };
  }

  /** Each dimension: fixed sizes from the type, list sizes from the first row of the first non-empty batch. */
  private findDims(): number[] {
    const dims: number[] = [];
    const fileIndex = this.files.findIndex((f) => f.batches.some((b) => b.rows > 0));
    if (fileIndex < 0) this.fail("no rows");
    const file = this.files[fileIndex]!;
    const batch = file.batches.find((b) => b.rows > 0)!;
    let { buffer } = this.starts[fileIndex]!;
    let lo = 0;
    for (const l of this.levels) {
      if (l.kind === "fixed") {
        dims.push(l.size);
        lo *= l.size;
        buffer += 1;
        continue;
      }
      const [start, end] = readOffsets(file, batch, buffer + 1, lo, 2, l.offsetBytes);
      dims.push(end! - start!);
      lo = start!;
      buffer += 2;
    }
    return dims;
  }

  /**
   * Each batch's row count agrees with the column's and its values buffer is big enough for
   * them: a corrupt count is refused here, before anything is sized by it.
   */
  private checkBatchSizes(): void {
    const rowBytes = (this.perRow * this.bits) / 8;
    this.files.forEach((file, i) => file.batches.forEach((b, j) => {
      const start = this.starts[i]!;
      const top = b.nodes[start.node];
      if (top?.length !== b.rows) this.fail(`${this.paths[i]}, record batch ${j}: ${b.rows} rows, but ${top?.length ?? "no"} entries in column "${this.name}"`);
      // Past each level's validity (and offsets), then the leaf's validity.
      const values = b.buffers[start.buffer + this.levels.reduce((a, l) => a + (l.kind === "fixed" ? 1 : 2), 0) + 1];
      if ((values?.length ?? 0) < b.rows * rowBytes) {
        this.fail(`${this.paths[i]}, record batch ${j}: ${b.rows} rows of [${this.dims.join(", ")}] need ${b.rows * rowBytes} bytes of values in column "${this.name}", the batch has ${values?.length ?? 0}`);
      }
    }));
  }

  private fail(why: string): never {
    throw new Error(`${this.paths[0]}: ${why}`);
  }
}

/**
 * Which column of Arrow data holds the activation vectors: the one named, else the only
 * column of (nested lists of) float vectors, with an error naming `where` and the columns
 * otherwise.
 */
export function chooseFloatColumn(fields: ArrowField[], column: string | undefined, where: string): string {
  if (column !== undefined) return column;
  const candidates = ArrowArrayColumn.candidates(fields, "float");
  if (candidates.length === 1) return candidates[0]!;
  throw new Error(`${where}: ${candidates.length === 0
    ? `no column of float vectors (columns: ${fields.map((f) => `${f.name}: ${describeType(f)}`).join(", ")})`
    : `several columns of float vectors (${candidates.join(", ")}); choose one with --tensor`}`);
}

/**
 * How a column of nested lists ending in `kind` values is stored, or null for any other
 * column: one level per list around the values, outermost first (at least one for floats,
 * the vectors; integers may stand alone, one per row).
 */
function arrayLevels(field: ArrowField, kind: LeafKind): { levels: Level[]; bits: number; signed: boolean } | null {
  const levels: Level[] = [];
  let f = field;
  for (;;) {
    if (f.dictionary) return null;
    const t = f.type;
    if (kind === "float" && t.name === "FloatingPoint") return levels.length > 0 ? { levels, bits: t.bitWidth!, signed: true } : null;
    if (kind === "int" && t.name === "Int") return [8, 16, 32, 64].includes(t.bitWidth!) ? { levels, bits: t.bitWidth!, signed: t.signed === true } : null;
    if (t.name === "List" || t.name === "LargeList") levels.push({ kind: "list", offsetBytes: t.name === "List" ? 4 : 8 });
    else if (t.name === "FixedSizeList") levels.push({ kind: "fixed", size: t.listSize! });
    else return null;
    if (f.children.length !== 1) return null;
    f = f.children[0]!;
  }
}

/** The type as text, e.g. List<List<FloatingPoint32>>, for messages. */
export function describeType(f: ArrowField): string {
  const t = f.type;
  const inner = f.children.map(describeType).join(", ");
  const detail = t.name === "FloatingPoint" || t.name === "Int" ? `${t.bitWidth}` : t.name === "FixedSizeList" ? `${t.listSize}` : "";
  return `${t.name}${detail}${inner ? `<${inner}>` : ""}`;
}

/** A column's field and where its nodes and buffers start, or an error naming the file and the columns it has. */
export function columnOf(file: ArrowIpcFile, name: string): { field: ArrowField; start: ColumnStart } {
  const index = file.fields.findIndex((f) => f.name === name);
  if (index < 0) throw new Error(`${file.where}: no column "${name}" (columns: ${file.fields.map((f) => f.name).join(", ")})`);
  const start = file.columnStarts[index];
  if (!start) throw new Error(`${file.where}: a column before "${name}" has a type whose layout varies by batch (a view type); cannot find the column`);
  return { field: file.fields[index]!, start };
}

/**
 * `count` integers of `bits` bits from element `first` of a batch's values buffer, as int32
 * (token ids); a value int32 cannot hold fails.
 */
export function readInt32s(file: ArrowIpcFile, batch: RecordBatch, buffer: number, first: number, count: number,
  bits: number, signed: boolean, fail: Fail): Int32Array {
  const bytes = bits / 8;
  const raw = file.readBuffer(batch, buffer, first * bytes, count * bytes);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = readInt(view, i * bytes, bits, signed);
    if (v < -(2 ** 31) || v >= 2 ** 31) fail(`holds ${v}, not a token id`);
    out[i] = v;
  }
  return out;
}

/** `count` list offsets from entry `first` of an offsets buffer, as numbers. */
export function readOffsets(file: ArrowIpcFile, batch: RecordBatch, buffer: number, first: number, count: number, bytes: 4 | 8): number[] {
  const raw = file.readBuffer(batch, buffer, first * bytes, count * bytes);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: count }, (_, k) => (bytes === 4 ? view.getInt32(k * bytes, true) : Number(view.getBigInt64(k * bytes, true))));
}

/** An integer of `bits` bits at `at` (little-endian), as a number. */
export function readInt(view: DataView, at: number, bits: number, signed: boolean): number {
  switch (bits) {
    case 8: return signed ? view.getInt8(at) : view.getUint8(at);
    case 16: return signed ? view.getInt16(at, true) : view.getUint16(at, true);
    case 32: return signed ? view.getInt32(at, true) : view.getUint32(at, true);
    default: return Number(signed ? view.getBigInt64(at, true) : view.getBigUint64(at, true));
  }
}
