/**
 * Thrift's compact protocol, read generically: what Parquet writes its page headers in
 * (parquet-pages.ts). A struct comes back as a map from field id to value — integers as
 * numbers, binaries as bytes, lists as arrays, nested structs as maps — so a caller picks
 * the fields it knows and the rest (statistics, future fields) are skipped by their wire
 * type. Every read is bounds-checked and nesting is limited: a corrupt header fails with a
 * message instead of reading past its bytes or recursing without end.
 */

import { ByteCursor, writeVarint } from "./byte-cursor.js";

export type ThriftValue = number | boolean | Uint8Array | ThriftValue[] | ThriftStruct;
export type ThriftStruct = Map<number, ThriftValue>;

/** Compact protocol wire types. */
const enum Wire {
  Stop = 0, True = 1, False = 2, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7,
  Binary = 8, List = 9, Set = 10, Map = 11, Struct = 12,
}

/** Deeper than any Parquet header nests; a corrupt one could otherwise recurse without end. */
const MAX_DEPTH = 16;

export class ThriftReader extends ByteCursor {
  /** One struct from the current offset, leaving the offset after it. */
  readStruct(depth = 0): ThriftStruct {
    if (depth > MAX_DEPTH) this.fail("structs nested too deep");
    const out: ThriftStruct = new Map();
    let lastId = 0;
    for (;;) {
      const header = this.byte();
      const type = header & 0x0f;
      if (type === Wire.Stop) return out;
      const delta = header >> 4;
      const id = delta === 0 ? this.zigzag() : lastId + delta;
      lastId = id;
      out.set(id, this.value(type, depth));
    }
  }

  private value(type: number, depth: number): ThriftValue {
    switch (type) {
      case Wire.True: return true;
      case Wire.False: return false;
      case Wire.Byte: return (this.byte() << 24) >> 24;
      case Wire.I16:
      case Wire.I32:
      case Wire.I64: return this.zigzag();
      case Wire.Double: this.take(8, "double"); return 0;
      case Wire.Binary: return this.take(this.varint(), "binary field");
      case Wire.List:
      case Wire.Set: {
        const header = this.byte();
        const size = header >> 4 === 15 ? this.varint() : header >> 4;
        const elementType = header & 0x0f;
        if (size > this.left) this.fail(`a list of ${size} elements in ${this.left} bytes`);
        const items: ThriftValue[] = [];
        // In a list a boolean is a whole byte (1 true, 0 or 2 false), not folded into a type.
        for (let i = 0; i < size; i++) items.push(elementType === Wire.True || elementType === Wire.False ? this.byte() === 1 : this.value(elementType, depth + 1));
        return items;
      }
      case Wire.Map: {
        const size = this.varint();
        if (size === 0) return [];
        const types = this.byte();
        for (let i = 0; i < size; i++) {
          this.value(types >> 4, depth + 1);
          this.value(types & 0x0f, depth + 1);
        }
        return []; // Parquet headers hold no maps; skipped.
      }
      case Wire.Struct: return this.readStruct(depth + 1);
      default: return this.fail(`unknown wire type ${type}`);
    }
  }

  protected override fail(why: string): never {
    throw new Error(`corrupt thrift header at byte ${this.offset}: ${why}`);
  }
}

/** Field `id` of a struct as an integer, or `fallback` when absent (undefined: required). */
export function intField(s: ThriftStruct, id: number, what: string, fallback?: number): number {
  const v = s.get(id);
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number") throw new Error(`corrupt header: ${what} ${v === undefined ? "missing" : "not an integer"}`);
  return v;
}

/** Field `id` of a struct as a nested struct, or null when absent. */
export function structField(s: ThriftStruct, id: number): ThriftStruct | null {
  const v = s.get(id);
  return v instanceof Map ? v : null;
}

/** A field to write: its id and its typed value (a struct is a list of fields, in id order). */
export type ThriftField =
  | [id: number, type: "bool", value: boolean]
  | [id: number, type: "i32" | "i64", value: number]
  | [id: number, type: "binary", value: Uint8Array | string]
  | [id: number, type: "struct", value: ThriftField[]]
  | [id: number, type: "list<i32>", value: number[]]
  | [id: number, type: "list<binary>", value: Array<Uint8Array | string>]
  | [id: number, type: "list<struct>", value: ThriftField[][]];

/** One struct in the compact protocol, as Parquet's page headers and footer are written. */
export function encodeStruct(fields: ThriftField[]): Uint8Array {
  const out: number[] = [];
  writeStruct(out, fields);
  return Uint8Array.from(out);
}

const WIRE: Record<ThriftField[1], number> = {
  bool: Wire.True, i32: Wire.I32, i64: Wire.I64, binary: Wire.Binary, struct: Wire.Struct,
  "list<i32>": Wire.List, "list<binary>": Wire.List, "list<struct>": Wire.List,
};

function writeStruct(out: number[], fields: ThriftField[]): void {
  let lastId = 0;
  for (const [id, type, value] of fields) {
    // A boolean field's value is its wire type: True or False.
    const wire = type === "bool" ? (value ? Wire.True : Wire.False) : WIRE[type];
    if (id > lastId && id - lastId <= 15) out.push(((id - lastId) << 4) | wire);
    else {
      out.push(wire);
      writeVarint(out, zigzag(id));
    }
    lastId = id;
    switch (type) {
      case "bool": break;
      case "i32":
      case "i64": writeVarint(out, zigzag(value)); break;
      case "binary": writeBinary(out, value); break;
      case "struct": writeStruct(out, value); break;
      case "list<i32>": listHeader(out, value.length, Wire.I32); for (const v of value) writeVarint(out, zigzag(v)); break;
      case "list<binary>": listHeader(out, value.length, Wire.Binary); for (const v of value) writeBinary(out, v); break;
      case "list<struct>": listHeader(out, value.length, Wire.Struct); for (const v of value) writeStruct(out, v); break;
    }
  }
  out.push(Wire.Stop);
}

function listHeader(out: number[], size: number, elementType: number): void {
  if (size < 15) out.push((size << 4) | elementType);
  else {
    out.push(0xf0 | elementType);
    writeVarint(out, size);
  }
}

function writeBinary(out: number[], value: Uint8Array | string): void {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  writeVarint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

/** Zigzag: 0, -1, 1, -2, ... to 0, 1, 2, 3, ... (exact up to 2^52 in magnitude). */
function zigzag(n: number): number {
  if (!Number.isSafeInteger(n) || Math.abs(n) > 2 ** 52) throw new RangeError(`thrift: ${n} is not an integer it can write`);
  return n >= 0 ? 2 * n : -2 * n - 1;
}
