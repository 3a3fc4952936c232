/**
 * Text <-> token ids. Hugging Face `tokenizer.json` files (byte-level BPE for GPT-NeoX and
 * GPT-2, and whatever else Tokenizers.js implements) go through @huggingface/tokenizers,
 * a maintained pure-JS port of the Rust library; GPT-2's original vocab.json + merges.txt
 * pair is turned into the equivalent tokenizer.json. llama2.c's tok512.bin format has its
 * own implementation (llama2c-tokenizer.ts). Reading them from disk is load.ts's.
 */
import { Tokenizer } from "@huggingface/tokenizers";

export interface TextTokenizer {
  /** Token ids of `text`, without BOS or other added special tokens. */
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  readonly vocabSize: number;
  /** Id of a token given as text (e.g. "<|endoftext|>"), if the vocabulary has it. */
  tokenId(token: string): number | undefined;
}

export class HfTokenizer implements TextTokenizer {
  private readonly tok: Tokenizer;
  readonly vocabSize: number;

  constructor(json: Record<string, unknown>, readonly source: string) {
    try {
      this.tok = new Tokenizer(json, {});
    } catch (err) {
      throw new Error(`${source}: not a usable tokenizer.json (${(err as Error).message})`);
    }
    const model = json.model as { vocab?: Record<string, number> | unknown[] } | undefined;
    const vocab = model?.vocab;
    let size = Array.isArray(vocab) ? vocab.length : Object.keys(vocab ?? {}).length;
    for (const t of (json.added_tokens as Array<{ id: number }> | undefined) ?? []) size = Math.max(size, t.id + 1);
    this.vocabSize = size;
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>): string {
    if (ids.length === 0) return "";
    return this.tok.decode(Array.from(ids), { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }
}

/**
 * The tokenizer.json equivalent of GPT-2's vocab.json + merges.txt (byte-level BPE, no
 * prefix space, <|endoftext|> as the special token), as Hugging Face converts them.
 */
export function gpt2TokenizerJson(vocab: Record<string, number>, mergesText: string): Record<string, unknown> {
  const merges = mergesText.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#version"));
  const eot = vocab["<|endoftext|>"];
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: eot === undefined ? [] : [{
      id: eot, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true,
    }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
      fuse_unk: false, byte_fallback: false, vocab, merges,
    },
  };
}
