/**
 * Reading FlatBuffers tables, the encoding of Apache Arrow's IPC metadata, from bytes that
 * may be hostile: every offset is checked against the buffer before it is followed, so a
 * corrupt file gets an error (through the caller's `fail`, naming the file), never a read
 * past the end or a loop.
 *
 * Layout, in brief: a table starts with an int32 pointing back to its vtable; the vtable
 * lists, per field, the field's byte offset in the table (0: absent, the default applies).
 * Tables, strings and vectors are reached through a uint32 offset relative to where it is
 * stored; vectors and strings start with a uint32 count.
 */
import type { Fail } from "./byte-source.js";

export class FlatTable {
  private constructor(private readonly view: DataView, readonly at: number, private readonly fail: Fail) {}

  /** The root table of a buffer: the uint32 at its start points to it. */
  static root(bytes: Uint8Array, fail: Fail): FlatTable {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return FlatTable.at(view, followOffset(view, 0, fail), fail);
  }

  private static at(view: DataView, at: number, fail: Fail): FlatTable {
    inBounds(view, at, 4, fail);
    const vtable = at - view.getInt32(at, true);
    inBounds(view, vtable, 4, fail);
    const vtableSize = view.getUint16(vtable, true);
    if (vtableSize < 4 || vtableSize % 2 !== 0) fail(`corrupt metadata: vtable of ${vtableSize} bytes`);
    inBounds(view, vtable, vtableSize, fail);
    return new FlatTable(view, at, fail);
  }

  /** Where field `i` is stored, or null when the table leaves it out. */
  private field(i: number): number | null {
    const vtable = this.at - this.view.getInt32(this.at, true);
    const vtableSize = this.view.getUint16(vtable, true);
    if (4 + 2 * i + 2 > vtableSize) return null;
    const offset = this.view.getUint16(vtable + 4 + 2 * i, true);
    return offset === 0 ? null : this.at + offset;
  }

  private scalar(i: number, size: number): number | null {
    const at = this.field(i);
    if (at !== null) inBounds(this.view, at, size, this.fail);
    return at;
  }

  uint8(i: number, fallback = 0): number {
    const at = this.scalar(i, 1);
    return at === null ? fallback : this.view.getUint8(at);
  }

  bool(i: number, fallback = false): boolean {
    const at = this.scalar(i, 1);
    return at === null ? fallback : this.view.getUint8(at) !== 0;
  }

  int16(i: number, fallback = 0): number {
    const at = this.scalar(i, 2);
    return at === null ? fallback : this.view.getInt16(at, true);
  }

  int32(i: number, fallback = 0): number {
    const at = this.scalar(i, 4);
    return at === null ? fallback : this.view.getInt32(at, true);
  }

  /** An int64 field, which must fit a safe JavaScript integer (sizes and offsets do). */
  int64(i: number, fallback = 0): number {
    const at = this.scalar(i, 8);
    return at === null ? fallback : safeInt64(this.view, at, this.fail);
  }

  table(i: number): FlatTable | null {
    const at = this.scalar(i, 4);
    return at === null ? null : FlatTable.at(this.view, followOffset(this.view, at, this.fail), this.fail);
  }

  string(i: number): string | null {
    const at = this.scalar(i, 4);
    if (at === null) return null;
    const start = followOffset(this.view, at, this.fail);
    inBounds(this.view, start, 4, this.fail);
    const length = this.view.getUint32(start, true);
    inBounds(this.view, start + 4, length, this.fail);
    return new TextDecoder().decode(new Uint8Array(this.view.buffer, this.view.byteOffset + start + 4, length));
  }

  /** A vector of tables. */
  tables(i: number): FlatTable[] {
    const v = this.vector(i, 4);
    if (v === null) return [];
    return Array.from({ length: v.count }, (_, k) => FlatTable.at(this.view, followOffset(this.view, v.start + 4 * k, this.fail), this.fail));
  }

  /**
   * A vector of structs `size` bytes each, as the int64 fields of each struct: Arrow's
   * FieldNode {length, null_count}, Buffer {offset, length} and Block structs are all
   * int64-aligned records; `read` picks the fields from the struct's start.
   */
  structs<T>(i: number, size: number, read: (int64At: (byteOffset: number) => number, int32At: (byteOffset: number) => number) => T): T[] {
    const v = this.vector(i, size);
    if (v === null) return [];
    return Array.from({ length: v.count }, (_, k) => {
      const base = v.start + size * k;
      return read((o) => safeInt64(this.view, base + o, this.fail), (o) => this.view.getInt32(base + o, true));
    });
  }

  /** Where a vector of `count` elements of `size` bytes starts, checked to fit. */
  private vector(i: number, size: number): { start: number; count: number } | null {
    const at = this.scalar(i, 4);
    if (at === null) return null;
    const start = followOffset(this.view, at, this.fail);
    inBounds(this.view, start, 4, this.fail);
    const count = this.view.getUint32(start, true);
    inBounds(this.view, start + 4, count * size, this.fail);
    return { start: start + 4, count };
  }
}

function inBounds(view: DataView, at: number, size: number, fail: Fail): void {
  if (at < 0 || size < 0 || at + size > view.byteLength) fail(`corrupt metadata: offset ${at} (+${size}) outside its ${view.byteLength} bytes`);
}

/** The position a uint32 offset stored at `at` points to. */
function followOffset(view: DataView, at: number, fail: Fail): number {
  inBounds(view, at, 4, fail);
  return at + view.getUint32(at, true);
}

function safeInt64(view: DataView, at: number, fail: Fail): number {
  inBounds(view, at, 8, fail);
  const value = view.getBigInt64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) fail(`corrupt metadata: integer ${value} out of range`);
  return Number(value);
}
