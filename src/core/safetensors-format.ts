/**
 * The safetensors format (https://github.com/huggingface/safetensors), independent of where
 * the bytes live: an 8-byte little-endian header length N, N bytes of JSON mapping tensor
 * names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data section
 * that follows) plus an optional "__metadata__" string map, then the raw little-endian data.
 *
 * Files come from anywhere, so the reader trusts nothing: the header length is bounded,
 * the JSON is validated field by field, every range must lie inside the file, match its
 * dtype and shape, start on an element boundary, and the ranges must tile the data section
 * exactly (no overlaps, no holes), as the reference Rust implementation requires. Every
 * problem is an error naming the file and what is wrong. Tensors are read on demand from a
 * ByteSource, so opening a large checkpoint costs only its header. (safetensors.ts opens
 * files; this module runs in the browser too.)
 */
import { type ByteSource, bytesSource, type Fail, readFloatsInto } from "./byte-source.js";
import { float32ToBf16 } from "./bf16.js";
import { DTYPE_SIZE, type DType, type FloatDType, encodeFloats, isDType } from "./dtype.js";
import { numel, type Shape, Tensor } from "./tensor.js";

/** Safetensors dtypes of quantized checkpoints (FP8, FP4, int8 releases), named so a refusal can say what the file is. */
const QUANTIZED_DTYPES = new Map<string, string>([
  ["F8_E4M3", "8-bit float, an FP8-quantized checkpoint"], ["F8_E5M2", "8-bit float, an FP8-quantized checkpoint"],
  ["F8_E8M0", "8-bit scale of a microscaled checkpoint"], ["F4", "4-bit float, an FP4-quantized checkpoint"],
  ["F6_E2M3", "6-bit float, a microscaled checkpoint"], ["F6_E3M2", "6-bit float, a microscaled checkpoint"],
  ["I8", "8-bit integer, a quantized checkpoint"],
]);

/** The reference implementation caps the header at 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = "SafetensorsError";
  }
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range in the data section. */
  begin: number;
  end: number;
}

export class SafetensorsReader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly dataStart: number;

  /** `path` names the source in errors (a file path, or any label for bytes in memory). */
  protected constructor(readonly path: string, private readonly source: ByteSource) {
    const { tensors, metadata, dataStart } = readHeader(source, path);
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  /** A safetensors blob already in memory (a fetch() response, a File in the browser). */
  static fromBytes(bytes: Uint8Array, name = "<bytes>"): SafetensorsReader {
    return new SafetensorsReader(name, bytesSource(bytes));
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  shape(name: string): readonly number[] {
    return this.info(name).shape;
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(this.path, `no tensor named "${name}" (has: ${this.names().slice(0, 20).join(", ")}${this.tensors.size > 20 ? ", ..." : ""})`);
    return t;
  }

  /** The raw bytes of a tensor. */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    return this.source.read(this.dataStart + t.begin, t.end - t.begin, failFor(this.path));
  }

  /** A float tensor (F32, F16, BF16 or F64) converted to float32. */
  read(name: string): Tensor {
    const t = this.info(name);
    return new Tensor(t.shape, this.readInto(name, new Float32Array(numel(t.shape))));
  }

  /**
   * A float tensor converted to float32 into `into` (exactly as many elements), e.g. a slice
   * of a larger buffer; returns `into`. Little-endian float32 in a file goes there straight,
   * with no buffer in between.
   */
  readInto(name: string, into: Float32Array): Float32Array {
    const t = this.info(name);
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") {
      throw new SafetensorsError(this.path, `tensor "${name}" has dtype ${t.dtype}, expected a float dtype`);
    }
    const count = numel(t.shape);
    if (into.length !== count) throw new RangeError(`${this.path}: tensor "${name}" has ${count} values, the destination ${into.length}`);
    return readFloatsInto(this.source, this.dataStart + t.begin, t.dtype, into, failFor(this.path));
  }

  /**
   * A float tensor as bfloat16 bits (bf16.ts): a BF16 tensor's own bits, with no float32
   * copy in between; others read as float32 and rounded to nearest.
   */
  readBf16(name: string): Uint16Array {
    const t = this.info(name);
    if (t.dtype === "BF16") {
      const bytes = this.readBytes(name);
      const out = new Uint16Array(numel(t.shape));
      new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 2)); // little-endian, as the file
      return out;
    }
    return float32ToBf16(this.read(name).data);
  }

  /** An integer tensor (I64 or I32) as numbers (I64 values must be safe integers). */
  readInts(name: string): { shape: number[]; data: number[] } {
    const t = this.info(name);
    const bytes = this.readBytes(name);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const count = numel(t.shape);
    const data: number[] = new Array(count);
    if (t.dtype === "I64") {
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new SafetensorsError(this.path, `tensor "${name}" holds ${v}, beyond a safe integer`);
        }
        data[i] = Number(v);
      }
    } else if (t.dtype === "I32") {
      for (let i = 0; i < count; i++) data[i] = view.getInt32(4 * i, true);
    } else {
      throw new SafetensorsError(this.path, `tensor "${name}" has dtype ${t.dtype}, expected I64 or I32`);
    }
    return { shape: t.shape, data };
  }
}

function failFor(path: string): Fail {
  return (problem) => { throw new SafetensorsError(path, problem); };
}

/** Reads and validates the header: every tensor's dtype, shape and byte range. */
function readHeader(source: ByteSource, path: string): { tensors: Map<string, TensorInfo>; metadata: Record<string, string>; dataStart: number } {
  const fail = failFor(path);
  const size = source.size;
  if (size < 8) fail(`file is ${size} bytes, too short to hold a safetensors header`);
  const lenBytes = source.read(0, 8, fail);
  const headerLen = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (headerLen > BigInt(size - 8)) fail(`header length ${headerLen} runs past the end of the ${size}-byte file`);
  const n = Number(headerLen);
  if (n < 2) fail(`header length ${n} is too short for a JSON object`);
  const raw = source.read(8, n, fail);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    return fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + n;
  return { ...parseHeader(header, size - dataStart, fail), dataStart };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseHeader(header: unknown, dataLength: number, fail: (p: string) => never): {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
} {
  if (!isPlainObject(header)) fail("header is not a JSON object");
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (!isPlainObject(entry)) fail("__metadata__ is not an object");
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (!isPlainObject(entry)) fail(`tensor "${name}": entry is not an object`);
    const e = entry as Record<string, unknown>;
    if (typeof e.dtype === "string" && QUANTIZED_DTYPES.has(e.dtype)) {
      fail(`tensor "${name}": dtype ${e.dtype} (${QUANTIZED_DTYPES.get(e.dtype)}) is not supported: saekit reads F32, F16, BF16 and F64 weights; use the model's bfloat16 or float32 release`);
    }
    if (!isDType(e.dtype)) fail(`tensor "${name}": unknown dtype ${JSON.stringify(e.dtype)}`);
    const dtype = e.dtype as DType;
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.some((s) => !Number.isSafeInteger(s) || s < 0)) {
      fail(`tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count * DTYPE_SIZE[dtype])) fail(`tensor "${name}": shape ${JSON.stringify(shape)} is too large`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
      fail(`tensor "${name}": data_offsets must be two non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`tensor "${name}": data_offsets [${begin}, ${end}] are reversed`);
    if (end > dataLength) fail(`tensor "${name}": data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes)`);
    if (end - begin !== count * DTYPE_SIZE[dtype]) {
      fail(`tensor "${name}": ${end - begin} bytes for ${dtype} ${JSON.stringify(shape)}, which needs ${count * DTYPE_SIZE[dtype]}`);
    }
    if (begin % DTYPE_SIZE[dtype] !== 0) fail(`tensor "${name}": data offset ${begin} is misaligned for ${dtype}`);
    tensors.set(name, { name, dtype, shape: shape as number[], begin, end });
  }
  // The ranges must tile the data section: sorted, each starts where the previous ended.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const t of sorted) {
    if (t.begin < pos) fail(`tensor "${t.name}" overlaps the tensor before it (bytes ${t.begin}..${t.end})`);
    if (t.begin > pos) fail(`gap in the data section before tensor "${t.name}" (bytes ${pos}..${t.begin} unused)`);
    pos = t.end;
  }
  if (pos !== dataLength) fail(`data section is ${dataLength} bytes but the tensors cover ${pos}`);
  return { tensors, metadata };
}

/** A tensor to write: float data stored as `dtype` (default F32), or integer data. */
export type TensorToWrite =
  | { dtype?: FloatDType; shape: Shape; data: Float32Array }
  | { dtype: "I64" | "I32"; shape: Shape; data: ArrayLike<number> };

/**
 * Encodes tensors and metadata as safetensors bytes. The data section holds the tensors by
 * element size, widest first (in the given order within a size), as the reference writer
 * orders them: every tensor then starts aligned to its element size, which readers that
 * view the bytes in place (this one included) require. The float32 tensors' bytes are
 * copies unless options.copy is false, when they are views of the tensors' own memory.
 */
export function encodeSafetensors(tensors: Record<string, TensorToWrite | Tensor>,
  metadata?: Record<string, string>, options: { copy?: boolean } = {}): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  const size = (t: TensorToWrite | Tensor) => DTYPE_SIZE[(t instanceof Tensor ? undefined : t.dtype) ?? "F32"];
  const ordered = Object.entries(tensors).map((e, i) => ({ e, i }))
    .sort((a, b) => size(b.e[1]) - size(a.e[1]) || a.i - b.i).map(({ e }) => e);
  for (const [name, t] of ordered) {
    const entry: TensorToWrite = t instanceof Tensor ? { shape: t.shape, data: t.data } : t;
    const dtype = entry.dtype ?? "F32";
    const count = numel(entry.shape);
    if (entry.data.length !== count) {
      throw new RangeError(`tensor "${name}": shape [${entry.shape.join(", ")}] needs ${count} values, got ${entry.data.length}`);
    }
    let bytes: Uint8Array;
    if (dtype === "I64" || dtype === "I32") {
      bytes = new Uint8Array(count * DTYPE_SIZE[dtype]);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < count; i++) {
        const v = (entry.data as ArrayLike<number>)[i]!;
        if (!Number.isSafeInteger(v)) throw new RangeError(`tensor "${name}": ${v} is not an integer`);
        if (dtype === "I64") view.setBigInt64(8 * i, BigInt(v), true);
        else view.setInt32(4 * i, v, true);
      }
    } else {
      bytes = encodeFloats(entry.data as Float32Array, dtype, options.copy ?? true);
    }
    header[name] = { dtype, shape: [...entry.shape], data_offsets: [offset, offset + bytes.byteLength] };
    blobs.push(bytes);
    offset += bytes.byteLength;
  }
  // Pad the header with spaces so the data section starts 8-byte aligned, as the
  // reference writer does.
  let json = JSON.stringify(header);
  const utf8 = new TextEncoder();
  json += " ".repeat((8 - ((8 + utf8.encode(json).byteLength) % 8)) % 8);
  const jsonBytes = utf8.encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  return [len, jsonBytes, ...blobs];
}

