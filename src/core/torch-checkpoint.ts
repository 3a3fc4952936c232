/**
 * PyTorch checkpoints as torch.save writes them since PyTorch 1.6 (`pytorch_model.bin` in
 * Hugging Face repositories that predate safetensors, such as Pythia's training-step
 * revisions). The file is a zip archive of stored (uncompressed) entries:
 *
 *   <archive>/data.pkl      a pickle of the state dict
 *   <archive>/data/<key>    one raw little-endian storage per key
 *
 * In the pickle each tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size,
 * stride, ...)`, its storage a persistent id ("storage", torch.FloatStorage, key, device,
 * numel). Pickle is a small stack-machine program; this reader runs only the opcodes a state
 * dict uses and resolves only the few globals it names (OrderedDict, the tensor rebuilders,
 * storage classes). Anything else is refused, so a hostile file can make it call nothing.
 * Beside its tensors a state dict may hold plain values (OpenAI's SAEs keep the activation's
 * name and its k there): strings, numbers, booleans, None and dicts or lists of them, which
 * `value` returns as JSON-like data. A file of one bare tensor (`torch.save(acts)`) reads as
 * a state dict holding it under the name BARE_TENSOR.
 * Every range is checked against the file, and every problem is an error naming the file.
 * Tensors are read on demand through a file descriptor: opening costs the directory and
 * the pickle, not the weights.
 */
import { closeSync, fstatSync } from "node:fs";
import type { ByteSource } from "./byte-source.js";
import { type DType, DTYPE_SIZE, decodeFloats, type FloatDType } from "./dtype.js";
import { type Fail, fileSource, openForReading, readRange } from "./file-range.js";
import { numel, Tensor } from "./tensor.js";
import { readZipDirectory, type ZipEntry } from "./zip.js";

export class TorchCheckpointError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = "TorchCheckpointError";
  }
}

/** A tensor as the pickle describes it: a strided view of one storage. */
interface TensorRef {
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

interface StorageRef {
  key: string;
  dtype: DType;
  numel: number;
}

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: "F32", HalfStorage: "F16", BFloat16Storage: "BF16", DoubleStorage: "F64",
  LongStorage: "I64", IntStorage: "I32", ByteStorage: "U8", BoolStorage: "BOOL",
};

/** A non-tensor entry of a state dict, as JSON-like data (dicts become plain objects). */
export type PlainValue = string | number | boolean | null | PlainValue[] | { [key: string]: PlainValue };

/** The name a file holding one bare tensor, not a dict, gives it. */
export const BARE_TENSOR = "tensor";

export class TorchCheckpoint {
  private constructor(readonly path: string, private readonly tensors: Map<string, TensorRef>,
    private readonly values: Map<string, PlainValue>, private readonly storages: Map<string, ZipEntry>,
    private readonly source: ByteSource) {}

  /** Reads the zip directory and the state dict's pickle of `path`. */
  static open(path: string): TorchCheckpoint {
    const fail: Fail = (problem) => { throw new TorchCheckpointError(path, problem); };
    const fd = openForReading(path, fail);
    try {
      const fileSize = fstatSync(fd).size;
      const head = readRange(fd, 0, Math.min(fileSize, 4), fail);
      if (head.length < 4 || head[0] !== 0x50 || head[1] !== 0x4b) {
        // torch.save before 1.6 wrote a bare pickle stream (it starts with 0x80 0x02).
        fail(head[0] === 0x80
          ? "a PyTorch checkpoint in the legacy (pre-1.6) format, which saekit does not read; re-save it with a current torch.save or convert it to safetensors"
          : "not a PyTorch checkpoint (no zip signature)");
      }
      const entries = readZipDirectory(fd, fileSize, fail);
      for (const [name, e] of entries) {
        if (e.method !== 0) fail(`zip entry ${name} is compressed (method ${e.method}); torch.save stores entries uncompressed`);
      }
      const pklName = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n)) ?? fail("no <archive>/data.pkl entry: not a torch.save checkpoint");
      const prefix = pklName.slice(0, -"data.pkl".length);
      const pkl = entries.get(pklName)!;
      const { tensors: state, values } = unpickleStateDict(readRange(fd, pkl.start, pkl.size, fail), fail);
      const storages = new Map<string, ZipEntry>();
      for (const [name, ref] of state) {
        const entry = entries.get(`${prefix}data/${ref.storage.key}`) ?? fail(`tensor "${name}": storage ${ref.storage.key} is missing from the archive`);
        const need = ref.storage.numel * DTYPE_SIZE[ref.storage.dtype];
        if (entry.size < need) fail(`tensor "${name}": storage ${ref.storage.key} holds ${entry.size} bytes, its ${ref.storage.numel} ${ref.storage.dtype} elements need ${need}`);
        checkView(name, ref, fail);
        storages.set(ref.storage.key, entry);
      }
      return new TorchCheckpoint(path, state, values, storages, fileSource(path, fail));
    } finally {
      closeSync(fd);
    }
  }

  /** The tensors' names, in the dict's order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The names of the plain (non-tensor) entries, in the dict's order. */
  valueNames(): string[] {
    return [...this.values.keys()];
  }

  /** A plain entry's value, or undefined when there is none of that name. */
  value(name: string): PlainValue | undefined {
    return this.values.get(name);
  }

  shape(name: string): number[] {
    return [...this.ref(name).shape];
  }

  /** The dtype of a tensor's storage (F32, F16, BF16, F64, I64, ...). */
  dtype(name: string): DType {
    return this.ref(name).storage.dtype;
  }

  /** A float tensor (F32, F16, BF16 or F64) converted to float32, made contiguous. */
  read(name: string): Tensor {
    const fail: Fail = (problem) => { throw new TorchCheckpointError(this.path, problem); };
    const ref = this.ref(name);
    const { dtype } = ref.storage;
    if (dtype !== "F32" && dtype !== "F16" && dtype !== "BF16" && dtype !== "F64") return fail(`tensor "${name}" has dtype ${dtype}, expected a float dtype`);
    const count = numel(ref.shape);
    if (count === 0) return new Tensor(ref.shape);
    // Read the span of the storage the view touches, decode it, then gather by stride.
    const last = lastElement(ref);
    const span = decodeFloats(this.storageBytes(ref, last - ref.offset + 1, fail), dtype as FloatDType | "F64", last - ref.offset + 1);
    if (isContiguous(ref.shape, ref.stride)) return new Tensor(ref.shape, span.length === count ? span : span.slice(0, count));
    const out = new Float32Array(count);
    const index = new Array<number>(ref.shape.length).fill(0);
    for (let i = 0; i < count; i++) {
      let at = 0;
      for (let d = 0; d < index.length; d++) at += index[d]! * ref.stride[d]!;
      out[i] = span[at]!;
      for (let d = index.length - 1; d >= 0; d--) {
        if (++index[d]! < ref.shape[d]!) break;
        index[d] = 0;
      }
    }
    return new Tensor(ref.shape, out);
  }

  /** An integer tensor (I64, I32, U8 or BOOL) as numbers, e.g. a stored hyperparameter. */
  readInts(name: string): number[] {
    const fail: Fail = (problem) => { throw new TorchCheckpointError(this.path, problem); };
    const ref = this.ref(name);
    const { dtype } = ref.storage;
    if (dtype !== "I64" && dtype !== "I32" && dtype !== "U8" && dtype !== "BOOL") return fail(`tensor "${name}" has dtype ${dtype}, expected an integer dtype`);
    if (!isContiguous(ref.shape, ref.stride)) fail(`tensor "${name}": strided integer tensors are not supported`);
    const count = numel(ref.shape);
    const bytes = this.storageBytes(ref, count, fail);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from({ length: count }, (_, i) => {
      if (dtype === "I32") return view.getInt32(4 * i, true);
      if (dtype !== "I64") return bytes[i]!;
      const v = view.getBigInt64(8 * i, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) fail(`tensor "${name}" holds ${v}, beyond a safe integer`);
      return Number(v);
    });
  }

  /** `count` elements of a view's storage from its offset on, as raw bytes. */
  private storageBytes(ref: TensorRef, count: number, fail: Fail): Uint8Array {
    const es = DTYPE_SIZE[ref.storage.dtype];
    const entry = this.storages.get(ref.storage.key)!;
    return this.source.read(entry.start + ref.offset * es, count * es, fail);
  }

  private ref(name: string): TensorRef {
    const ref = this.tensors.get(name);
    if (!ref) throw new TorchCheckpointError(this.path, `no tensor named "${name}"`);
    return ref;
  }
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d]! !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** The storage element of a (non-empty) view's last entry. */
function lastElement(ref: TensorRef): number {
  return ref.offset + ref.shape.reduce((a, s, i) => a + (s - 1) * ref.stride[i]!, 0);
}

/** The view must stay inside its storage. */
function checkView(name: string, ref: TensorRef, fail: Fail): void {
  if (numel(ref.shape) === 0) return;
  const last = lastElement(ref);
  if (last >= ref.storage.numel) fail(`tensor "${name}": its view reaches element ${last} of a ${ref.storage.numel}-element storage`);
}

// ---------------------------------------------------------------------------------------
// The pickle of a state dict.

class Global {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

const MARK = Symbol("mark");
type Value = unknown;

/** Runs the pickle program and returns name -> tensor view and name -> plain value, in the dict's order. */
function unpickleStateDict(bytes: Uint8Array, fail: Fail): { tensors: Map<string, TensorRef>; values: Map<string, PlainValue> } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  let p = 0;
  const need = (n: number) => { if (p + n > bytes.length) fail("data.pkl ends in the middle of an instruction"); };
  const u8 = () => { need(1); return bytes[p++]!; };
  const u16 = () => { need(2); const v = view.getUint16(p, true); p += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(p, true); p += 4; return v; };
  const text = (n: number) => { need(n); const s = new TextDecoder().decode(bytes.subarray(p, p + n)); p += n; return s; };
  const line = () => { const end = bytes.indexOf(0x0a, p); if (end < 0) fail("data.pkl: unterminated GLOBAL"); const s = text(end - p); p++; return s; };
  const pop = (): Value => (stack.length ? stack.pop() : fail("data.pkl: stack underflow"));
  const popMark = (): Value[] => {
    let i = stack.length - 1;
    while (i >= 0 && stack[i] !== MARK) i--;
    if (i < 0) fail("data.pkl: no MARK on the stack");
    const items = stack.splice(i);
    return items.slice(1);
  };
  const top = (): Value => (stack.length ? stack[stack.length - 1] : fail("data.pkl: stack underflow"));
  const setItems = (target: Value, items: Value[]) => {
    if (!(target instanceof Map)) fail("data.pkl: SETITEM on something not a dict");
    for (let i = 0; i + 1 < items.length; i += 2) (target as Map<Value, Value>).set(items[i], items[i + 1]);
  };
  const appendItems = (target: Value, items: Value[]) => {
    if (!Array.isArray(target)) fail("data.pkl: APPEND on something not a list");
    (target as Value[]).push(...items);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: need(8); p += 8; break; // FRAME
      case 0x2e: { // STOP
        const result = pop();
        if (isTensorRef(result)) return { tensors: new Map([[BARE_TENSOR, result]]), values: new Map() };
        if (!(result instanceof Map)) fail("data.pkl holds neither a dict of tensors (a state dict) nor one tensor");
        const tensors = new Map<string, TensorRef>();
        const values = new Map<string, PlainValue>();
        for (const [k, v] of result as Map<Value, Value>) {
          if (typeof k !== "string") fail("data.pkl: a state dict key is not a string");
          if (isTensorRef(v)) tensors.set(k as string, v);
          else values.set(k as string, plainValue(v, k as string, fail));
        }
        return { tensors, values };
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x74: case 0x6c: stack.push(popMark()); break; // TUPLE, LIST
      case 0x64: { const items = popMark(); const m = new Map(); setItems(m, items); stack.push(m); break; } // DICT
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x4a: need(4); stack.push(view.getInt32(p, true)); p += 4; break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = u8();
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[p + i]!);
        if (n > 0 && bytes[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) fail(`data.pkl: integer ${v} is too large`);
        stack.push(Number(v));
        break;
      }
      case 0x47: need(8); stack.push(view.getFloat64(p, false)); p += 8; break; // BINFLOAT (big-endian)
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: { need(8); const n = Number(view.getBigUint64(p, true)); p += 8; stack.push(text(n)); break; } // BINUNICODE8
      case 0x55: stack.push(text(u8())); break; // SHORT_BINSTRING
      case 0x54: stack.push(text(u32())); break; // BINSTRING
      case 0x43: { const n = u8(); need(n); stack.push(bytes.slice(p, p + n)); p += n; break; } // SHORT_BINBYTES
      case 0x42: { const n = u32(); need(n); stack.push(bytes.slice(p, p + n)); p += n; break; } // BINBYTES
      case 0x63: { const module = line(); stack.push(new Global(module, line())); break; } // GLOBAL
      case 0x93: { const name = pop(); const module = pop(); stack.push(new Global(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: { const k = u8(); if (!memo.has(k)) fail(`data.pkl: memo ${k} read before written`); stack.push(memo.get(k)); break; } // BINGET
      case 0x6a: { const k = u32(); if (!memo.has(k)) fail(`data.pkl: memo ${k} read before written`); stack.push(memo.get(k)); break; } // LONG_BINGET
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x51: stack.push(persistentStorage(pop(), fail)); break; // BINPERSID
      case 0x52: { const args = pop(); stack.push(call(pop(), args, fail)); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), args, fail)); break; } // NEWOBJ
      case 0x62: pop(); break; // BUILD: object state (the state dict's _metadata); not needed
      default:
        fail(`data.pkl: pickle opcode 0x${op.toString(16)} at byte ${p - 1} is not one a state dict uses`);
    }
  }
}

function isTensorRef(v: Value): v is TensorRef {
  return typeof v === "object" && v !== null && "storage" in v && "stride" in v;
}

/** A non-tensor entry as JSON-like data; anything else (a tensor inside, bytes, a global) is refused. */
function plainValue(v: Value, name: string, fail: Fail, depth = 0): PlainValue {
  if (depth > 32) fail(`data.pkl: "${name}" nests too deep`);
  if (v === null || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") return v;
  if (Array.isArray(v)) return v.map((item) => plainValue(item, name, fail, depth + 1));
  if (v instanceof Map) {
    const out: { [key: string]: PlainValue } = {};
    for (const [k, item] of v) {
      if (typeof k !== "string" && typeof k !== "number") fail(`data.pkl: "${name}" has a dict key that is not a string or number`);
      out[String(k)] = plainValue(item, name, fail, depth + 1);
    }
    return out;
  }
  return fail(`data.pkl: "${name}" is neither a tensor nor a plain value (string, number, list or dict)`);
}

/** ("storage", torch.FloatStorage, key, location, numel) -> the storage it names. */
function persistentStorage(pid: Value, fail: Fail): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) fail(`data.pkl: unexpected persistent id ${JSON.stringify(pid)}`);
  const [, type, key, , count] = pid as [string, Value, Value, Value, Value];
  const dtype = type instanceof Global && type.module === "torch" ? STORAGE_DTYPES[type.name] : undefined;
  if (!dtype) fail(`data.pkl: unsupported storage type ${type instanceof Global ? type.qualified : String(type)}`);
  if (typeof key !== "string" || !/^\w+$/.test(key)) fail(`data.pkl: bad storage key ${JSON.stringify(key)}`);
  if (!Number.isSafeInteger(count) || (count as number) < 0) fail(`data.pkl: bad storage size ${String(count)}`);
  return { key: key as string, dtype: dtype!, numel: count as number };
}

const isCount = (v: Value) => Number.isSafeInteger(v) && (v as number) >= 0;

/** The only callables a state dict pickle names. */
function call(fn: Value, args: Value, fail: Fail): Value {
  if (!(fn instanceof Global)) fail("data.pkl calls something that is not a global");
  const f = fn as Global;
  if (!Array.isArray(args)) fail(`data.pkl: ${f.qualified} called without an argument tuple`);
  const a = args as Value[];
  switch (f.qualified) {
    case "collections.OrderedDict":
      return new Map();
    case "torch._utils._rebuild_tensor_v2":
    case "torch._utils._rebuild_tensor": {
      const [storage, offset, shape, stride] = a;
      if (!storage || typeof storage !== "object" || !("key" in storage)) fail("data.pkl: tensor without a storage");
      if (!isCount(offset) || !Array.isArray(shape) || !Array.isArray(stride) || shape.length !== stride.length
        || !shape.every(isCount) || !stride.every(isCount)) {
        fail(`data.pkl: malformed tensor view (offset ${JSON.stringify(offset)}, size ${JSON.stringify(shape)}, stride ${JSON.stringify(stride)})`);
      }
      return { storage, offset, shape, stride } as TensorRef;
    }
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state":
      return a[0];
    default:
      return fail(`data.pkl calls ${f.qualified}, which a state dict of tensors never does; refusing to go on`);
  }
}
