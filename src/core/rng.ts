/**
 * Seeded random numbers with a state that can be saved and restored, so a resumed training
 * run continues the exact same random stream as an uninterrupted one.
 *
 * Two generators:
 * - `Rng`: a sequential xoshiro128** stream (shuffles, initialisation, sampling).
 * - `counterNormal`: a counter-based Gaussian, normal(seed, stream, i), for filling large
 *   noise tensors in native code on many threads; value i depends only on (seed, stream, i),
 *   so the result does not depend on the thread count. kernels.fillNormal is its native twin.
 */

/** splitmix32: turns any 32-bit seed into well-mixed state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export interface RngState {
  s: [number, number, number, number];
  spare: number | null;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    const st = { s: seed | 0 };
    this.s0 = splitmix32(st);
    this.s1 = splitmix32(st);
    this.s2 = splitmix32(st);
    this.s3 = splitmix32(st);
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    [r.s0, r.s1, r.s2, r.s3] = state.s;
    r.spare = state.spare;
    return r;
  }

  state(): RngState {
    return { s: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  /** xoshiro128**: a uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  fillNormal(out: Float32Array, scale = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal() * scale;
    return out;
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// ------------------------------------------------------------ counter-based Gaussian noise

/** lowbias32 (Wellons' hash-prospector): a 32-bit integer hash with strong avalanche. */
export function hash32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x21f0aaad);
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** The two per-call keys of counterNormal's stream (the native kernel derives the same). */
export function counterKeys(seed: number, stream: number): [number, number] {
  const k1 = hash32((Math.imul(seed, 0x9e3779b9) ^ hash32(stream >>> 0)) >>> 0);
  const k2 = hash32((k1 ^ 0x85ebca6b) >>> 0);
  return [k1, k2];
}

/** The 32-bit random word number i of a stream. */
export function counterWord(k1: number, k2: number, i: number): number {
  return hash32((hash32((i + k1) >>> 0) ^ k2) >>> 0);
}

/**
 * Normal number i of stream (seed, stream): Box-Muller on words 2p and 2p+1 of pair
 * p = floor(i/2), cos for even i, sin for odd. Uniforms have 24 bits, u1 in (0, 1].
 */
export function counterNormal(seed: number, stream: number, i: number): number {
  const [k1, k2] = counterKeys(seed, stream);
  const p = Math.floor(i / 2);
  const u1 = ((counterWord(k1, k2, 2 * p) >>> 8) + 1) / 16777216;
  const u2 = (counterWord(k1, k2, 2 * p + 1) >>> 8) / 16777216;
  const r = Math.sqrt(-2 * Math.log(u1));
  return i % 2 === 0 ? r * Math.cos(2 * Math.PI * u2) : r * Math.sin(2 * Math.PI * u2);
}
