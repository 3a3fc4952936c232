/**
 * llama2.c's tokenizer format (tokenizer.bin, tok512.bin): an int32 max token length, then
 * per token a float32 merge score, an int32 byte length and the bytes. Encoding follows
 * run.c's encode(): a dummy-prefix space, UTF-8 code points looked up whole with byte
 * fallback (byte b -> id b + 3, SentencePiece's <0xXX> tokens), then repeatedly merging
 * the adjacent pair whose concatenation is the highest-scoring vocabulary entry. Decoding
 * follows run.c's decode(): <0xXX> pieces become raw bytes, and the space after BOS drops.
 */
import { readFileSync } from "node:fs";
import type { TextTokenizer } from "./tokenizer.js";

export const LLAMA2C_BOS = 1;
export const LLAMA2C_EOS = 2;

export class Llama2cTokenizer implements TextTokenizer {
  readonly pieces: Buffer[];
  readonly scores: Float32Array;
  private readonly lookup = new Map<string, number>();

  constructor(pieces: Buffer[], scores: Float32Array) {
    this.pieces = pieces;
    this.scores = scores;
    // Keys are the pieces' bytes as latin1 strings (one char per byte); the first id wins.
    pieces.forEach((p, i) => {
      const key = p.toString("latin1");
      if (!this.lookup.has(key)) this.lookup.set(key, i);
    });
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  tokenId(token: string): number | undefined {
    return this.lookup.get(Buffer.from(token, "utf8").toString("latin1"));
  }

  encode(text: string): number[] {
    if (text.length === 0) return [];
    const ids: number[] = [];
    const space = this.lookup.get(" ");
    if (space !== undefined) ids.push(space);
    const bytes = Buffer.from(text, "utf8");
    for (let i = 0; i < bytes.length;) {
      // One UTF-8 code point: a lead byte and its continuation bytes (10xxxxxx).
      let j = i + 1;
      while (j < bytes.length && (bytes[j]! & 0xc0) === 0x80 && j - i < 4) j++;
      const cp = bytes.subarray(i, j);
      const id = this.lookup.get(cp.toString("latin1"));
      if (id !== undefined) ids.push(id);
      else for (const b of cp) ids.push(b + 3);
      i = j;
    }
    // Greedy merges: the best-scoring pair anywhere, leftmost on ties, until none applies.
    for (;;) {
      let best = -1e10; // run.c's starting score: pairs scoring below it never merge
      let bestId = -1;
      let bestAt = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const key = this.pieces[ids[i]!]!.toString("latin1") + this.pieces[ids[i + 1]!]!.toString("latin1");
        const id = this.lookup.get(key);
        if (id !== undefined && this.scores[id]! > best) {
          best = this.scores[id]!;
          bestId = id;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      ids.splice(bestAt, 2, bestId);
    }
    return ids;
  }

  /** The bytes one token stands for after `prev` (run.c's decode). */
  pieceBytes(prev: number, token: number): Buffer {
    let piece = this.pieces[token];
    if (!piece) throw new RangeError(`token id ${token} is outside the vocabulary (size ${this.pieces.length})`);
    if (prev === LLAMA2C_BOS && piece[0] === 0x20) piece = piece.subarray(1);
    const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece.toString("latin1"));
    return m ? Buffer.from([parseInt(m[1]!, 16)]) : piece;
  }

  decode(ids: ArrayLike<number>): string {
    const parts: Buffer[] = [];
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
    return Buffer.concat(parts).toString("utf8");
  }
}

export function loadLlama2cTokenizer(path: string, vocabSize?: number): Llama2cTokenizer {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: cannot read the tokenizer (${(err as Error).message})`);
  }
  const fail = (why: string): never => { throw new Error(`${path}: not a llama2.c tokenizer: ${why}`); };
  if (buf.length < 4) fail("too short");
  const maxLen = buf.readInt32LE(0);
  if (!(maxLen > 0 && maxLen < 1 << 16)) fail(`max token length ${maxLen} is implausible`);
  const pieces: Buffer[] = [];
  const scores: number[] = [];
  let at = 4;
  while (at < buf.length && (vocabSize === undefined || pieces.length < vocabSize)) {
    if (at + 8 > buf.length) fail(`entry ${pieces.length} is cut off`);
    const score = buf.readFloatLE(at);
    const len = buf.readInt32LE(at + 4);
    at += 8;
    if (!(len >= 0 && len <= maxLen && at + len <= buf.length)) fail(`entry ${pieces.length} has length ${len}`);
    pieces.push(buf.subarray(at, at + len));
    scores.push(score);
    at += len;
  }
  if (pieces.length === 0) fail("no tokens");
  return new Llama2cTokenizer(pieces, Float32Array.from(scores));
}
