/**
 * llama2.c's tokenizer format (tokenizer.bin, tok512.bin): an int32 max token length, then
 * per token a float32 merge score, an int32 byte length and the bytes. Encoding follows
 * run.c's encode(): a dummy-prefix space, UTF-8 code points looked up whole with byte
 * fallback (byte b -> id b + 3, SentencePiece's <0xXX> tokens), then repeatedly merging
 * the adjacent pair whose concatenation is the highest-scoring vocabulary entry. Decoding
 * follows run.c's decode(): <0xXX> pieces become raw bytes, and the space after BOS drops.
 */
import { concatBytes, latin1 } from "../core/bytes.js";
import type { TextTokenizer } from "./tokenizer.js";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export const LLAMA2C_BOS = 1;
export const LLAMA2C_EOS = 2;

export class Llama2cTokenizer implements TextTokenizer {
  readonly pieces: Uint8Array[];
  readonly scores: Float32Array;
  private readonly lookup = new Map<string, number>();
  /** (left id * vocab + right id) -> the id of their concatenation, when it is a token. */
  private readonly pairs = new Map<number, number>();
  /** What each token decodes to: after any token, and right after BOS (leading space dropped). */
  private readonly decoded: Uint8Array[];
  private readonly decodedAfterBos: Uint8Array[];

  constructor(pieces: Uint8Array[], scores: Float32Array) {
    this.pieces = pieces;
    this.scores = scores;
    // <0xXX> pieces stand for the raw byte XX.
    const resolve = (piece: Uint8Array) => {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(latin1(piece));
      return m ? Uint8Array.of(parseInt(m[1]!, 16)) : piece;
    };
    this.decoded = pieces.map(resolve);
    this.decodedAfterBos = pieces.map((p) => resolve(p[0] === 0x20 ? p.subarray(1) : p));
    // Keys are the pieces' bytes as latin1 strings (one char per byte); the first id wins.
    pieces.forEach((p, i) => {
      const key = latin1(p);
      if (!this.lookup.has(key)) this.lookup.set(key, i);
    });
    // Every way to split a token into two tokens is a merge that produces it.
    for (const [key, merged] of this.lookup) {
      for (let cut = 1; cut < key.length; cut++) {
        const a = this.lookup.get(key.slice(0, cut));
        const b = this.lookup.get(key.slice(cut));
        if (a !== undefined && b !== undefined) this.pairs.set(a * pieces.length + b, merged);
      }
    }
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  tokenId(token: string): number | undefined {
    return this.lookup.get(latin1(utf8.encode(token)));
  }

  encode(text: string): number[] {
    if (text.length === 0) return [];
    const ids: number[] = [];
    const space = this.lookup.get(" ");
    if (space !== undefined) ids.push(space);
    const bytes = utf8.encode(text);
    for (let i = 0; i < bytes.length;) {
      // One UTF-8 code point: a lead byte and its continuation bytes (10xxxxxx).
      let j = i + 1;
      while (j < bytes.length && (bytes[j]! & 0xc0) === 0x80 && j - i < 4) j++;
      const cp = bytes.subarray(i, j);
      const id = this.lookup.get(latin1(cp));
      if (id !== undefined) ids.push(id);
      else for (const b of cp) ids.push(b + 3);
      i = j;
    }
    return this.merge(ids);
  }

  /**
   * run.c's merge loop — repeatedly merge the adjacent pair whose concatenation is the
   * highest-scoring vocabulary entry, the leftmost on ties — in O(n log n): symbols form a
   * linked list, candidate merges sit in a heap ordered by (score desc, position asc), and
   * a popped candidate is used only if both its symbols are still as they were pushed.
   */
  private merge(input: number[]): number[] {
    const n = input.length;
    const id = Int32Array.from(input);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const heap = new MergeHeap();
    const consider = (left: number) => {
      const right = left < 0 ? -1 : next[left]!;
      if (right < 0) return;
      const merged = this.pairs.get(id[left]! * this.pieces.length + id[right]!);
      if (merged !== undefined && this.scores[merged]! > -1e10) heap.push(this.scores[merged]!, left, right, id[left]!, id[right]!, merged);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let c = heap.pop(); c; c = heap.pop()) {
      if (id[c.left] !== c.leftId || next[c.left] !== c.right || id[c.right] !== c.rightId) continue; // stale
      id[c.left] = c.merged;
      id[c.right] = -1;
      const after = next[c.right]!;
      next[c.left] = after;
      if (after >= 0) prev[after] = c.left;
      consider(prev[c.left]!);
      consider(c.left);
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) out.push(id[i]!);
    return out;
  }

  /** The bytes one token stands for after `prev` (run.c's decode). */
  pieceBytes(prev: number, token: number): Uint8Array {
    const bytes = (prev === LLAMA2C_BOS ? this.decodedAfterBos : this.decoded)[token];
    if (!bytes) throw new RangeError(`token id ${token} is outside the vocabulary (size ${this.pieces.length})`);
    return bytes;
  }

  decode(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    let prev = -1;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === LLAMA2C_BOS || id === LLAMA2C_EOS) {
        prev = id;
        continue;
      }
      parts.push(this.pieceBytes(prev, id));
      prev = id;
    }
    return fromUtf8.decode(concatBytes(parts));
  }
}

/** A llama2.c tokenizer file's bytes (`path` names it in errors); `vocabSize` stops early. */
export function llama2cTokenizerFromBytes(buf: Uint8Array, path: string, vocabSize?: number): Llama2cTokenizer {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const fail = (why: string): never => { throw new Error(`${path}: not a llama2.c tokenizer: ${why}`); };
  if (buf.length < 4) fail("too short");
  const maxLen = view.getInt32(0, true);
  if (!(maxLen > 0 && maxLen < 1 << 16)) fail(`max token length ${maxLen} is implausible`);
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let at = 4;
  while (at < buf.length && (vocabSize === undefined || pieces.length < vocabSize)) {
    if (at + 8 > buf.length) fail(`entry ${pieces.length} is cut off`);
    const score = view.getFloat32(at, true);
    const len = view.getInt32(at + 4, true);
    at += 8;
    if (!(len >= 0 && len <= maxLen && at + len <= buf.length)) fail(`entry ${pieces.length} has length ${len}`);
    pieces.push(buf.subarray(at, at + len));
    scores.push(score);
    at += len;
  }
  if (pieces.length === 0) fail("no tokens");
  return new Llama2cTokenizer(pieces, Float32Array.from(scores));
}

interface MergeCandidate {
  score: number;
  left: number;
  right: number;
  leftId: number;
  rightId: number;
  merged: number;
}

/** A binary max-heap of merge candidates: higher score first, then lower position. */
class MergeHeap {
  private readonly items: MergeCandidate[] = [];

  private static before(a: MergeCandidate, b: MergeCandidate): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(score: number, left: number, right: number, leftId: number, rightId: number, merged: number): void {
    const items = this.items;
    items.push({ score, left, right, leftId, rightId, merged });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!MergeHeap.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): MergeCandidate | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && MergeHeap.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && MergeHeap.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}
