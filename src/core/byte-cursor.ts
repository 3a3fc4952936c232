/**
 * A read position in a byte array, for the varint-based formats Parquet uses: thrift's
 * compact protocol (thrift-compact.ts) and its page encodings (parquet-pages.ts). Every read
 * is bounds-checked; a failure goes through fail(), which a reader may override to say
 * what it was reading.
 */
export class ByteCursor {
  constructor(protected readonly bytes: Uint8Array, public offset = 0) {}

  /** Bytes not read yet. */
  get left(): number {
    return this.bytes.length - this.offset;
  }

  byte(): number {
    if (this.offset >= this.bytes.length) this.fail("the data ends");
    return this.bytes[this.offset++]!;
  }

  /** An unsigned LEB128 varint (exact up to 2^53; beyond that the data is corrupt anyway). */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.offset >= this.bytes.length) this.fail("the data ends inside a varint");
      const b = this.bytes[this.offset++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    return this.fail("a varint longer than 10 bytes");
  }

  /** A zigzag varint: 0, 1, 2, 3, ... to 0, -1, 1, -2, ... */
  zigzag(): number {
    const n = this.varint();
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  /** The next n bytes (a view), `what` naming them in the error when they are not all there. */
  take(n: number, what: string): Uint8Array {
    if (n > this.left) this.fail(`the data ends inside a ${what} (${n} bytes needed, ${this.left} left)`);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  protected fail(why: string): never {
    throw new Error(why);
  }
}

/** Appends n as an unsigned LEB128 varint. */
export function writeVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}
