/**
 * Karpathy's stories260K (a real Llama-2-style model trained on TinyStories, llama2.c
 * format) against the reference JSON in ../shared/data/stories260K, computed by an
 * independent re-implementation of llama2.c's run.c: teacher-forced logits, the residual
 * stream after every layer, the tokenizer's encodings and 200 tokens of greedy generation.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { LanguageModel } from "../../src/lm/model.js";
import type { TextTokenizer } from "../../src/lm/tokenizer.js";
import { openContexts } from "../../src/lm/dataset.js";
import { generate } from "../../src/lm/generate.js";
import type { Llama2cTokenizer } from "../../src/lm/llama2c-tokenizer.js";
import { latin1 } from "../../src/core/bytes.js";
import { readDocuments } from "../../src/data/text.js";
import { loadLlama2cTokenizer, loadModel } from "../../src/lm/load.js";
import { sharedData, tempDir } from "../helpers.js";

const root = sharedData("stories260K");
const bin = join(import.meta.dirname, "..", "..", "bin", "saekit.js");

describe.skipIf(!root)("stories260K (llama2.c)", () => {
  const dir = tempDir();
  // Loaded before the tests (not while collecting them), so a checkout without
  // ../shared/data skips this suite instead of failing to collect it.
  let ref: any;
  let model: LanguageModel;
  let tokenizer: TextTokenizer | null;
  beforeAll(async () => {
    ref = JSON.parse(readFileSync(join(root!, "stories260K_reference.json"), "utf8"));
    ({ model, tokenizer } = await loadModel(join(root!, "stories260K.bin"), { tokenizer: join(root!, "tok512.bin") }));
  });

  it("reads the legacy header: dim 64, 5 layers, 8 heads sharing 4 kv heads, 512 tokens, shared classifier", () => {
    expect(model.cfg).toMatchObject({ dModel: 64, dMlp: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxPositions: 512, tiedEmbeddings: true });
  });

  it("teacher-forced logits and every layer's residual stream match the reference", () => {
    const tokens = Int32Array.from(ref.teacher_forced.input_tokens as number[]);
    const T = tokens.length;
    const resid: Float32Array[] = [];
    const hooks: Record<string, (a: Float32Array) => void> = { hook_embed: (a) => { resid[0] = a.slice(); } };
    for (let l = 0; l < 5; l++) hooks[`blocks.${l}.hook_resid_post`] = (a) => { resid[l + 1] = a.slice(); };
    const logits = model.forward(tokens, 1, T, { hooks }).logits!;
    let worst = 0;
    let scale = 0;
    ref.teacher_forced.logits.forEach((row: number[], t: number) => row.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(logits[t * 512 + j]! - v));
      scale = Math.max(scale, Math.abs(v));
    }));
    expect(worst / scale).toBeLessThan(1e-4);
    ref.teacher_forced.resid.forEach((layers: number[][], t: number) => layers.forEach((vec, l) => {
      vec.forEach((v, c) => expect(Math.abs(resid[l]![t * 64 + c]! - v)).toBeLessThan(1e-4 * (1 + Math.abs(v))));
    }));
  });

  it("encodes like run.c's encode (BOS, dummy prefix, byte fallback, greedy merges) and decodes back", () => {
    for (const [text, ids] of Object.entries(ref.encode_examples.examples as Record<string, number[]>)) {
      expect([1, ...tokenizer!.encode(text)], text).toEqual(ids);
      expect(tokenizer!.decode(ids)).toBe(text);
    }
    // Characters outside the vocabulary fall back to byte tokens (UTF-8 byte + 3).
    const emoji = tokenizer!.encode("🦙");
    expect(emoji.slice(-4)).toEqual([...Buffer.from("🦙")].map((b) => b + 3));
    expect(tokenizer!.decode([1, ...emoji])).toBe("🦙");
  });

  it("the O(n log n) merge equals run.c's quadratic loop on real stories and odd strings", async () => {
    const tok = tokenizer as Llama2cTokenizer;
    /** run.c's encode, literally: rescan every adjacent pair after every merge. */
    const naive = (text: string): number[] => {
      const ids: number[] = [];
      const key = (i: number) => latin1(tok.pieces[i]!);
      const lookup = new Map<string, number>();
      tok.pieces.forEach((p, i) => { if (!lookup.has(latin1(p))) lookup.set(latin1(p), i); });
      if (text) ids.push(lookup.get(" ")!);
      for (const ch of text) {
        const bytes = Buffer.from(ch, "utf8");
        const id = lookup.get(bytes.toString("latin1"));
        if (id !== undefined) ids.push(id);
        else for (const b of bytes) ids.push(b + 3);
      }
      for (;;) {
        let best = -1e10, bestId = -1, at = -1;
        for (let i = 0; i + 1 < ids.length; i++) {
          const id = lookup.get(key(ids[i]!) + key(ids[i + 1]!));
          if (id !== undefined && tok.scores[id]! > best) { best = tok.scores[id]!; bestId = id; at = i; }
        }
        if (at < 0) return ids;
        ids.splice(at, 2, bestId);
      }
    };
    const texts: string[] = ["", "a", "aaaaaaaa", "   spaces   ", "Ünïcödé 🦙 日本語", "the the the theatre"];
    const stories = sharedData("tinystories/tinystories_train_first2MiB.txt");
    if (stories) {
      for await (const d of readDocuments(stories)) {
        texts.push(d);
        if (texts.length > 40) break;
      }
    }
    for (const t of texts) expect(tok.encode(t), t.slice(0, 40)).toEqual(naive(t));
  });

  it("greedy generation from BOS reproduces the reference's 200 tokens and text", () => {
    const out = generate(model, [1], { maxNew: 200 });
    expect([1, ...out]).toEqual(ref.greedy.tokens);
    expect(tokenizer!.decode([1, ...out])).toBe(ref.greedy.text);
  });

  it("saekit generate: the reference's text with the tokenizer, its ids from BOS without one", () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, "generate", "--model", join(root!, "stories260K.bin"), ...args], { encoding: "utf8" });
    const text = run("--tokenizer", join(root!, "tok512.bin"), "--max-new", "200");
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toBe(`${ref.greedy.text}\n`);
    const ids = run("--max-new", "40");
    expect(ids.stdout.trim().split(" ").map(Number)).toEqual(ref.greedy.tokens.slice(0, 41));
    expect(run("--prompt", "Once").stderr).toMatch(/has no tokenizer to encode --prompt; pass --tokens or --tokenizer/);
  });

  it("reads the versioned (v1, magic ak42) export the same as the legacy one", async () => {
    // Re-lay stories260K's weights out as llama2.c's version1_export writes them.
    const w = model.weights;
    const L = 5, dim = 64, kv = 32;
    const floats: Float32Array[] = [];
    for (const b of w.blocks) floats.push(b.ln1!.w);
    for (const b of w.blocks) floats.push(b.ln2!.w);
    // The model keeps float32 weights unless told otherwise (storeWeightsAs).
    floats.push(w.lnFinal!.w, w.embed as Float32Array);
    for (const [from, to] of [[0, dim * dim], [dim * dim, (dim + kv) * dim], [(dim + kv) * dim, (dim + 2 * kv) * dim]]) {
      for (const b of w.blocks) floats.push((b.wqkv as Float32Array).subarray(from!, to!));
    }
    for (const key of ["wo", "wgate", "wdown", "wup"] as const) for (const b of w.blocks) floats.push(b[key] as Float32Array);
    const header = Buffer.alloc(256);
    header.writeUInt32LE(0x616b3432, 0);
    header.writeInt32LE(1, 4);
    [dim, 172, L, 8, 4, 512, 512].forEach((v, i) => header.writeInt32LE(v, 8 + 4 * i));
    header.writeUInt8(1, 36); // shared classifier
    const body = Buffer.concat(floats.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)));
    const path = join(dir, "stories260K-v1.bin");
    writeFileSync(path, Buffer.concat([header, body]));
    const v1 = (await loadModel(path)).model;
    const tokens = Int32Array.from(ref.teacher_forced.input_tokens as number[]);
    expect(v1.forward(tokens, 1, tokens.length).logits).toEqual(model.forward(tokens, 1, tokens.length).logits);
  });

  it("samples contexts from the model itself (sampled:N): from BOS, seeded, independent of batching", async () => {
    const loaded = await loadModel(join(root!, "stories260K.bin"));
    const take = async (spec: string) => {
      const out: number[][] = [];
      for await (const c of openContexts(loaded, spec, { ctx: 24, prependBos: true }).contexts) out.push([...c]);
      return out;
    };
    const a = await take("sampled:3:7");
    expect(a).toHaveLength(3);
    for (const c of a) {
      expect(c).toHaveLength(24);
      expect(c[0]).toBe(1);
    }
    expect(await take("sampled:3:7")).toEqual(a);
    expect(await take("sampled:3:8")).not.toEqual(a);
    // Sequence b's tokens come from its own stream, so a longer run starts the same way.
    expect((await take("sampled:5:7")).slice(0, 3)).toEqual(a);
  });

  it("names the problem in a truncated checkpoint or tokenizer", async () => {
    const bin = readFileSync(join(root!, "stories260K.bin"));
    writeFileSync(join(dir, "cut.bin"), bin.subarray(0, 50_000));
    await expect(loadModel(join(dir, "cut.bin"))).rejects.toThrow(/cut.bin: not a usable llama2.c checkpoint: file ends inside/);
    const tok = readFileSync(join(root!, "tok512.bin"));
    writeFileSync(join(dir, "cut-tok.bin"), tok.subarray(0, 1001));
    expect(() => loadLlama2cTokenizer(join(dir, "cut-tok.bin"))).toThrow(/cut-tok.bin: not a llama2.c tokenizer: entry \d+/);
  });
});
