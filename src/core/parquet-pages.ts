/**
 * The pages of one Parquet column chunk, decoded synchronously: what reading activations
 * from Parquet (data/parquet-activations.ts) needs, a numeric leaf column — floats (32, 64
 * or 16-bit) or integers — usually nested in lists, as Hugging Face `datasets` writes an
 * Array2D or a Sequence. hyparquet reads whole files asynchronously and builds a JS array per
 * list; a training stream wants one row group's values in a Float32Array, now, so the pages
 * are decoded here, into typed arrays:
 *
 *   page header      thrift compact (thrift-compact.ts)
 *   data page V1     [rep levels][def levels][values], all compressed together; each level
 *                    block a 4-byte length then the RLE/bit-packed hybrid
 *   data page V2     rep and def levels uncompressed (lengths in the header), then values
 *   values           PLAIN, dictionary indices (PLAIN_DICTIONARY / RLE_DICTIONARY into the
 *                    chunk's dictionary page), BYTE_STREAM_SPLIT, DELTA_BINARY_PACKED (ints)
 *
 * which are the encodings pyarrow, DuckDB and hyparquet-writer use for such columns.
 * Compression is the caller's table of codecs (hyparquet-compressors). Everything read
 * from the file is bounds-checked: a page may not claim more values than the chunk has
 * left, nor more bytes than follow it.
 */
import { ByteCursor } from "./byte-cursor.js";
import { decodeFloats } from "./dtype.js";
import { intField, structField, type ThriftStruct, ThriftReader } from "./thrift-compact.js";

/** A leaf's physical type as read: FLOAT16 is FIXED_LEN_BYTE_ARRAY(2) with that logical type. */
export type ParquetLeaf = "FLOAT" | "DOUBLE" | "FLOAT16" | "INT32" | "INT64";

export interface ChunkLayout {
  leaf: ParquetLeaf;
  /** The chunk's compression codec, as hyparquet names it (UNCOMPRESSED, SNAPPY, ZSTD, ...). */
  codec: string;
  /** Highest repetition level (one per list around the leaf) and definition level. */
  maxRep: number;
  maxDef: number;
}

export type Decompress = (input: Uint8Array, outputLength: number) => Uint8Array;

/** One data page: a level per entry (null where the level is always 0), and the values present. */
export interface DataPage {
  /** Entries in the page: one per value slot, present or not. */
  count: number;
  rep: Uint8Array | null;
  def: Uint8Array | null;
  /** The values of the entries whose def is maxDef, in order: float32 for float leaves, int32 for integer ones. */
  values: Float32Array | Int32Array;
}

const enum PageType { Data = 0, Index = 1, Dictionary = 2, DataV2 = 3 }
const enum Encoding { Plain = 0, PlainDictionary = 2, Rle = 3, DeltaBinaryPacked = 5, RleDictionary = 8, ByteStreamSplit = 9 }

const ENCODING_NAMES: Record<number, string> = {
  0: "PLAIN", 2: "PLAIN_DICTIONARY", 3: "RLE", 4: "BIT_PACKED", 5: "DELTA_BINARY_PACKED", 6: "DELTA_LENGTH_BYTE_ARRAY",
  7: "DELTA_BYTE_ARRAY", 8: "RLE_DICTIONARY", 9: "BYTE_STREAM_SPLIT",
};

const LEAF_BYTES: Record<ParquetLeaf, number> = { FLOAT: 4, DOUBLE: 8, FLOAT16: 2, INT32: 4, INT64: 8 };

/**
 * The data pages of a column chunk (`bytes`: from its first page to its end), in order.
 * `entries` is how many the chunk holds in all (its metadata's num_values): pages claiming
 * more are refused before anything is allocated for them.
 */
export function* columnPages(bytes: Uint8Array, layout: ChunkLayout, codecs: Record<string, Decompress>, entries: number): Generator<DataPage> {
  let offset = 0;
  let left = entries;
  let dictionary: Float32Array | Int32Array | null = null;
  while (offset < bytes.length && left > 0) {
    const reader = new ThriftReader(bytes, offset);
    const header = reader.readStruct();
    offset = reader.offset;
    const type = intField(header, 1, "page type");
    const uncompressedSize = intField(header, 2, "uncompressed page size");
    const compressedSize = intField(header, 3, "compressed page size");
    if (compressedSize < 0 || compressedSize > bytes.length - offset) throw new Error(`a page of ${compressedSize} bytes where ${bytes.length - offset} are left in the column chunk`);
    if (uncompressedSize < 0 || uncompressedSize > 1 << 30) throw new Error(`a page of ${uncompressedSize} bytes uncompressed`);
    const body = bytes.subarray(offset, offset + compressedSize);
    offset += compressedSize;
    if (type === PageType.Dictionary) {
      const h = structField(header, 7) ?? fail("a dictionary page without its header");
      const n = intField(h, 1, "dictionary size");
      const encoding = intField(h, 2, "dictionary encoding");
      if (encoding !== Encoding.Plain && encoding !== Encoding.PlainDictionary) throw new Error(`a dictionary encoded as ${encodingName(encoding)}`);
      const plain = decompress(body, uncompressedSize, layout.codec, codecs);
      if (n < 0 || n * LEAF_BYTES[layout.leaf] > plain.length) throw new Error(`a dictionary of ${n} values in ${plain.length} bytes`);
      dictionary = plainValues(plain, layout.leaf, n);
      continue;
    }
    if (type === PageType.Index) continue;
    const page = type === PageType.Data ? dataPageV1(header, body, uncompressedSize, layout, codecs, left, dictionary)
      : type === PageType.DataV2 ? dataPageV2(header, body, uncompressedSize, layout, codecs, left, dictionary)
        : fail(`unknown page type ${type}`);
    left -= page.count;
    yield page;
  }
  if (left > 0) throw new Error(`the column chunk ends ${left} entries short of the ${entries} its metadata counts`);
}

function dataPageV1(header: ThriftStruct, body: Uint8Array, uncompressedSize: number, layout: ChunkLayout,
  codecs: Record<string, Decompress>, left: number, dictionary: Float32Array | Int32Array | null): DataPage {
  const h = structField(header, 5) ?? fail("a data page without its header");
  const count = pageCount(intField(h, 1, "page value count"), left);
  const encoding = intField(h, 2, "page encoding");
  const page = decompress(body, uncompressedSize, layout.codec, codecs);
  let at = 0;
  // Each level block: its byte length, then the hybrid-encoded levels.
  const levels = (max: number, which: string, levelEncoding: number): Uint8Array | null => {
    if (max === 0) return null;
    if (levelEncoding !== Encoding.Rle) throw new Error(`${which} levels encoded as ${encodingName(levelEncoding)} (only RLE is read)`);
    if (at + 4 > page.length) throw new Error(`the page ends before its ${which} levels`);
    const length = new DataView(page.buffer, page.byteOffset + at, 4).getUint32(0, true);
    at += 4;
    if (length > page.length - at) throw new Error(`${which} levels of ${length} bytes where ${page.length - at} are left`);
    const out = hybridLevels(page.subarray(at, at + length), max, count, which);
    at += length;
    return out;
  };
  const rep = levels(layout.maxRep, "repetition", intField(h, 4, "repetition level encoding", Encoding.Rle));
  const def = levels(layout.maxDef, "definition", intField(h, 3, "definition level encoding", Encoding.Rle));
  const values = pageValues(page.subarray(at), encoding, layout.leaf, present(def, layout.maxDef, count), dictionary);
  return { count, rep, def, values };
}

function dataPageV2(header: ThriftStruct, body: Uint8Array, uncompressedSize: number, layout: ChunkLayout,
  codecs: Record<string, Decompress>, left: number, dictionary: Float32Array | Int32Array | null): DataPage {
  const h = structField(header, 8) ?? fail("a V2 data page without its header");
  const count = pageCount(intField(h, 1, "page value count"), left);
  const encoding = intField(h, 4, "page encoding");
  const defBytes = intField(h, 5, "definition levels length");
  const repBytes = intField(h, 6, "repetition levels length");
  const compressed = h.get(7) !== false;
  if (repBytes < 0 || defBytes < 0 || repBytes + defBytes > body.length) throw new Error(`levels of ${repBytes} + ${defBytes} bytes in a page of ${body.length}`);
  const rep = layout.maxRep > 0 ? hybridLevels(body.subarray(0, repBytes), layout.maxRep, count, "repetition") : null;
  const def = layout.maxDef > 0 ? hybridLevels(body.subarray(repBytes, repBytes + defBytes), layout.maxDef, count, "definition") : null;
  const rest = body.subarray(repBytes + defBytes);
  const valueBytes = compressed ? decompress(rest, uncompressedSize - repBytes - defBytes, layout.codec, codecs) : rest;
  const values = pageValues(valueBytes, encoding, layout.leaf, present(def, layout.maxDef, count), dictionary);
  return { count, rep, def, values };
}

function pageCount(count: number, left: number): number {
  if (count < 0 || count > left) throw new Error(`a page of ${count} entries where the column chunk has ${left} left`);
  return count;
}

/** Entries whose definition level says the value is there. */
function present(def: Uint8Array | null, maxDef: number, count: number): number {
  if (!def) return count;
  let n = 0;
  for (let i = 0; i < count; i++) if (def[i] === maxDef) n++;
  return n;
}

function decompress(input: Uint8Array, size: number, codec: string, codecs: Record<string, Decompress>): Uint8Array {
  if (codec === "UNCOMPRESSED") return input;
  const inflate = codecs[codec] ?? fail(`compression ${codec} is not supported`);
  let out: Uint8Array;
  try {
    out = inflate(input, size);
  } catch (err) {
    throw new Error(`corrupt ${codec} data (${(err as Error).message})`);
  }
  if (out.length !== size) throw new Error(`${codec} data inflated to ${out.length} bytes, the page header says ${size}`);
  return out;
}

function pageValues(bytes: Uint8Array, encoding: number, leaf: ParquetLeaf, n: number, dictionary: Float32Array | Int32Array | null): Float32Array | Int32Array {
  switch (encoding) {
    case Encoding.Plain:
      if (n * LEAF_BYTES[leaf] > bytes.length) throw new Error(`${n} ${leaf} values in ${bytes.length} bytes`);
      return plainValues(bytes, leaf, n);
    case Encoding.PlainDictionary:
    case Encoding.RleDictionary: {
      if (!dictionary) throw new Error("dictionary indices, but no dictionary page before them");
      if (n === 0) return dictionary.subarray(0, 0);
      if (bytes.length < 1) throw new Error("dictionary indices without their bit width");
      const width = bytes[0]!;
      if (width > 32) throw new Error(`dictionary indices of ${width} bits`);
      const indices = new Int32Array(n);
      decodeHybrid(bytes.subarray(1), width, indices);
      const out = dictionary instanceof Float32Array ? new Float32Array(n) : new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const j = indices[i]!;
        if (j < 0 || j >= dictionary.length) throw new Error(`dictionary index ${j >>> 0} of a dictionary of ${dictionary.length}`);
        out[i] = dictionary[j]!;
      }
      return out;
    }
    case Encoding.ByteStreamSplit:
      return byteStreamSplit(bytes, leaf, n);
    case Encoding.DeltaBinaryPacked:
      if (leaf !== "INT32" && leaf !== "INT64") throw new Error(`DELTA_BINARY_PACKED ${leaf} values`);
      return deltaBinaryPacked(bytes, n);
    default:
      throw new Error(`values encoded as ${encodingName(encoding)}, which is not read here`);
  }
}

/** n PLAIN values: little-endian floats to float32, integers to int32 (refusing any outside its range). */
function plainValues(bytes: Uint8Array, leaf: ParquetLeaf, n: number): Float32Array | Int32Array {
  switch (leaf) {
    case "FLOAT": return decodeFloats(bytes, "F32", n);
    case "DOUBLE": return decodeFloats(bytes, "F64", n);
    case "FLOAT16": return decodeFloats(bytes, "F16", n);
    case "INT32": {
      const out = new Int32Array(n);
      new Uint8Array(out.buffer).set(bytes.subarray(0, 4 * n));
      return out;
    }
    case "INT64": {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = view.getUint32(8 * i, true);
        const hi = view.getInt32(8 * i + 4, true);
        // In int32 range exactly when the high word is the low word's sign extension.
        if (hi !== (lo >= 0x80000000 ? -1 : 0)) throw new Error(`an INT64 value ${(BigInt(hi) << 32n) + BigInt(lo)} outside the int32 range`);
        out[i] = lo | 0;
      }
      return out;
    }
  }
}

/** BYTE_STREAM_SPLIT: byte k of value i sits at k * n + i; gathered back, then read as PLAIN. */
function byteStreamSplit(bytes: Uint8Array, leaf: ParquetLeaf, n: number): Float32Array | Int32Array {
  const width = LEAF_BYTES[leaf];
  if (n * width > bytes.length) throw new Error(`${n} BYTE_STREAM_SPLIT ${leaf} values in ${bytes.length} bytes`);
  const joined = new Uint8Array(n * width);
  for (let k = 0; k < width; k++) {
    const stream = k * n;
    for (let i = 0; i < n; i++) joined[i * width + k] = bytes[stream + i]!;
  }
  return plainValues(joined, leaf, n);
}

/**
 * The repetition level of each value of a row of nested lists of shape `dims`: 0 for its
 * first value, then at each value the outermost list level whose element starts there
 * (dims [2, 3]: 0 2 2 1 2 2). What a reader checks every row against and a writer writes.
 */
export function rowRepetitionLevels(dims: number[]): Uint8Array {
  const perRow = dims.reduce((a, b) => a * b, 1);
  // Values in one element at each level: strides[0] = perRow, strides[dims.length] = 1.
  const strides = dims.map((_, i) => dims.slice(i).reduce((a, b) => a * b, 1)).concat([1]);
  const levels = new Uint8Array(perRow);
  for (let q = 1; q < perRow; q++) {
    let level = 1;
    while (q % strides[level]! !== 0) level++;
    levels[q] = level;
  }
  return levels;
}

/** `count` levels of at most `max`, hybrid-encoded at the bit width that `max` needs. */
function hybridLevels(bytes: Uint8Array, max: number, count: number, which: string): Uint8Array {
  const out = new Uint8Array(count);
  decodeHybrid(bytes, 32 - Math.clz32(max), out);
  for (let i = 0; i < count; i++) if (out[i]! > max) throw new Error(`a ${which} level ${out[i]} above the column's ${max}`);
  return out;
}

/**
 * The RLE / bit-packed hybrid: runs, each headed by a varint whose low bit says which —
 * 1: (header >> 1) groups of 8 values bit-packed LSB first; 0: one value, repeated
 * (header >> 1) times, in ceil(width / 8) little-endian bytes. Fills `out` exactly.
 */
export function decodeHybrid(bytes: Uint8Array, width: number, out: Uint8Array | Int32Array): void {
  const reader = new ByteCursor(bytes);
  const valueBytes = (width + 7) >> 3;
  let filled = 0;
  while (filled < out.length) {
    const header = reader.varint();
    if (header & 1) {
      const values = (header >>> 1) * 8;
      const byteLength = (header >>> 1) * width;
      const packed = reader.take(byteLength, "bit-packed run");
      const n = Math.min(values, out.length - filled);
      unpackBits(packed, width, n, out, filled);
      filled += n;
    } else {
      const run = header >>> 1;
      if (run === 0) throw new Error("an empty RLE run");
      const raw = reader.take(valueBytes, "RLE value");
      let value = 0;
      for (let b = valueBytes - 1; b >= 0; b--) value = value * 256 + raw[b]!;
      const n = Math.min(run, out.length - filled);
      out.fill(value, filled, filled + n);
      filled += n;
    }
  }
}

/** n values of `width` bits, LSB first, into out[at ..]. */
function unpackBits(packed: Uint8Array, width: number, n: number, out: Uint8Array | Int32Array, at: number): void {
  if (width === 0) {
    out.fill(0, at, at + n);
    return;
  }
  let bit = 0;
  for (let i = 0; i < n; i++) {
    let value = 0;
    for (let got = 0; got < width;) {
      const byte = packed[bit >> 3]!;
      const offset = bit & 7;
      const take = Math.min(8 - offset, width - got);
      value += ((byte >> offset) & ((1 << take) - 1)) * 2 ** got;
      got += take;
      bit += take;
    }
    out[at + i] = value;
  }
}

/**
 * DELTA_BINARY_PACKED: a header (block size, miniblocks per block, value count, first value),
 * then blocks of a minimum delta and per-miniblock bit widths, each miniblock's deltas above
 * the minimum bit-packed. Values must stay in int32 (token ids do).
 */
function deltaBinaryPacked(bytes: Uint8Array, n: number): Int32Array {
  const reader = new ByteCursor(bytes);
  const blockSize = reader.varint();
  const miniblocks = reader.varint();
  const total = reader.varint();
  let value = reader.zigzag();
  if (blockSize <= 0 || blockSize % 128 !== 0 || miniblocks <= 0 || blockSize % miniblocks !== 0 || (blockSize / miniblocks) % 32 !== 0) {
    throw new Error(`a DELTA_BINARY_PACKED block of ${blockSize} values in ${miniblocks} miniblocks`);
  }
  if (total < n) throw new Error(`DELTA_BINARY_PACKED data of ${total} values where ${n} are needed`);
  const out = new Int32Array(n);
  const perMiniblock = blockSize / miniblocks;
  const deltas = new Int32Array(perMiniblock);
  const put = (i: number, v: number) => {
    if (v < -0x80000000 || v > 0x7fffffff) throw new Error(`a DELTA_BINARY_PACKED value ${v} outside the int32 range`);
    out[i] = v;
  };
  if (n > 0) put(0, value);
  let filled = 1;
  while (filled < n) {
    const minDelta = reader.zigzag();
    const widths = reader.take(miniblocks, "miniblock bit widths");
    for (let mb = 0; mb < miniblocks && filled < n; mb++) {
      const width = widths[mb]!;
      if (width > 32) throw new Error(`a miniblock of ${width}-bit deltas`);
      // Unsigned deltas of up to 32 bits: unpacked as numbers, not int32.
      const count = Math.min(perMiniblock, n - filled);
      // A miniblock's bytes are all there, except perhaps the last one's padding, which some
      // writers leave out.
      const full = (perMiniblock * width) / 8;
      const packed = reader.take(Math.max(Math.ceil((count * width) / 8), Math.min(full, reader.left)), "miniblock");
      unpackBits(packed, width, count, deltas, 0);
      for (let i = 0; i < count; i++) {
        value += minDelta + (deltas[i]! >>> 0);
        put(filled++, value);
      }
    }
  }
  return out;
}

function encodingName(encoding: number): string {
  return ENCODING_NAMES[encoding] ?? `encoding ${encoding}`;
}

function fail(why: string): never {
  throw new Error(why);
}
