/** Text datasets and context packing. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Field, FixedSizeList, Int32, Int64, LargeList, List, Table, tableToIPC, Utf8, vectorFromArray } from "apache-arrow";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { contextsFromItems, packContexts, splitDocuments } from "../../src/data/contexts.js";
import { readLabeledTexts } from "../../src/data/labeled.js";
import { readDocuments, readItems } from "../../src/data/text.js";
import type { TextTokenizer } from "../../src/lm/tokenizer.js";
import { sharedData, tempDir } from "../helpers.js";

const dir = tempDir();

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

/** One token per character: code point = id. */
const charTokenizer: TextTokenizer = {
  vocabSize: 0x10000,
  encode: (t) => [...t].map((c) => c.codePointAt(0)!),
  decode: (ids) => String.fromCodePoint(...Array.from(ids)),
  tokenId: () => undefined,
};

describe("text datasets", () => {
  it("splits .txt on <|endoftext|>, on blank lines, or by line", async () => {
    const eot = join(dir, "eot.txt");
    writeFileSync(eot, "One story.\nStill one.<|endoftext|>\nTwo.\n<|endoftext|>\n\n<|endoftext|>Three");
    expect(await all(readDocuments(eot))).toEqual(["One story.\nStill one.", "Two.", "Three"]);
    const blank = join(dir, "blank.txt");
    writeFileSync(blank, "a b\nc\n\n\nd\n \ne");
    expect(await all(readDocuments(blank))).toEqual(["a b\nc", "d", "e"]);
    expect(await all(readDocuments(blank, { split: "line" }))).toEqual(["a b", "c", "d", "e"]);
    // Text already in memory (the browser) splits exactly as the file does.
    const { readFileSync } = await import("node:fs");
    for (const [file, split] of [[eot, "auto"], [blank, "auto"], [blank, "line"]] as const) {
      expect(splitDocuments(readFileSync(file, "utf8"), split)).toEqual(await all(readDocuments(file, { split })));
    }
  });

  it("streams files bigger than its read chunk without splitting characters", async () => {
    const big = join(dir, "big.txt");
    const story = "Ünïcödé stories — 🦙 ".repeat(5000);
    writeFileSync(big, Array.from({ length: 30 }, () => story).join("<|endoftext|>"));
    const docs = await all(readDocuments(big));
    expect(docs).toHaveLength(30);
    expect(docs.every((d) => d === story.trim())).toBe(true);
  });

  it("reads .jsonl text fields and names the bad line", async () => {
    const jsonl = join(dir, "d.jsonl");
    writeFileSync(jsonl, '{"text": "first"}\n\n{"text": "second", "id": 2}\n');
    expect(await all(readDocuments(jsonl))).toEqual(["first", "second"]);
    const other = join(dir, "o.jsonl");
    writeFileSync(other, '{"story": "x"}\n');
    expect(await all(readDocuments(other, { textField: "story" }))).toEqual(["x"]);
    await expect(all(readDocuments(other))).rejects.toThrow(/o.jsonl:1: no field "text" \(set --text-field\), and no tokens \/ input_ids field/);
    // A null text is a missing value, skipped like an empty one; a number is not text.
    const nulls = join(dir, "n.jsonl");
    writeFileSync(nulls, '{"text": "a"}\n{"text": null}\n{"text": "  "}\n{"text": "b"}\n{"text": 5}\n');
    const seen: string[] = [];
    await expect((async () => { for await (const d of readDocuments(nulls)) seen.push(d); })()).rejects.toThrow(/n.jsonl:5: no string field "text"/);
    expect(seen).toEqual(["a", "b"]);
    const broken = join(dir, "b.jsonl");
    writeFileSync(broken, '{"text": "ok"}\n{oops\n');
    await expect(all(readDocuments(broken))).rejects.toThrow(/b.jsonl:2: not valid JSON/);
  });

  it("reads a parquet text column across row groups", async () => {
    const texts = Array.from({ length: 2500 }, (_, i) => `story number ${i}`);
    const buf = parquetWriteBuffer({ columnData: [{ name: "text", data: texts }, { name: "n", data: texts.map((_, i) => i) }], rowGroupSize: 1000 });
    const path = join(dir, "train.parquet");
    writeFileSync(path, new Uint8Array(buf));
    expect(await all(readDocuments(path))).toEqual(texts);
    await expect(all(readDocuments(path, { textField: "story" }))).rejects.toThrow(/no column "story" \(has text, n\)/);
    const junk = join(dir, "junk.parquet");
    writeFileSync(junk, "not parquet at all");
    await expect(all(readDocuments(junk))).rejects.toThrow(/junk.parquet: not a readable parquet file/);
  });

  it("reads pretokenized datasets as SAELens does: a tokens / input_ids field ahead of the text", async () => {
    const jsonl = join(dir, "tok.jsonl");
    writeFileSync(jsonl, '{"tokens": [5, 6, 7], "text": "ignored"}\n{"tokens": [8, 9, 10]}\n');
    expect((await all(readItems(jsonl))).map((r) => [...(r as Int32Array)])).toEqual([[5, 6, 7], [8, 9, 10]]);
    await expect(all(readDocuments(jsonl))).rejects.toThrow(/tok.jsonl: a pretokenized dataset \(a tokens \/ input_ids field\)/);
    const bad = join(dir, "bad-tok.jsonl");
    writeFileSync(bad, '{"input_ids": [1, -2]}\n');
    await expect(all(readItems(bad))).rejects.toThrow(/bad-tok.jsonl:1: token 1 is -2, not a token id/);
    // A parquet list<int64> column (as datasets' map(tokenize) writes input_ids), int64 read as bigint.
    const buf = parquetWriteBuffer({
      columnData: [{ name: "input_ids", data: [[1n, 2n, 3n, 4n], [5n, 6n, 7n, 8n]] }, { name: "text", data: ["a", "b"] }],
      schema: [
        { name: "root", num_children: 2 },
        { name: "input_ids", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: "INT64", repetition_type: "REQUIRED" },
        { name: "text", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
      ],
    });
    const pq = join(dir, "tok.parquet");
    writeFileSync(pq, new Uint8Array(buf));
    expect((await all(readItems(pq))).map((r) => [...(r as Int32Array)])).toEqual([[1, 2, 3, 4], [5, 6, 7, 8]]);
  });

  it("reads datasets saved to disk (Arrow, as datasets' save_to_disk and SAELens' pretokenize runner write them)", async () => {
    // A text dataset in two files, in the order state.json lists them (not name order), with a null and an empty text.
    const saved = join(dir, "saved-text");
    mkdirSync(saved);
    const texts = [["first story", null, "second story"], ["", "third story"]];
    texts.forEach((t, i) => writeFileSync(join(saved, `part-${i}.arrow`),
      tableToIPC(new Table({ text: vectorFromArray(t, new Utf8()), id: vectorFromArray(t.map((_, j) => j), new Int32()) }), "stream")));
    writeFileSync(join(saved, "state.json"), JSON.stringify({ _data_files: [{ filename: "part-1.arrow" }, { filename: "part-0.arrow" }] }));
    expect(await all(readDocuments(saved))).toEqual(["third story", "first story", "second story"]);
    await expect(all(readItems(saved, { textField: "story" }))).rejects.toThrow(/part-1\.arrow: no column "story" \(has text, id\); set --text-field/);
    // Pretokenized: input_ids as list<int32>, large list<int64> and fixed-size list<int32>, ahead of the text.
    const rows = [[5, 6, 7, 8], [9, 10, 11, 12], [1, 2, 3, 4]];
    const ids = {
      list: vectorFromArray(rows, new List(new Field("item", new Int32(), true))),
      large: vectorFromArray(rows.map((r) => r.map(BigInt)), new LargeList(new Field("item", new Int64(), true))),
      fixed: vectorFromArray(rows, new FixedSizeList(4, new Field("item", new Int32(), true))),
    };
    for (const [kind, column] of Object.entries(ids)) {
      const file = join(dir, `ids-${kind}.arrow`);
      writeFileSync(file, tableToIPC(new Table({ input_ids: column, text: vectorFromArray(["a", "b", "c"], new Utf8()) }), kind === "fixed" ? "file" : "stream"));
      expect((await all(readItems(file))).map((r) => [...(r as Int32Array)]), kind).toEqual(rows);
    }
    // Corrupted files are refused with their name, never a crash or a hang.
    const good = tableToIPC(new Table({ text: vectorFromArray(["one story", null, "another one"], new Utf8()), input_ids: ids.list }), "stream");
    const bad = join(dir, "bad.arrow");
    let refused = 0;
    for (let trial = 0; trial < 300; trial++) {
      const bytes = good.slice();
      for (let f = 0; f <= trial % 3; f++) bytes[(trial * 7919 + f * 104729) % bytes.length] ^= 1 << ((trial + f) % 8);
      writeFileSync(bad, bytes);
      try {
        await all(readItems(bad));
      } catch (err) {
        refused++;
        expect((err as Error).constructor, (err as Error).stack).toBe(Error);
        expect((err as Error).message).toContain(bad);
      }
    }
    expect(refused).toBeGreaterThan(10);
    // A labelled one (probing): text beside an int64 class label, as a ClassLabel saves it.
    const labeled = join(dir, "labeled.arrow");
    writeFileSync(labeled, tableToIPC(new Table({
      text: vectorFromArray(["a cat", null, "a dog"], new Utf8()), label: vectorFromArray([2n, 0n, 1n], new Int64()),
    }), "stream"));
    expect(await readLabeledTexts(labeled)).toEqual([{ text: "a cat", label: "2" }, { text: "a dog", label: "1" }]);
    await expect(readLabeledTexts(labeled, { labelField: "topic" })).rejects.toThrow(/no column "topic" \(has text, label\); set --text-field \/ --label-field/);
  });

  // Files DuckDB wrote (test/fixtures/parquet/make_fixtures.mjs): zstd, gzip and V2 pages with
  // delta-encoded int64 lists, several row groups, a dictionary-encoded label and null texts.
  const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/parquet/${name}`, import.meta.url));
  it("reads parquet files another writer made: text with nulls across row groups, int64 token lists", async () => {
    const story = (i: number) => `Once upon a time there was a cat number ${i}. It liked fish.`;
    const rows = Array.from({ length: 3000 }, (_, i) => i).filter((i) => i % 1000 !== 500);
    expect(await all(readDocuments(fixture("text-zstd.parquet")))).toEqual(rows.map(story));
    const labels = ["world", "sports", "business", "tech"];
    expect(await readLabeledTexts(fixture("text-zstd.parquet"))).toEqual(rows.map((i) => ({ text: story(i), label: labels[i % 4] })));
    const expected = Array.from({ length: 200 }, (_, r) => Array.from({ length: 64 }, (_, j) => (7 * j + r) % 500));
    for (const name of ["ids-int64-gzip.parquet", "ids-int64-v2-zstd.parquet"]) {
      expect((await all(readItems(fixture(name)))).map((row) => [...(row as Int32Array)])).toEqual(expected);
    }
  });

  const tiny = sharedData("tinystories/tinystories_train_first2MiB.txt");
  it.skipIf(!tiny)("reads the real TinyStories sample as 2,316 stories and the truncated 2,317th", async () => {
    const docs = await all(readDocuments(tiny!));
    expect(docs.length).toBe(2317);
    expect(docs[0]).toMatch(/^One day, a little girl named Lily/);
  });
});

describe("context packing", () => {
  async function* docs(...d: string[]) { yield* d; }

  it("prepends BOS to every context and separates documents with it, as SAELens does", async () => {
    const ctxs = await all(packContexts(docs("abcde", "fg", "hijklm"), charTokenizer, { ctx: 4, bos: 1 }));
    const c = (s: string) => [...s].map((ch) => (ch === "|" ? 1 : ch.codePointAt(0)!));
    // stream: a b c d e | f g | h i j k l m  -> contexts of BOS + 3 stream tokens.
    expect(ctxs.map((x) => [...x])).toEqual([
      [1, ...c("abc")], [1, ...c("de|")], [1, ...c("fg|")], [1, ...c("hij")], [1, ...c("klm")],
    ]);
  });

  it("without BOS, contexts are plain windows of the stream", async () => {
    const ctxs = await all(packContexts(docs("abcd", "efgh"), charTokenizer, { ctx: 3, bos: null }));
    // No separator either; the incomplete tail "gh" is not a context.
    expect(ctxs.map((x) => String.fromCodePoint(...x))).toEqual(["abc", "def"]);
  });
});

describe("contexts from pretokenized rows", () => {
  async function* items(...rows: Array<number[] | string>) { for (const r of rows) yield typeof r === "string" ? r : Int32Array.from(r); }
  const o = { ctx: 3, bos: 1, vocabSize: 100, source: "rows" };

  it("takes each row as one context cut to ctx, adding no BOS", async () => {
    const got = await all(contextsFromItems(items([9, 8, 7, 6], [5, 4, 3]), null, o));
    expect(got.map((c) => [...c])).toEqual([[9, 8, 7], [5, 4, 3]]);
  });

  it("refuses short rows, ids outside the vocabulary, a mix with text, and text without a tokenizer", async () => {
    await expect(all(contextsFromItems(items([9, 8, 7], [1, 2]), null, o))).rejects.toThrow("rows: pretokenized row 1 has 2 tokens, fewer than the context size 3");
    await expect(all(contextsFromItems(items([9, 100, 7]), null, o))).rejects.toThrow(/row 0 has token id 100 at position 1, outside the model's vocabulary of 100/);
    await expect(all(contextsFromItems(items([9, 8, 7], "text"), null, o))).rejects.toThrow(/mixes text and token rows/);
    await expect(all(contextsFromItems(items("text"), null, o))).rejects.toThrow(/rows is text and the model has no tokenizer/);
    const packed = await all(contextsFromItems(items("abcde"), charTokenizer, o));
    expect(packed.map((c) => [...c])).toEqual([[1, 97, 98], [1, 99, 100]]);
  });
});
