/**
 * Parquet files of fixed-shape numeric arrays, one per row: how Hugging Face `datasets`
 * pushes an activation cache to the hub (an Array2D column of floats, token_ids a sequence of
 * int32), written here so a store can go to the hub without Python. Each column is nested
 * OPTIONAL lists, one per dimension, around an OPTIONAL leaf (FLOAT, FLOAT16 as
 * FIXED_LEN_BYTE_ARRAY(2), INT32): nullable, as pyarrow writes datasets' columns, though no
 * value is ever null (pyarrow restores an Arrow extension type such as Array2D only onto
 * the nullable lists it was stored as). The layout, deliberately the plainest Parquet has:
 *
 *   "PAR1"
 *   per row group, per column: V1 data pages of whole rows (about 1 MiB of values each),
 *     uncompressed (activations barely compress), each page
 *       [4-byte length][repetition levels, RLE]   the same runs in every row: 0, then per
 *                                                  list element the level where it starts
 *       [4-byte length][definition levels, RLE]   one run: every value present (2 * dims + 1)
 *       [values, PLAIN little-endian]              the caller's bytes, as they are
 *   footer: FileMetaData (thrift compact) with the schema, row groups and key-value metadata
 *   [4-byte footer length]"PAR1"
 *
 * The caller's bytes go out as they are; only the levels and headers are built here, so
 * writing runs at the disk's speed. core/parquet-pages.ts reads it back.
 */
import { writeVarint } from "./byte-cursor.js";
import { rowRepetitionLevels } from "./parquet-pages.js";
import { encodeStruct, type ThriftField } from "./thrift-compact.js";

export type ParquetWriteLeaf = "FLOAT" | "FLOAT16" | "INT32";

/** A column of arrays of shape `dims` (at least one dimension), one per row. */
export interface ParquetArrayColumnSpec {
  name: string;
  leaf: ParquetWriteLeaf;
  dims: number[];
}

/** A row group: `rows` rows, and for each column its values, rows * prod(dims) of them, PLAIN little-endian. */
export interface ParquetRowGroupData {
  rows: number;
  values: Uint8Array[];
}

/** Values per page, about: pages hold whole rows, at least one. */
const PAGE_BYTES = 1 << 20;

const TYPE = { INT32: 1, FLOAT: 4, FIXED_LEN_BYTE_ARRAY: 7 } as const;
const OPTIONAL = 1;
const REPEATED = 2;
const CONVERTED_LIST = 3;
const ENCODING = { PLAIN: 0, RLE: 3 } as const;
const UNCOMPRESSED = 0;
const DATA_PAGE = 0;
const LEAF_BYTES: Record<ParquetWriteLeaf, number> = { FLOAT: 4, FLOAT16: 2, INT32: 4 };
const MAGIC = new TextEncoder().encode("PAR1");

/** The file's bytes, in order: `columns` over `groups`, with `keyValues` in the footer (what datasets reads its features from). */
export function* parquetFile(columns: ParquetArrayColumnSpec[], groups: Iterable<ParquetRowGroupData>,
  keyValues: Record<string, string> = {}, createdBy = "saekit"): Generator<Uint8Array> {
  for (const c of columns) {
    if (c.dims.length === 0 || c.dims.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new RangeError(`parquet: column "${c.name}" of shape [${c.dims.join(", ")}]`);
    // Definition levels reach 2 * dims + 1, written a byte each.
    if (2 * c.dims.length + 1 > 255) throw new RangeError(`parquet: column "${c.name}" nests ${c.dims.length} lists`);
  }
  const rowRuns = columns.map((c) => repetitionRuns(c.dims));
  let offset = 0;
  const emit = (bytes: Uint8Array) => {
    offset += bytes.length;
    return bytes;
  };
  yield emit(MAGIC);
  const rowGroups: ThriftField[][] = [];
  let totalRows = 0;
  for (const group of groups) {
    if (group.values.length !== columns.length) throw new RangeError(`parquet: a row group of ${group.values.length} columns, the file has ${columns.length}`);
    const chunks: ThriftField[][] = [];
    let groupBytes = 0;
    for (const [j, c] of columns.entries()) {
      const perRow = c.dims.reduce((a, b) => a * b, 1);
      const rowBytes = perRow * LEAF_BYTES[c.leaf];
      const values = group.values[j]!;
      if (values.length !== group.rows * rowBytes) throw new RangeError(`parquet: column "${c.name}": ${values.length} bytes for ${group.rows} rows of ${rowBytes}`);
      const start = offset;
      const rowsPerPage = Math.max(1, Math.floor(PAGE_BYTES / rowBytes));
      for (let first = 0; first < group.rows; first += rowsPerPage) {
        const n = Math.min(rowsPerPage, group.rows - first);
        for (const part of dataPage(c, rowRuns[j]!, n, perRow, values.subarray(first * rowBytes, (first + n) * rowBytes))) yield emit(part);
      }
      const size = offset - start;
      groupBytes += size;
      chunks.push([
        [2, "i64", start],
        [3, "struct", [
          [1, "i32", c.leaf === "FLOAT16" ? TYPE.FIXED_LEN_BYTE_ARRAY : TYPE[c.leaf]],
          [2, "list<i32>", [ENCODING.PLAIN, ENCODING.RLE]],
          [3, "list<binary>", leafPath(c)],
          [4, "i32", UNCOMPRESSED],
          [5, "i64", group.rows * perRow],
          [6, "i64", size],
          [7, "i64", size],
          [9, "i64", start],
        ]],
      ]);
    }
    rowGroups.push([[1, "list<struct>", chunks], [2, "i64", groupBytes], [3, "i64", group.rows], [7, "i64", groupBytes]]);
    totalRows += group.rows;
  }
  const footer = encodeStruct([
    [1, "i32", 1],
    [2, "list<struct>", schema(columns)],
    [3, "i64", totalRows],
    [4, "list<struct>", rowGroups],
    [5, "list<struct>", Object.entries(keyValues).map(([key, value]): ThriftField[] => [[1, "binary", key], [2, "binary", value]])],
    [6, "binary", createdBy],
  ]);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, footer.length, true);
  yield footer;
  yield length;
  yield MAGIC;
}

/** One V1 data page of `rows` whole rows: its header, then levels and values. */
function dataPage(c: ParquetArrayColumnSpec, runs: Array<[number, number]>, rows: number, perRow: number, values: Uint8Array): Uint8Array[] {
  const count = rows * perRow;
  const rep: number[] = [];
  for (let r = 0; r < rows; r++) for (const [level, n] of runs) rleRun(rep, level, n);
  const def: number[] = [];
  // Every value present: the deepest level, an optional list and its repeated group per dimension, then the optional leaf.
  rleRun(def, 2 * c.dims.length + 1, count);
  const levels = new Uint8Array(8 + rep.length + def.length);
  const view = new DataView(levels.buffer);
  view.setUint32(0, rep.length, true);
  levels.set(rep, 4);
  view.setUint32(4 + rep.length, def.length, true);
  levels.set(def, 8 + rep.length);
  const size = levels.length + values.length;
  const header = encodeStruct([
    [1, "i32", DATA_PAGE],
    [2, "i32", size],
    [3, "i32", size],
    [5, "struct", [[1, "i32", count], [2, "i32", ENCODING.PLAIN], [3, "i32", ENCODING.RLE], [4, "i32", ENCODING.RLE]]],
  ]);
  return [header, levels, values];
}

/** A row's repetition levels (rowRepetitionLevels) as runs [level, count] of equal ones. */
function repetitionRuns(dims: number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const level of rowRepetitionLevels(dims)) {
    const last = runs[runs.length - 1];
    if (last && last[0] === level) last[1]++;
    else runs.push([level, 1]);
  }
  return runs;
}

/** An RLE run of the hybrid encoding: varint(count << 1), then the value in one byte (levels here are at most 255). */
function rleRun(out: number[], value: number, count: number): void {
  writeVarint(out, count * 2);
  // Bit width of the column's levels, rounded up to bytes: 1 byte for any level up to 255.
  out.push(value);
}

/** The schema: the root, then per column one OPTIONAL LIST group and a REPEATED "list" per dimension, then the leaf. */
function schema(columns: ParquetArrayColumnSpec[]): ThriftField[][] {
  const out: ThriftField[][] = [[[4, "binary", "schema"], [5, "i32", columns.length]]];
  for (const c of columns) {
    c.dims.forEach((_, level) => {
      out.push([[3, "i32", OPTIONAL], [4, "binary", level === 0 ? c.name : "element"], [5, "i32", 1], [6, "i32", CONVERTED_LIST], [10, "struct", [[3, "struct", []]]]]);
      out.push([[3, "i32", REPEATED], [4, "binary", "list"], [5, "i32", 1]]);
    });
    out.push(c.leaf === "FLOAT16"
      ? [[1, "i32", TYPE.FIXED_LEN_BYTE_ARRAY], [2, "i32", 2], [3, "i32", OPTIONAL], [4, "binary", "element"], [10, "struct", [[15, "struct", []]]]]
      : [[1, "i32", TYPE[c.leaf]], [3, "i32", OPTIONAL], [4, "binary", "element"]]);
  }
  return out;
}

function leafPath(c: ParquetArrayColumnSpec): string[] {
  return [c.name, ...c.dims.flatMap((_, level) => (level === 0 ? ["list"] : ["element", "list"])), "element"];
}
