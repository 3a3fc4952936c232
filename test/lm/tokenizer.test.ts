/**
 * Tokenizers against Hugging Face's expected ids on real vocabularies: GPT-NeoX-20B (the
 * Pythia tokenizer) and GPT-2, 46 strings each (llama.cpp's tokenizer test vectors, in
 * ../shared/data/tokenizers).
 */
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../../src/lm/load.js";
import { sharedData, tempDir } from "../helpers.js";

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
  });
});
