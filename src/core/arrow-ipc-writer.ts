/**
 * Writing Apache Arrow's IPC streaming format, the one Hugging Face `datasets` saves a
 * dataset in (and so how SAELens caches activations): the Schema message, then one
 * RecordBatch message per batch, then the end-of-stream marker. arrow-ipc.ts reads it back.
 *
 * Only what a cache of activations needs is written: columns in which every row has the same
 * shape, nested List / FixedSizeList levels around Int or FloatingPoint values, no nulls.
 * Each message is yielded as separate byte chunks, so a batch's values go to the file
 * straight from the caller's array, never copied into one big buffer.
 *
 * An encapsulated message is: 0xFFFFFFFF, the metadata's length (int32, padded so the body
 * starts on a multiple of 8), the FlatBuffers `Message`, then the body: each buffer at a
 * multiple of 8 bytes from the body's start.
 */
import { type ArrowField, TYPE_NAMES } from "./arrow-ipc.js";
import { buildFlatBuffer, flat, type FlatTableValue } from "./flatbuffer-builder.js";

/** One column of a record batch: every row shaped `dims` (one entry per list level, outermost first). */
export interface DenseColumn {
  field: ArrowField;
  dims: number[];
  /** The leaf values of all the batch's rows, row-major, little-endian. */
  values: Uint8Array;
}

const METADATA_V5 = 4;
const HEADER_SCHEMA = 1;
const HEADER_RECORD_BATCH = 3;
const ALIGN = 8;

/** The end-of-stream marker: a continuation and a zero metadata length. */
export const END_OF_STREAM = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** A whole stream: the schema, every batch's message, the end marker. */
export function* arrowStream(fields: ArrowField[], metadata: Record<string, string>,
  batches: Iterable<{ rows: number; columns: DenseColumn[] }>): Generator<Uint8Array> {
  yield schemaMessage(fields, metadata);
  for (const b of batches) {
    if (b.columns.length !== fields.length || b.columns.some((c, i) => c.field !== fields[i])) {
      throw new Error("a record batch's columns must be the schema's fields, in order");
    }
    yield* recordBatchMessage(b.rows, b.columns);
  }
  yield END_OF_STREAM;
}

export function schemaMessage(fields: ArrowField[], metadata: Record<string, string>): Uint8Array {
  const schema = flat.table(flat.i16(0) /* little-endian */, flat.tables(fields.map(fieldTable)), keyValues(metadata));
  return encapsulate(message(HEADER_SCHEMA, schema, 0));
}

/** One record batch's message: its metadata, then each of its buffers and the padding between them. */
export function* recordBatchMessage(rows: number, columns: DenseColumn[]): Generator<Uint8Array> {
  const nodes: number[][] = [];
  const buffers: Uint8Array[] = [];
  for (const c of columns) layOut(c, rows, nodes, buffers);
  const places: number[][] = [];
  let bodyLength = 0;
  for (const b of buffers) {
    places.push([bodyLength, b.length]);
    bodyLength += padded(b.length);
  }
  const batch = flat.table(flat.i64(rows), flat.int64Structs(nodes, 2), flat.int64Structs(places, 2));
  yield encapsulate(message(HEADER_RECORD_BATCH, batch, bodyLength));
  for (const b of buffers) {
    if (b.length > 0) yield b;
    if (padded(b.length) > b.length) yield new Uint8Array(padded(b.length) - b.length);
  }
}

/**
 * A dense column's field nodes and buffers, depth-first as the format orders them: per list
 * level an empty validity buffer (no nulls) and, for a variable List, its int32 offsets; then
 * the values' validity and the values.
 */
function layOut(c: DenseColumn, rows: number, nodes: number[][], buffers: Uint8Array[]): void {
  let field = c.field;
  let length = rows;
  for (const [level, dim] of c.dims.entries()) {
    const t = field.type;
    if (t.name !== "List" && t.name !== "FixedSizeList") throw new Error(`${c.field.name}: level ${level} is ${t.name}, not a list`);
    if (t.name === "FixedSizeList" && t.listSize !== dim) throw new Error(`${c.field.name}: fixed lists of ${t.listSize}, rows of ${dim}`);
    if (field.children.length !== 1) throw new Error(`${c.field.name}: a list needs exactly one child field`);
    nodes.push([length, 0]);
    buffers.push(new Uint8Array(0));
    if (t.name === "List") {
      if (length * dim > 0x7fffffff) throw new Error(`${c.field.name}: ${length * dim} values overflow a List's int32 offsets; write fewer rows per batch`);
      const offsets = new Int32Array(length + 1);
      for (let i = 0; i <= length; i++) offsets[i] = i * dim;
      buffers.push(new Uint8Array(offsets.buffer));
    }
    length *= dim;
    field = field.children[0]!;
  }
  const leaf = field.type;
  if (leaf.name !== "Int" && leaf.name !== "FloatingPoint") throw new Error(`${c.field.name}: values of type ${leaf.name} cannot be written`);
  const expected = length * (leaf.bitWidth! / 8);
  if (c.values.length !== expected) throw new Error(`${c.field.name}: ${c.values.length} bytes of values, ${rows} rows of [${c.dims.join(", ")}] need ${expected}`);
  nodes.push([length, 0]);
  buffers.push(new Uint8Array(0), c.values);
}

function message(headerType: number, header: FlatTableValue, bodyLength: number): Uint8Array {
  return buildFlatBuffer(flat.table(flat.i16(METADATA_V5), flat.u8(headerType), header, flat.i64(bodyLength)));
}

/** Continuation marker, padded metadata length, the metadata and its padding. */
function encapsulate(metadata: Uint8Array): Uint8Array {
  const length = padded(8 + metadata.length) - 8;
  const out = new Uint8Array(8 + length);
  const view = new DataView(out.buffer);
  view.setInt32(0, -1, true);
  view.setInt32(4, length, true);
  out.set(metadata, 8);
  return out;
}

function fieldTable(f: ArrowField): FlatTableValue {
  if (f.dictionary) throw new Error(`${f.name}: dictionary-encoded fields cannot be written`);
  const tag = TYPE_NAMES.indexOf(f.type.name);
  return flat.table(
    flat.string(f.name),
    flat.bool(f.nullable),
    flat.u8(tag),
    typeTable(f),
    undefined, // no dictionary
    flat.tables(f.children.map(fieldTable)), // present even when empty: readers require the vector
    keyValues(f.metadata),
  );
}

function typeTable(f: ArrowField): FlatTableValue {
  const t = f.type;
  switch (t.name) {
    case "Int":
      if (![8, 16, 32, 64].includes(t.bitWidth ?? 0)) throw new Error(`${f.name}: no ${t.bitWidth}-bit integers`);
      return flat.table(flat.i32(t.bitWidth!), flat.bool(t.signed === true));
    case "FloatingPoint": {
      const precision = [16, 32, 64].indexOf(t.bitWidth ?? 0);
      if (precision < 0) throw new Error(`${f.name}: no ${t.bitWidth}-bit floats`);
      return flat.table(flat.i16(precision));
    }
    case "List":
      return flat.table();
    case "FixedSizeList":
      if (!Number.isSafeInteger(t.listSize) || t.listSize! < 0) throw new Error(`${f.name}: a fixed list of ${t.listSize}`);
      return flat.table(flat.i32(t.listSize!));
    default:
      throw new Error(`${f.name}: writing ${t.name} columns is not supported`);
  }
}

function keyValues(metadata: Record<string, string>): ReturnType<typeof flat.tables> | undefined {
  const pairs = Object.entries(metadata);
  return pairs.length === 0 ? undefined : flat.tables(pairs.map(([k, v]) => flat.table(flat.string(k), flat.string(v))));
}

function padded(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
