/**
 * One column of fixed-shape numeric arrays across Parquet files, read a row group at a time
 * straight into a typed array (core/parquet-pages.ts): the part of reading activations from
 * Parquet that needs no file system, so the explorer page reads a dropped file with it too
 * (parquet-activations.ts opens files and folders in Node). Files come as ByteSources with
 * their footers parsed (readParquetFooter); codecs are the caller's (hyparquet-compressors).
 *
 * Every row must hold the same shape, found from the first row: each page's repetition
 * levels are checked against it, and its definition levels against nulls and empty lists,
 * so a ragged or partial column is refused by row group and column rather than read as
 * shifted vectors.
 */
import type { FileMetaData, SchemaElement } from "hyparquet";
import type { ByteSource, Fail } from "../core/byte-source.js";
import { type ChunkLayout, type DataPage, type Decompress, type ParquetLeaf, columnPages, rowRepetitionLevels } from "../core/parquet-pages.js";

/** One row group of one file: what a read decodes at once. */
export interface ParquetChunk {
  file: number;
  rowGroup: number;
  rows: number;
}

export type LeafKind = "float" | "int";

/** A top-level column that is (lists of) one numeric leaf. */
export interface LeafColumn {
  name: string;
  kind: LeafKind;
  layout: Omit<ChunkLayout, "codec">;
  /** The leaf's path in the schema, as the column chunks name it. */
  path: string[];
}

export interface ParquetFile {
  path: string;
  source: ByteSource;
  meta: FileMetaData;
}

/** One column across the files: its shape, found from the first row, and reads of row groups checked against it. */
export class ParquetArrayColumn {
  readonly dims: number[];
  readonly perRow: number;
  /** The column in each file: the same leaf in the same lists, its levels as that file defines them. */
  private readonly leaves: LeafColumn[];
  /** The repetition level each value of a row must have, for the check of every page. */
  private readonly rowReps: Uint8Array;

  constructor(readonly name: string, kind: LeafKind, private readonly files: ParquetFile[], private readonly codecs: Record<string, Decompress>) {
    const first = topLevelLeaves(files[0]!.meta.schema).find((c) => c.name === name);
    if (!first) fail(files[0]!.path, `no column "${name}" (columns: ${topLevelLeaves(files[0]!.meta.schema).map((c) => c.name).join(", ")})`);
    if (first.kind !== kind) fail(files[0]!.path, `column "${name}" holds ${first.kind === "float" ? "floats" : "integers"}, not ${kind === "float" ? "floats" : "integers"}`);
    this.leaves = files.map((f) => {
      const same = topLevelLeaves(f.meta.schema).find((c) => c.name === name);
      if (!same || describeLeaf(same) !== describeLeaf(first)) fail(f.path, `does not hold column "${name}" as ${describeLeaf(first)}, as ${files[0]!.path} does`);
      return same;
    });
    this.dims = this.findDims();
    this.perRow = this.dims.reduce((a, b) => a * b, 1);
    // A row group is read into one typed array: its values must fit one (2^31 - 1 of them).
    for (const chunk of this.chunks()) {
      if (chunk.rows * this.perRow > 0x7fffffff) this.chunkFail(chunk, `${chunk.rows} rows of [${this.dims.join(", ")}]: more values than one read holds (2^31 - 1)`);
    }
    this.rowReps = rowRepetitionLevels(this.dims);
  }

  chunks(): ParquetChunk[] {
    const out: ParquetChunk[] = [];
    this.files.forEach((f, file) => f.meta.row_groups.forEach((g, rowGroup) => {
      const rows = Number(g.num_rows);
      if (rows > 0) out.push({ file, rowGroup, rows });
    }));
    return out;
  }

  /** The chunk's values, [rows * perRow] in row order, into `into` at `at`. */
  read(chunk: ParquetChunk, into: Float32Array | Int32Array, at: number): void {
    const expected = chunk.rows * this.perRow;
    if (into.length < at + expected) this.chunkFail(chunk, `${expected} values do not fit the ${into.length - at} left in the buffer`);
    const { maxDef } = this.leaves[chunk.file]!.layout;
    let q = 0;
    let written = 0;
    try {
      for (const page of this.pages(chunk, expected)) {
        const { rep, def, values, count } = page;
        if (def) for (let i = 0; i < count; i++) if (def[i] !== maxDef) throw new Error(`row ${Math.floor((written + i) / this.perRow)}: a null or an empty list (every row must hold a full [${this.dims.join(", ")}])`);
        if (rep) {
          for (let i = 0; i < count; i++) {
            if (rep[i] !== this.rowReps[q]) throw new Error(`row ${Math.floor((written + i) / this.perRow)} is not of shape [${this.dims.join(", ")}], as the column's first row is`);
            if (++q === this.perRow) q = 0;
          }
        }
        into.set(values, at + written);
        written += values.length;
      }
    } catch (err) {
      this.chunkFail(chunk, (err as Error).message);
    }
    if (written !== expected) this.chunkFail(chunk, `${written} values for ${chunk.rows} rows of [${this.dims.join(", ")}]`);
  }

  /**
   * The data pages of the column in a row group; with `entries`, its metadata must count
   * that many (rows * perRow: none missing).
   */
  private pages(chunk: ParquetChunk, entries?: number): Generator<DataPage> {
    const file = this.files[chunk.file]!;
    const leaf = this.leaves[chunk.file]!;
    const column = file.meta.row_groups[chunk.rowGroup]!.columns.find((c) => c.meta_data?.path_in_schema.join(".") === leaf.path.join("."));
    const meta = column?.meta_data ?? this.chunkFail(chunk, "no column chunk for it");
    if (entries !== undefined && Number(meta.num_values) !== entries) throw new Error(`${meta.num_values} entries where ${chunk.rows} rows of [${this.dims.join(", ")}] have ${entries}`);
    return columnPages(this.chunkBytes(file, meta), { ...leaf.layout, codec: meta.codec }, this.codecs, Number(meta.num_values));
  }

  /** The bytes of a column chunk, from its dictionary page (if any) to its end, inside the file's data. */
  private chunkBytes(file: ParquetFile, meta: { data_page_offset: bigint; dictionary_page_offset?: bigint; total_compressed_size: bigint }): Uint8Array {
    const dictionary = meta.dictionary_page_offset !== undefined && meta.dictionary_page_offset > 0n ? Number(meta.dictionary_page_offset) : Infinity;
    const start = Math.min(Number(meta.data_page_offset), dictionary);
    const length = Number(meta.total_compressed_size);
    const dataEnd = file.source.size - file.meta.metadata_length - 8;
    if (start < 4 || length < 0 || start + length > dataEnd) throw new Error(`a column chunk at bytes ${start}..${start + length}, outside the file's data (4..${dataEnd})`);
    return file.source.read(start, length, (why) => { throw new Error(why); });
  }

  /**
   * The shape of the first row: how many values lie between the starts of list elements at
   * each level (its repetition levels), read from the first pages of the first row group
   * that has rows.
   */
  private findDims(): number[] {
    const chunk = this.chunks()[0] ?? fail(this.files[0]!.path, "no rows");
    const { maxRep, maxDef } = this.leaves[chunk.file]!.layout;
    if (maxRep === 0) return [];
    const firstStride = new Array<number>(maxRep + 1).fill(0);
    let n = 0;
    try {
      pages: for (const page of this.pages(chunk)) {
        for (let i = 0; i < page.count; i++) {
          if (page.def && page.def[i] !== maxDef) throw new Error("the first row holds a null or an empty list");
          const r = page.rep![i]!;
          if (n > 0 && r === 0) break pages;
          // The first value after the start where a list at level <= r begins again.
          if (n > 0) for (let level = r; level <= maxRep; level++) if (firstStride[level] === 0) firstStride[level] = n;
          n++;
        }
      }
    } catch (err) {
      this.chunkFail(chunk, (err as Error).message);
    }
    firstStride[0] = n;
    for (let level = 1; level <= maxRep; level++) if (firstStride[level] === 0) firstStride[level] = n;
    const dims: number[] = [];
    for (let level = 1; level <= maxRep; level++) {
      const outer = firstStride[level - 1]!;
      const inner = firstStride[level]!;
      if (inner === 0 || outer % inner !== 0) this.chunkFail(chunk, `the first row's lists are ragged (${outer} values in elements of ${inner})`);
      dims.push(outer / inner);
    }
    return dims;
  }

  private chunkFail(chunk: ParquetChunk, why: string): never {
    return fail(this.files[chunk.file]!.path, `row group ${chunk.rowGroup}, column "${this.name}": ${why}`);
  }
}

/**
 * A file's footer, parsed by `parse` (hyparquet's parquetMetadata), bounded by the source's
 * size and checked for row counts that add up; failures name `path`.
 */
export function readParquetFooter(path: string, source: ByteSource, parse: (bytes: Uint8Array) => FileMetaData): ParquetFile {
  const failHere: Fail = (why) => fail(path, why);
  const size = source.size;
  if (size < 12) failHere(`${size} bytes: too short for a Parquet file`);
  const head = source.read(0, 4, failHere);
  const tail = source.read(size - 8, 8, failHere);
  const magic = (b: Uint8Array) => String.fromCharCode(...b);
  if (magic(head) !== "PAR1" || magic(tail.subarray(4)) !== "PAR1") failHere("not a Parquet file (no PAR1 at its start and end)");
  const metaLength = new DataView(tail.buffer, tail.byteOffset, 8).getUint32(0, true);
  if (metaLength > size - 12) failHere(`a footer of ${metaLength} bytes in a file of ${size}`);
  const footer = source.read(size - 8 - metaLength, metaLength + 8, failHere);
  let meta: FileMetaData;
  try {
    meta = parse(footer);
  } catch (err) {
    return failHere(`corrupt footer (${(err as Error).message})`);
  }
  const groupRows = meta.row_groups.reduce((a, g) => a + Number(g.num_rows), 0);
  if (groupRows !== Number(meta.num_rows) || meta.row_groups.some((g) => g.num_rows < 0n)) {
    failHere(`corrupt footer: ${meta.num_rows} rows, but its row groups hold ${meta.row_groups.map((g) => g.num_rows).join(" + ")}`);
  }
  return { path, source, meta };
}

/**
 * Which column holds the activation vectors: the one named, else the only column of lists
 * of floats, with an error naming `where` and the columns otherwise.
 */
export function chooseParquetFloatColumn(file: ParquetFile, column: string | undefined, where: string): string {
  if (column !== undefined) return column;
  const leaves = topLevelLeaves(file.meta.schema);
  const floats = leaves.filter((c) => c.kind === "float" && c.layout.maxRep > 0).map((c) => c.name);
  if (floats.length === 1) return floats[0]!;
  throw new Error(`${where}: ${floats.length === 0
    ? `no column of float vectors (columns: ${leaves.map((c) => c.name).join(", ") || "none readable"})`
    : `several columns of float vectors (${floats.join(", ")}); choose one with --tensor`}`);
}

/** Whether the files' first holds a column of integers by this name (token ids). */
export function hasIntColumn(file: ParquetFile, name: string): boolean {
  return topLevelLeaves(file.meta.schema).some((c) => c.name === name && c.kind === "int");
}

/**
 * The top-level columns that are a numeric leaf, alone or inside lists (groups of one child
 * each, down to it): what activations and token ids are stored as.
 */
function topLevelLeaves(schema: SchemaElement[]): LeafColumn[] {
  const out: LeafColumn[] = [];
  let at = 1;
  for (let c = 0; c < (schema[0]?.num_children ?? 0) && at < schema.length; c++) {
    const name = schema[at]!.name;
    const path: string[] = [];
    let maxRep = 0;
    let maxDef = 0;
    let i = at;
    let single = true;
    for (;;) {
      const e = schema[i]!;
      path.push(e.name);
      if (e.repetition_type === "REPEATED") maxRep++;
      if (e.repetition_type !== "REQUIRED") maxDef++;
      if (!e.num_children) break;
      if (e.num_children !== 1 || i + 1 >= schema.length) {
        single = false;
        break;
      }
      i++;
    }
    const leaf = single ? leafType(schema[i]!) : null;
    if (leaf) out.push({ name, kind: leaf === "INT32" || leaf === "INT64" ? "int" : "float", path, layout: { leaf, maxRep, maxDef } });
    at = skipElement(schema, at);
  }
  return out;
}

function leafType(e: SchemaElement): ParquetLeaf | null {
  if (e.num_children) return null;
  if (e.type === "FLOAT" || e.type === "DOUBLE" || e.type === "INT32" || e.type === "INT64") return e.type;
  if (e.type === "FIXED_LEN_BYTE_ARRAY" && e.type_length === 2 && e.logical_type?.type === "FLOAT16") return "FLOAT16";
  return null;
}

/** Where the next sibling of schema element `i` starts, past everything nested under it. */
function skipElement(schema: SchemaElement[], i: number): number {
  let next = i + 1;
  for (let c = 0; c < (schema[i]?.num_children ?? 0); c++) next = skipElement(schema, next);
  return next;
}

function describeLeaf(c: LeafColumn): string {
  return `${"list<".repeat(c.layout.maxRep)}${c.layout.leaf}${">".repeat(c.layout.maxRep)}`;
}

function fail(path: string, why: string): never {
  throw new Error(`${path}: ${why}`);
}
