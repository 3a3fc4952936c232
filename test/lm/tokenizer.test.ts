/**
 * Tokenizers against Hugging Face's expected ids on real vocabularies: GPT-NeoX-20B (the
 * Pythia tokenizer) and GPT-2, 46 strings each (llama.cpp's tokenizer test vectors, in
 * ../shared/data/tokenizers); and tokenizer.json files that must be refused.
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../../src/lm/load.js";
import { specialTokens } from "../../src/lm/special-tokens.js";
import { HfTokenizer, withUnicodeWhitespace } from "../../src/lm/tokenizer.js";
import { sharedData, tempDir } from "../helpers.js";
import { tinyTokenizerJson } from "./fixtures.js";

/** Test strings separated by "\n__ggml_vocab_test__\n"; one line of expected ids each. */
function vectors(inp: string, out: string): Array<[string, number[]]> {
  const texts = readFileSync(inp, "utf8").split("\n__ggml_vocab_test__\n");
  const ids = readFileSync(out, "utf8").split("\n");
  const cases: Array<[string, number[]]> = [];
  for (let i = 0; i < ids.length - 1; i++) {
    cases.push([texts[i]!, ids[i]!.trim() === "" ? [] : ids[i]!.trim().split(/\s+/).map(Number)]);
  }
  return cases;
}

const neox = sharedData("tokenizers/gpt-neox-20b");
const gpt2 = sharedData("tokenizers/gpt2");

describe.skipIf(!neox)("GPT-NeoX-20B tokenizer (Pythia)", () => {
  it("encodes all 46 test strings to Hugging Face's ids and decodes them back", () => {
    const tok = loadTokenizer(join(neox!, "20B_tokenizer.json"));
    const cases = vectors(join(neox!, "neox-tokenizer-tests.inp"), join(neox!, "neox-tokenizer-tests.out"));
    expect(cases).toHaveLength(46);
    for (const [text, ids] of cases) {
      expect(tok.encode(text), JSON.stringify(text)).toEqual(ids);
      expect(tok.decode(ids)).toBe(text.normalize("NFC"));
    }
    expect(tok.tokenId("<|endoftext|>")).toBe(0);
    expect(tok.vocabSize).toBe(50277);
    // Its special added tokens (not the 23 whitespace runs it also adds), with Pythia's BOS = EOS = 0.
    expect(tok.specialIds).toEqual([0, 1]);
    expect(specialTokens({ bosTokenId: 0, eosTokenId: 0 }, tok)).toEqual([0, 1]);
    expect(specialTokens({ bosTokenId: 2, eosTokenId: null })).toEqual([2]);
  });

  it("pre-tokenizes at Unicode's whitespace as Hugging Face does: U+FEFF (a byte-order mark) is none, U+0085 is", () => {
    // Ids from tokenizers (Rust) 0.23.2; JavaScript's \s would split "\ufeff've" as "\ufeff" + "'ve".
    const tok = loadTokenizer(join(neox!, "20B_tokenizer.json"));
    expect(tok.encode("\ufeffOnce upon a time")).toEqual([41497, 10758, 2220, 247, 673]);
    expect(tok.encode("x\ufeff've")).toEqual([89, 41497, 8, 306]);
    expect(tok.encode("  \ufeff'")).toEqual([50276, 41497, 8]);
    expect(tok.encode("a\x85b  \x85c")).toEqual([66, 16643, 67, 50276, 16643, 68]);
    expect(tok.encode("Hi\n\n\ufeff?")).toEqual([12764, 187, 187, 41497, 32]);
  });
});

describe.skipIf(!gpt2)("GPT-2 tokenizer from vocab.json + merges.txt", () => {
  const dir = tempDir();
  it("encodes all 46 test strings to Hugging Face's ids", () => {
    copyFileSync(join(gpt2!, "gpt2_vocab.json"), join(dir, "vocab.json"));
    copyFileSync(join(gpt2!, "gpt2_merges.txt"), join(dir, "merges.txt"));
    const tok = loadTokenizer(dir);
    const cases = vectors(join(gpt2!, "gpt2-tokenizer-tests.inp"), join(gpt2!, "gpt2-tokenizer-tests.out"));
    expect(cases).toHaveLength(46);
    for (const [text, ids] of cases) {
      expect(tok.encode(text), JSON.stringify(text)).toEqual(ids);
      expect(tok.decode(ids)).toBe(text);
    }
    expect(tok.tokenId("<|endoftext|>")).toBe(50256);
    // Unicode's whitespace, as Hugging Face's pre-tokenizer (ids from tokenizers 0.23.2).
    expect(tok.encode("x\ufeff've")).toEqual([87, 171, 119, 123, 6, 303]);
    expect(tok.encode("  \ufeff'")).toEqual([220, 27332, 119, 123, 6]);
    expect(tok.encode("a\x85b  \x85c")).toEqual([64, 126, 227, 65, 220, 220, 126, 227, 66]);
    expect(tok.encode("Hi\n\n\ufeff?")).toEqual([17250, 198, 198, 171, 119, 123, 30]);
  });
});

it("withUnicodeWhitespace: \\s and \\S become White_Space inside and outside classes; an escaped backslash stays", () => {
  expect(withUnicodeWhitespace(String.raw`[^\s\p{L}]+|\s+(?!\S)|\\s`)).toBe(String.raw`[^\p{White_Space}\p{L}]+|\p{White_Space}+(?!\P{White_Space})|\\s`);
});

describe("SentencePiece-style byte fallback (Llama 2, Gemma)", () => {
  // A minimal tokenizer.json as transformers converts SentencePiece BPE: "▁" for spaces,
  // <0xNN> tokens for bytes not in the vocabulary, the decoder turning runs of them into text.
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  Object.assign(vocab, { "▁": 259, a: 260, "▁a": 261 });
  const json = {
    added_tokens: [["<unk>", 0], ["<s>", 1], ["</s>", 2]].map(([content, id]) => ({ id, content, special: true, normalized: false })),
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
    model: { type: "BPE", unk_token: "<unk>", fuse_unk: true, byte_fallback: true, vocab, merges: [["▁", "a"]] },
  };

  it("encodes unknown characters as their UTF-8 bytes and decodes byte runs as Hugging Face does", () => {
    // Ids and texts from tokenizers (Rust) 0.23.2.
    const tok = new HfTokenizer(json, "sp-mini");
    expect(tok.encode("a\ufeff")).toEqual([261, 242, 190, 194]);
    expect(tok.encode("😀a")).toEqual([259, 243, 162, 155, 131, 260]);
    // A byte-order mark that starts a run of bytes is text, kept (a default TextDecoder drops it).
    expect(tok.decode([261, 242, 190, 194])).toBe("a\ufeff");
    expect(tok.decode([242, 190, 194, 260])).toBe("\ufeffa");
    // Bytes that are not UTF-8 (half an emoji): one U+FFFD per byte.
    expect(tok.decode([243, 162])).toBe("\ufffd\ufffd");
    expect(tok.decode([261, 243, 162, 260])).toBe("a\ufffd\ufffda");
  });
});

describe("malformed tokenizer.json", () => {
  // Each would load in Tokenizers.js and then tokenize wrongly or not at all.
  const cases: Array<[string, (j: any) => void, RegExp]> = [
    ["no model", (j) => { delete j.model; }, /no "model" object/],
    ["an unknown model type", (j) => { j.model.type = "Foo"; }, /model.type "Foo" is not one of BPE, WordPiece, WordLevel, Unigram/],
    ["a vocabulary that is not a map", (j) => { j.model.vocab = 5; }, /model.vocab must be a non-empty map of tokens to ids/],
    ["an id that is not a non-negative integer", (j) => { j.model.vocab.e = "x"; }, /model.vocab gives "e" the id "x", not a non-negative integer/],
    ["two tokens with one id", (j) => { j.model.vocab.e = j.model.vocab.h; }, /model.vocab gives "\w" the id \d+, which another token has/],
    ["no merges", (j) => { delete j.model.merges; }, /a BPE model needs a list of merges/],
    ["a merge that is not two tokens", (j) => { j.model.merges.push("ab"); }, /merge 8 is "ab", not two tokens/],
    ["a merge of a token the vocabulary lacks", (j) => { j.model.merges.unshift(["q", "zz"]); }, /merge 0 \(\["q","zz"\]\) needs the token "zz", which the vocabulary lacks/],
    ["a merge whose result the vocabulary lacks", (j) => { j.model.merges.unshift("q u"); }, /merge 0 \("q u"\) needs the token "qu"/],
    ["an added token without an id", (j) => { j.added_tokens = [{ content: "<x>" }]; }, /added token \{"content":"<x>"\} needs a string "content" and a non-negative integer "id"/],
  ];
  const dir = tempDir();
  for (const [what, spoil, message] of cases) {
    it(`refuses ${what}, naming the file`, () => {
      const json = tinyTokenizerJson(300);
      spoil(json);
      const path = join(dir, "tokenizer.json");
      writeFileSync(path, JSON.stringify(json));
      expect(() => loadTokenizer(path)).toThrow(new RegExp(`tokenizer.json: not a usable tokenizer.json \\(${message.source}`));
    });
  }

  it("takes both merge layouts, and a continuing-subword prefix on a merge's second token", () => {
    const json = tinyTokenizerJson(300);
    const model = json.model as { vocab: Record<string, number>; merges: string[] };
    const strings = join(dir, "strings.json");
    const pairs = join(dir, "pairs.json");
    writeFileSync(strings, JSON.stringify(json));
    writeFileSync(pairs, JSON.stringify({ ...json, model: { ...model, merges: model.merges.map((m) => m.split(" ")) } }));
    const text = " the sun is on the inn";
    expect(loadTokenizer(pairs).encode(text)).toEqual(loadTokenizer(strings).encode(text));
    expect(loadTokenizer(strings).encode(text).length).toBeLessThan(text.length); // the merges apply
    // With a prefix, "q ##x" makes "qx" (the prefix dropped), as Hugging Face's BPE builds it.
    const prefixed = join(dir, "prefixed.json");
    writeFileSync(prefixed, JSON.stringify({ ...json, model: { ...model, continuing_subword_prefix: "##",
      vocab: { ...model.vocab, "##x": 400, qx: 401 }, merges: [...model.merges, "q ##x"] } }));
    expect(() => loadTokenizer(prefixed)).not.toThrow();
  });
});
