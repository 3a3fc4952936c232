/**
 * Writing FlatBuffers, the encoding of Apache Arrow's IPC metadata (the reading side is
 * flatbuffer.ts). A buffer is described as a tree of values and laid out front to back:
 * the root offset, then each object after the one that points to it, so every uoffset
 * (unsigned, counted forward from where it is stored) is positive. Each table's vtable sits
 * just before it (a table's first int32 is its distance back to the vtable).
 *
 * Alignment is kept relative to the buffer's start, as FlatBuffers' verifier (pyarrow's
 * included) checks it: scalars at multiples of their size, vectors of 8-byte structs with
 * their first element on a multiple of 8.
 */

export type FlatScalar =
  | { kind: "bool" | "u8"; value: number | boolean }
  | { kind: "i16" | "i32"; value: number }
  | { kind: "i64"; value: number };

export interface FlatTableValue {
  kind: "table";
  /** By field id; undefined leaves the field out (its default applies). */
  fields: Array<FlatField | undefined>;
}

export type FlatObject =
  | FlatTableValue
  | { kind: "string"; value: string }
  | { kind: "tables"; items: FlatTableValue[] }
  /** A vector of structs of `size` bytes each, aligned to `align`, already encoded little-endian. */
  | { kind: "structs"; size: number; align: number; bytes: Uint8Array };

export type FlatField = FlatScalar | FlatObject;

export const flat = {
  table: (...fields: Array<FlatField | undefined>): FlatTableValue => ({ kind: "table", fields }),
  string: (value: string): FlatObject => ({ kind: "string", value }),
  tables: (items: FlatTableValue[]): FlatObject => ({ kind: "tables", items }),
  bool: (value: boolean): FlatScalar => ({ kind: "bool", value }),
  u8: (value: number): FlatScalar => ({ kind: "u8", value }),
  i16: (value: number): FlatScalar => ({ kind: "i16", value }),
  i32: (value: number): FlatScalar => ({ kind: "i32", value }),
  i64: (value: number): FlatScalar => ({ kind: "i64", value }),
  /** A vector of structs made of int64 fields only (Arrow's FieldNode and Buffer): `rows` of `width` int64s. */
  int64Structs(rows: number[][], width: number): FlatObject {
    const bytes = new Uint8Array(rows.length * width * 8);
    const view = new DataView(bytes.buffer);
    rows.forEach((row, i) => {
      if (row.length !== width) throw new Error(`a struct of ${row.length} fields where ${width} are expected`);
      row.forEach((v, j) => view.setBigInt64((i * width + j) * 8, BigInt(v), true));
    });
    return { kind: "structs", size: width * 8, align: 8, bytes };
  },
};

const SCALAR_SIZE = { bool: 1, u8: 1, i16: 2, i32: 4, i64: 8 } as const;

function sizeOf(f: FlatField): number {
  // Objects are stored in their parent as a 4-byte uoffset.
  return f.kind in SCALAR_SIZE ? SCALAR_SIZE[f.kind as keyof typeof SCALAR_SIZE] : 4;
}

/** The bytes of a FlatBuffer whose root is `root`. */
export function buildFlatBuffer(root: FlatTableValue): Uint8Array {
  const out = new ByteWriter();
  out.u32(0);
  // Objects still to place, with the slot that will point to each; placed in order, each lands after its slot.
  const pending: Array<{ slot: number; target: FlatObject }> = [{ slot: 0, target: root }];
  for (let next = 0; next < pending.length; next++) {
    const { slot, target } = pending[next]!;
    const at = place(out, target, (s, t) => pending.push({ slot: s, target: t }));
    out.setU32(slot, at - slot);
  }
  return out.bytes();
}

/** Writes one object at the end of `out` and returns where it starts; `refer` queues the objects it points to. */
function place(out: ByteWriter, o: FlatObject, refer: (slot: number, target: FlatObject) => void): number {
  switch (o.kind) {
    case "string": {
      const utf8 = new TextEncoder().encode(o.value);
      out.align(4);
      const at = out.length;
      out.u32(utf8.length);
      out.raw(utf8);
      out.raw(new Uint8Array([0]));
      return at;
    }
    case "tables": {
      out.align(4);
      const at = out.length;
      out.u32(o.items.length);
      for (const item of o.items) {
        refer(out.length, item);
        out.u32(0);
      }
      return at;
    }
    case "structs": {
      if (o.bytes.length % o.size !== 0) throw new Error("struct vector bytes are not a whole number of structs");
      // The count (4 bytes) goes right before the first element, which must be aligned.
      out.align(4);
      while ((out.length + 4) % o.align !== 0) out.raw(new Uint8Array(4));
      const at = out.length;
      out.u32(o.bytes.length / o.size);
      out.raw(o.bytes);
      return at;
    }
    case "table":
      return placeTable(out, o, refer);
  }
}

function placeTable(out: ByteWriter, t: FlatTableValue, refer: (slot: number, target: FlatObject) => void): number {
  // Fields largest first, so each falls on a multiple of its size without gaps; with an int64
  // among them the table starts 4 past a multiple of 8, putting the first field (after the
  // 4-byte vtable distance) on a multiple of 8.
  const present = t.fields.flatMap((f, id) => (f === undefined ? [] : [{ f, id, size: sizeOf(f) }]));
  present.sort((a, b) => b.size - a.size || a.id - b.id);
  const wide = present.some((p) => p.size === 8);
  const offsets = new Array<number>(t.fields.length).fill(0);
  let size = 4;
  for (const p of present) {
    offsets[p.id] = size;
    size += p.size;
  }
  // Pad the table's end to 4 so the next object's alignment arithmetic stays simple.
  size = Math.ceil(size / 4) * 4;
  out.align(2);
  const vtable = out.length;
  out.u16(4 + 2 * t.fields.length);
  out.u16(size);
  for (const o of offsets) out.u16(o);
  out.align(4);
  if (wide && out.length % 8 !== 4) out.raw(new Uint8Array(4));
  const at = out.length;
  out.i32(at - vtable);
  for (const p of present) {
    const f = p.f;
    switch (f.kind) {
      case "bool":
      case "u8":
        out.raw(new Uint8Array([Number(f.value)]));
        break;
      case "i16":
        out.i16(f.value);
        break;
      case "i32":
        out.i32(f.value);
        break;
      case "i64":
        out.i64(f.value);
        break;
      default:
        refer(out.length, f);
        out.u32(0);
    }
  }
  while (out.length < at + size) out.raw(new Uint8Array(1));
  return at;
}

/** A growing little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  align(n: number): void {
    while (this.length % n !== 0) this.reserve(1);
  }

  raw(bytes: Uint8Array): void {
    const at = this.reserve(bytes.length);
    this.buf.set(bytes, at);
  }

  u16(v: number): void {
    const at = this.reserve(2); // before reading this.view: reserving may replace it
    this.view.setUint16(at, v, true);
  }

  i16(v: number): void {
    const at = this.reserve(2); // before reading this.view: reserving may replace it
    this.view.setInt16(at, v, true);
  }

  u32(v: number): void {
    const at = this.reserve(4); // before reading this.view: reserving may replace it
    this.view.setUint32(at, v, true);
  }

  i32(v: number): void {
    const at = this.reserve(4); // before reading this.view: reserving may replace it
    this.view.setInt32(at, v, true);
  }

  i64(v: number): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, BigInt(v), true);
  }

  setU32(at: number, v: number): void {
    this.view.setUint32(at, v, true);
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
