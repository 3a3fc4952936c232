/**
 * A small typed tensor: a shape and row-major float32 data. saekit's math runs on kernels
 * over plain Float32Arrays; Tensor is what crosses API boundaries (files, models, SAEs) so
 * shapes travel with data and are checked where they meet.
 */

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function shapeString(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

export class Tensor {
  readonly shape: Shape;
  readonly data: Float32Array;

  constructor(shape: Shape, data?: Float32Array) {
    for (const s of shape) {
      if (!Number.isSafeInteger(s) || s < 0) throw new RangeError(`invalid shape ${shapeString(shape)}`);
    }
    this.shape = Object.freeze([...shape]);
    const n = numel(shape);
    if (data && data.length !== n) {
      throw new RangeError(`shape ${shapeString(shape)} needs ${n} values, got ${data.length}`);
    }
    this.data = data ?? new Float32Array(n);
  }

  static zeros(shape: Shape): Tensor {
    return new Tensor(shape);
  }

  static from(shape: Shape, values: ArrayLike<number>): Tensor {
    return new Tensor(shape, Float32Array.from(values));
  }

  get numel(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Size of dimension i (negative counts from the end). */
  dim(i: number): number {
    const s = this.shape[i < 0 ? this.shape.length + i : i];
    if (s === undefined) throw new RangeError(`tensor of rank ${this.rank} has no dimension ${i}`);
    return s;
  }

  /** A view with another shape over the same data. */
  reshape(shape: Shape): Tensor {
    return new Tensor(shape, this.data);
  }

  /** Row i of a matrix (a view). */
  row(i: number): Float32Array {
    const cols = this.dim(-1);
    return this.data.subarray(i * cols, (i + 1) * cols);
  }

  /** Rows [start, end) of the leading dimension (a view). */
  slice(start: number, end: number): Tensor {
    const inner = this.numel / (this.shape[0] ?? 1);
    return new Tensor([end - start, ...this.shape.slice(1)], this.data.subarray(start * inner, end * inner));
  }

  clone(): Tensor {
    return new Tensor(this.shape, this.data.slice());
  }

  /** The transpose of a matrix [r, c] -> [c, r] (a copy). */
  transpose(): Tensor {
    if (this.rank !== 2) throw new RangeError(`transpose needs a matrix, got shape ${shapeString(this.shape)}`);
    const [r, c] = this.shape as [number, number];
    const out = new Float32Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = this.data[i * c + j]!;
    return new Tensor([c, r], out);
  }

  /** Throws naming `what` unless this tensor has exactly the expected shape. */
  expectShape(expected: Shape, what: string): this {
    if (expected.length !== this.shape.length || expected.some((s, i) => s !== this.shape[i])) {
      throw new RangeError(`${what}: expected shape ${shapeString(expected)}, got ${shapeString(this.shape)}`);
    }
    return this;
  }
}
