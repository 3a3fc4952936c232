/**
 * Apache Arrow IPC files: the streaming format, which Hugging Face `datasets` writes when it
 * saves a dataset to disk (data-00000-of-00001.arrow, how SAELens caches activations), and
 * the file format (Feather v2, `.arrow` from pyarrow.ipc.new_file). This reads the schema and
 * where each record batch's buffers lie, through a ByteSource, so files of many GB never
 * load whole; what the buffers mean is the caller's business (data/arrow-activations.ts).
 *
 * A stream is a sequence of messages, each a FlatBuffers `Message` (flatbuffer.ts) after a
 * 0xFFFFFFFF continuation marker and its length (old writers: the length alone), followed by
 * a body of `bodyLength` bytes; a zero length ends it. The first message is the Schema, then
 * RecordBatch (and DictionaryBatch) messages. The file format wraps the same messages in
 * "ARROW1" magic and ends with a Footer listing where each batch starts.
 */
import type { ByteSource, Fail } from "./byte-source.js";
import { FlatTable } from "./flatbuffer.js";

/** Arrow's Type union, by tag (Schema.fbs). */
export const TYPE_NAMES = ["NONE", "Null", "Int", "FloatingPoint", "Binary", "Utf8", "Bool", "Decimal", "Date", "Time", "Timestamp",
  "Interval", "List", "Struct", "Union", "FixedSizeBinary", "FixedSizeList", "Map", "Duration", "LargeBinary", "LargeUtf8",
  "LargeList", "RunEndEncoded", "BinaryView", "Utf8View", "ListView", "LargeListView"] as const;

export type ArrowTypeName = (typeof TYPE_NAMES)[number];

export interface ArrowType {
  name: ArrowTypeName;
  /** FloatingPoint: 16, 32 or 64; Int: its width. */
  bitWidth?: number;
  /** Int: signed or not. */
  signed?: boolean;
  /** FixedSizeList: elements per list. */
  listSize?: number;
  /** Union: "sparse" or "dense". */
  unionMode?: "sparse" | "dense";
}

export interface ArrowField {
  name: string;
  type: ArrowType;
  nullable: boolean;
  children: ArrowField[];
  /** Key-value metadata (ARROW:extension:name, Hugging Face's feature descriptions, ...). */
  metadata: Record<string, string>;
  /** Dictionary-encoded: a batch holds integer indices into values sent separately. */
  dictionary: boolean;
}

/** Where, in a record batch, a top-level column's field nodes and buffers begin. */
export interface ColumnStart {
  node: number;
  buffer: number;
}

export interface RecordBatch {
  rows: number;
  /** File position of the batch's body, from which its buffer offsets count. */
  body: number;
  bodyLength: number;
  /** Per field, in depth-first order: its length and null count in this batch. */
  nodes: Array<{ length: number; nullCount: number }>;
  buffers: Array<{ offset: number; length: number }>;
  compressed: boolean;
}

const CONTINUATION = -1;
const FILE_MAGIC = "ARROW1";
/** Messages hold metadata only; anything larger than this is corruption, not a schema. */
const MAX_METADATA = 1 << 26;
/** Nested types deeper than this are corrupt (or hostile: a field that contains itself). */
const MAX_DEPTH = 64;
const HEADER_SCHEMA = 1;
const HEADER_DICTIONARY_BATCH = 2;
const HEADER_RECORD_BATCH = 3;
/** MetadataVersion V4 (Arrow 0.8+); V5 (Arrow 1.0+) changed nothing a reader of these types sees. */
const OLDEST_VERSION = 3;

export class ArrowIpcFile {
  readonly fields: ArrowField[];
  readonly metadata: Record<string, string>;
  readonly batches: RecordBatch[];
  /** Per top-level column, where its nodes and buffers start; null past a type whose buffers cannot be counted. */
  readonly columnStarts: Array<ColumnStart | null>;
  readonly rows: number;

  private constructor(readonly source: ByteSource, readonly where: string, schema: FlatTable, batches: RecordBatch[], private readonly fail: Fail) {
    if (schema.int16(0) !== 0) fail("big-endian Arrow data is not supported");
    this.fields = schema.tables(1).map((f) => readField(f, fail, 0));
    this.metadata = readMetadata(schema.tables(2));
    this.batches = batches;
    this.columnStarts = columnStarts(this.fields);
    this.rows = batches.reduce((a, b) => a + b.rows, 0);
  }

  static open(source: ByteSource, where: string): ArrowIpcFile {
    const fail: Fail = (why) => { throw new Error(`${where}: not a usable Arrow file: ${why}`); };
    const head = source.read(0, Math.min(source.size, 8), fail);
    if (head.length >= 6 && new TextDecoder().decode(head.subarray(0, 6)) === FILE_MAGIC) return ArrowIpcFile.openFileFormat(source, where, fail);
    let schema: FlatTable | null = null;
    const batches: RecordBatch[] = [];
    for (let at = 0; ;) {
      const message = readMessage(source, at, fail);
      if (message === null) break;
      at = message.body + message.bodyLength;
      const kind = message.table.uint8(1);
      if (kind === HEADER_SCHEMA) {
        if (schema) fail("a second schema in the stream");
        schema = message.header;
      } else if (kind === HEADER_RECORD_BATCH) {
        if (!schema) fail("a record batch before the schema");
        batches.push(readRecordBatch(message.header, message.body, message.bodyLength, fail));
      } else if (kind !== HEADER_DICTIONARY_BATCH) {
        fail(`unexpected message type ${kind} (tensors are not tables)`);
      }
    }
    if (!schema) fail("no schema (an empty or truncated file)");
    return new ArrowIpcFile(source, where, schema!, batches, fail);
  }

  /** The file format: magic, the stream's messages, a Footer, its length and the magic again. */
  private static openFileFormat(source: ByteSource, where: string, fail: Fail): ArrowIpcFile {
    if (source.size < 18) fail("too short for the Arrow file format");
    const tail = source.read(source.size - 10, 10, fail);
    if (new TextDecoder().decode(tail.subarray(4)) !== FILE_MAGIC) fail("the file format's closing magic is missing (a truncated file?)");
    const footerLength = new DataView(tail.buffer, tail.byteOffset).getInt32(0, true);
    if (footerLength <= 0 || footerLength > Math.min(MAX_METADATA, source.size - 18)) fail(`footer of ${footerLength} bytes`);
    const footer = FlatTable.root(source.read(source.size - 10 - footerLength, footerLength, fail), fail);
    const schema = footer.table(1) ?? fail("the footer has no schema");
    const blocks = footer.structs(3, 24, (i64, i32) => ({ offset: i64(0), metaLength: i32(8), bodyLength: i64(16) }));
    const batches = blocks.map((b) => {
      const message = readMessage(source, b.offset, fail);
      if (message === null || message.table.uint8(1) !== HEADER_RECORD_BATCH) fail(`the footer points at offset ${b.offset}, where no record batch is`);
      if (message!.bodyLength !== b.bodyLength) fail(`record batch at ${b.offset}: body of ${message!.bodyLength} bytes, the footer says ${b.bodyLength}`);
      return readRecordBatch(message!.header, message!.body, message!.bodyLength, fail);
    });
    return new ArrowIpcFile(source, where, schema, batches, fail);
  }

  /** Bytes [start, start + length) of buffer `index` of a batch, checked to lie inside it. */
  readBuffer(batch: RecordBatch, index: number, start: number, length: number): Uint8Array {
    return this.source.read(this.bufferPosition(batch, index, start, length), length, this.fail);
  }

  /** The file position of byte `start` of buffer `index`, after checking `length` bytes from there lie in it. */
  bufferPosition(batch: RecordBatch, index: number, start: number, length: number): number {
    if (batch.compressed) this.fail("compressed record batches are not supported (write the file without compression)");
    const buffer = batch.buffers[index] ?? this.fail(`a record batch has ${batch.buffers.length} buffers, no buffer ${index}`);
    if (start < 0 || length < 0 || start + length > buffer.length) {
      this.fail(`bytes ${start}..${start + length} of a ${buffer.length}-byte buffer (offsets out of range)`);
    }
    return batch.body + buffer.offset + start;
  }
}

interface Message {
  table: FlatTable;
  header: FlatTable;
  body: number;
  bodyLength: number;
}

/** The message at `at`, or null at the end of the stream (an end marker, or the end of the file). */
function readMessage(source: ByteSource, at: number, fail: Fail): Message | null {
  if (at + 4 > source.size) return null;
  const prefix = source.read(at, Math.min(8, source.size - at), fail);
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  let length = view.getInt32(0, true);
  let start = at + 4;
  if (length === CONTINUATION) {
    if (prefix.length < 8) fail(`the message at ${at} is cut off`);
    length = view.getInt32(4, true);
    start = at + 8;
  }
  if (length === 0) return null;
  if (length < 0 || length > MAX_METADATA || start + length > source.size) fail(`message at ${at} claims ${length} bytes of metadata; the file has ${source.size - start} left`);
  const table = FlatTable.root(source.read(start, length, fail), fail);
  const version = table.int16(0);
  if (version < OLDEST_VERSION) fail(`metadata version V${version + 1} is older than Arrow 0.8 (V4); rewrite the file with a current pyarrow`);
  const header = table.table(2) ?? fail(`message at ${at} has no header`);
  const bodyLength = table.int64(3);
  const body = start + length;
  if (bodyLength < 0 || body + bodyLength > source.size) fail(`message at ${at} has a body of ${bodyLength} bytes, past the end of the file (truncated?)`);
  return { table, header, body, bodyLength };
}

function readRecordBatch(t: FlatTable, body: number, bodyLength: number, fail: Fail): RecordBatch {
  const rows = t.int64(0);
  const nodes = t.structs(1, 16, (i64) => ({ length: i64(0), nullCount: i64(8) }));
  const buffers = t.structs(2, 16, (i64) => ({ offset: i64(0), length: i64(8) }));
  for (const b of buffers) {
    if (b.offset < 0 || b.length < 0 || b.offset + b.length > bodyLength) fail(`a buffer (${b.offset} + ${b.length}) lies outside its batch's ${bodyLength}-byte body`);
  }
  if (rows < 0) fail(`a record batch of ${rows} rows`);
  return { rows, body, bodyLength, nodes, buffers, compressed: t.table(3) !== null };
}

function readField(f: FlatTable, fail: Fail, depth: number): ArrowField {
  if (depth > MAX_DEPTH) fail(`types nested more than ${MAX_DEPTH} deep`);
  const tag = f.uint8(2);
  const name = TYPE_NAMES[tag] ?? fail(`unknown type tag ${tag}`);
  const t = f.table(3);
  const type: ArrowType = { name };
  if (name === "Int") {
    type.bitWidth = t?.int32(0) ?? 0;
    type.signed = t?.bool(1) ?? false;
  }
  if (name === "FloatingPoint") type.bitWidth = [16, 32, 64][t?.int16(0) ?? -1] ?? fail(`unknown float precision ${t?.int16(0)}`);
  if (name === "FixedSizeList") type.listSize = t?.int32(0) ?? fail("a FixedSizeList without its size");
  if (name === "Union") type.unionMode = t?.int16(0) === 1 ? "dense" : "sparse";
  return {
    name: f.string(0) ?? "",
    type,
    nullable: f.bool(1),
    children: f.tables(5).map((c) => readField(c, fail, depth + 1)),
    metadata: readMetadata(f.tables(6)),
    dictionary: f.table(4) !== null,
  };
}

function readMetadata(pairs: FlatTable[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of pairs) out[kv.string(0) ?? ""] = kv.string(1) ?? "";
  return out;
}

/**
 * Buffers a field's own node has in a record batch (its children's come after), per the
 * columnar format: validity first for all but Null, Union and RunEndEncoded; then offsets
 * and/or values. Null where it varies by batch (the view types).
 */
function ownBuffers(field: ArrowField): number | null {
  if (field.dictionary) return 2; // validity + integer indices
  switch (field.type.name) {
    case "Null": case "RunEndEncoded": return 0;
    case "Struct": case "FixedSizeList": return 1;
    case "Union": return field.type.unionMode === "dense" ? 2 : 1;
    case "Binary": case "Utf8": case "LargeBinary": case "LargeUtf8": case "ListView": case "LargeListView": return 3;
    case "BinaryView": case "Utf8View": case "NONE": return null;
    default: return 2; // fixed-width values, and List / LargeList / Map (validity + offsets)
  }
}

/** Where each top-level column starts, walking fields depth-first as batches lay them out. */
function columnStarts(fields: ArrowField[]): Array<ColumnStart | null> {
  const out: Array<ColumnStart | null> = [];
  let at: ColumnStart | null = { node: 0, buffer: 0 };
  const walk = (f: ArrowField): void => {
    if (at === null) return;
    const own = ownBuffers(f);
    if (own === null) {
      at = null;
      return;
    }
    at = { node: at.node + 1, buffer: at.buffer + own };
    if (!f.dictionary) for (const c of f.children) walk(c);
  };
  for (const f of fields) {
    out.push(at);
    walk(f);
  }
  return out;
}
