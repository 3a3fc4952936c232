/**
 * A small WebAssembly binary writer: enough of the format (types, one imported memory,
 * exported functions, and the integer, control and 128-bit SIMD instructions our kernels
 * use) to build a module in memory at run time. saekit's WebAssembly kernels are written
 * with it instead of being compiled ahead of time, so there is no .wasm artifact to build,
 * ship or trust: the code that generates a kernel is the kernel's source.
 *
 * Reference: the WebAssembly core specification, binary format (sections 5.x), and the
 * fixed-width SIMD proposal (opcodes under the 0xFD prefix).
 */

/**
 * The part of the WebAssembly JavaScript API saekit uses, typed here: Node's type
 * declarations do not describe it, and the DOM's do only in a browser build.
 */
export interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (limits: { initial: number }) => WasmMemory;
}
/** The engine's WebAssembly object; undefined where there is none. */
export const webAssembly = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** Value types. */
export const I32 = 0x7f;
export const V128 = 0x7b;
export type ValueType = typeof I32 | typeof V128;

/** Unsigned LEB128, the format's variable-length integer. */
export function unsignedLeb(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`unsigned LEB128 out of range: ${n}`);
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer (i32.const's immediate). */
export function signedLeb(n: number): number[] {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`signed LEB128 out of range: ${n}`);
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/**
 * A function body under construction: each method appends one instruction. Memory
 * instructions take a byte offset immediate, which unrolled loops use instead of pointer
 * arithmetic.
 */
export class Code {
  readonly bytes: number[] = [];

  private emit(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }

  private simd(op: number, ...immediates: number[]): this {
    return this.emit(0xfd, ...unsignedLeb(op), ...immediates);
  }

  // Control. Blocks and loops take no parameters and leave nothing on the stack.
  block(): this { return this.emit(0x02, 0x40); }
  loop(): this { return this.emit(0x03, 0x40); }
  if(): this { return this.emit(0x04, 0x40); }
  end(): this { return this.emit(0x0b); }
  br(depth: number): this { return this.emit(0x0c, ...unsignedLeb(depth)); }
  brIf(depth: number): this { return this.emit(0x0d, ...unsignedLeb(depth)); }
  call(fn: number): this { return this.emit(0x10, ...unsignedLeb(fn)); }

  // Locals.
  get(local: number): this { return this.emit(0x20, ...unsignedLeb(local)); }
  set(local: number): this { return this.emit(0x21, ...unsignedLeb(local)); }
  tee(local: number): this { return this.emit(0x22, ...unsignedLeb(local)); }

  // 32-bit integers.
  i32(n: number): this { return this.emit(0x41, ...signedLeb(n)); }
  i32Eqz(): this { return this.emit(0x45); }
  i32Ne(): this { return this.emit(0x47); }
  i32LtU(): this { return this.emit(0x49); }
  i32Add(): this { return this.emit(0x6a); }
  i32Sub(): this { return this.emit(0x6b); }
  i32Mul(): this { return this.emit(0x6c); }
  i32Shl(): this { return this.emit(0x74); }

  /** local += n (an i32 local). */
  addTo(local: number, n: number): this { return this.get(local).i32(n).i32Add().set(local); }
  /** local += other local. */
  addLocal(local: number, other: number): this { return this.get(local).get(other).i32Add().set(local); }

  // 128-bit SIMD. Memory arguments: alignment exponent, then the byte offset.
  v128Load(offset = 0): this { return this.simd(0x00, 4, ...unsignedLeb(offset)); }
  v128Load32Splat(offset = 0): this { return this.simd(0x09, 2, ...unsignedLeb(offset)); }
  v128Store(offset = 0): this { return this.simd(0x0b, 4, ...unsignedLeb(offset)); }
  v128Zero(): this { return this.simd(0x0c, ...new Array<number>(16).fill(0)); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Mul(): this { return this.simd(0xe6); }
}

export interface FunctionSpec {
  /** The export name. */
  name: string;
  params: ValueType[];
  /** Locals beyond the parameters, numbered after them. */
  locals: ValueType[];
  /** The body without its final `end`. */
  body: Code;
}

function vector(items: number[][]): number[] {
  return [...unsignedLeb(items.length), ...items.flat()];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...unsignedLeb(payload.length), ...payload];
}

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...unsignedLeb(bytes.length), ...bytes];
}

/**
 * A module importing one memory as env.memory (so the caller owns and grows it) and
 * exporting the given functions, none of which returns a value. Function i is index i for
 * `call`.
 */
export function wasmModule(functions: FunctionSpec[], minPages = 1): Uint8Array {
  const types = functions.map((f) => [0x60, ...unsignedLeb(f.params.length), ...f.params, 0]);
  const memoryImport = [...name("env"), ...name("memory"), 0x02, 0x00, ...unsignedLeb(minPages)];
  const exports = functions.map((f, i) => [...name(f.name), 0x00, ...unsignedLeb(i)]);
  const bodies = functions.map((f) => {
    const locals = vector(f.locals.map((t) => [1, t]));
    const body = [...locals, ...f.body.bytes, 0x0b];
    return [...unsignedLeb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...section(2, vector([memoryImport])),
    ...section(3, vector(functions.map((_, i) => unsignedLeb(i)))),
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}
