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
  /** The tokens the tokenizer itself marks special (tokenizer.json's added tokens with "special": true). */
  readonly specialIds?: readonly number[];
}

export class HfTokenizer implements TextTokenizer {
  private readonly tok: Tokenizer;
  readonly vocabSize: number;
  readonly specialIds: readonly number[];

  constructor(json: Record<string, unknown>, readonly source: string) {
    try {
      checkTokenizerJson(json);
      this.tok = new Tokenizer(json, {});
      const parts = this.tok as unknown as { pre_tokenizer: unknown; decoder: unknown };
      splitOnUnicodeWhitespace(parts.pre_tokenizer);
      decodeBytesAsRust(parts.decoder);
    } catch (err) {
      throw new Error(`${source}: not a usable tokenizer.json (${(err as Error).message})`);
    }
    const model = json.model as { vocab?: Record<string, number> | unknown[] } | undefined;
    const vocab = model?.vocab;
    let size = Array.isArray(vocab) ? vocab.length : Object.keys(vocab ?? {}).length;
    const added = (json.added_tokens as Array<{ id: number; special?: boolean }> | undefined) ?? [];
    for (const t of added) size = Math.max(size, t.id + 1);
    this.vocabSize = size;
    this.specialIds = added.filter((t) => t.special === true).map((t) => t.id);
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
 * A regex source with `\s` and `\S` as Unicode's White_Space, which `\s` is in the Rust
 * tokenizers' regexes: JavaScript's `\s` adds U+FEFF (the byte-order mark) and leaves out
 * U+0085 (next line), so text holding either split unlike Hugging Face's.
 */
export function withUnicodeWhitespace(source: string): string {
  let out = "";
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = source[++i] ?? "";
    out += next === "s" ? "\\p{White_Space}" : next === "S" ? "\\P{White_Space}" : c + next;
  }
  return out;
}

/** The fields of Tokenizers.js's pre-tokenizers that say what they are and hold their regexes. */
interface PreTokenizerFields {
  config?: { type?: string };
  pattern?: RegExp | null;
  tokenizers?: unknown[];
}

/**
 * Gives ByteLevel pre-tokenizers (GPT-2's regex, which Tokenizers.js writes with
 * JavaScript's `\s`) Hugging Face's whitespace; Split regexes from the file it already
 * translates so. Its types do not reach the pre-tokenizer classes, so they are told apart by
 * their config's type; the tests pin the result.
 */
function splitOnUnicodeWhitespace(pre: unknown): void {
  // (Its pre-tokenizers are callable objects: functions, to typeof.)
  const p = pre as PreTokenizerFields | null;
  if (!p || (typeof p !== "object" && typeof p !== "function")) return;
  if (Array.isArray(p.tokenizers)) p.tokenizers.forEach(splitOnUnicodeWhitespace);
  else if (p.config?.type === "ByteLevel" && p.pattern instanceof RegExp) {
    p.pattern = new RegExp(withUnicodeWhitespace(p.pattern.source), p.pattern.flags);
  }
}

/** The fields of Tokenizers.js's decoders (ByteFallback, Sequence) that say what they are and turn bytes into text. */
interface DecoderFields {
  config?: { type?: string };
  text_decoder?: { decode(bytes: Uint8Array): string };
  decoders?: unknown[];
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Makes ByteFallback decoders (SentencePiece-style <0xNN> tokens: Llama 2, Gemma) turn a run of
 * byte tokens into text as Hugging Face's does: the run's UTF-8 text, a byte-order mark
 * included (JavaScript's default TextDecoder drops one that starts the run), or, where the
 * bytes are not valid UTF-8, one U+FFFD per byte.
 */
function decodeBytesAsRust(decoder: unknown): void {
  const p = decoder as DecoderFields | null;
  if (!p || (typeof p !== "object" && typeof p !== "function")) return;
  if (Array.isArray(p.decoders)) p.decoders.forEach(decodeBytesAsRust);
  else if (p.config?.type === "ByteFallback" && p.text_decoder) {
    p.text_decoder = {
      decode(bytes: Uint8Array): string {
        try {
          return strictUtf8.decode(bytes);
        } catch {
          return "\ufffd".repeat(bytes.length);
        }
      },
    };
  }
}

const MODEL_TYPES = ["BPE", "WordPiece", "WordLevel", "Unigram"];

/**
 * Throws, naming the problem, at a tokenizer.json that Tokenizers.js would take and then
 * encode wrongly: an unknown model type (it falls back to guessing one), a vocabulary that
 * is not a map of tokens to distinct ids (text then encodes to nothing, or to ids no model
 * has), a BPE merge of tokens the vocabulary lacks (Hugging Face's loader refuses those too:
 * both halves and their merge must be tokens), an added token without an id.
 */
function checkTokenizerJson(json: Record<string, unknown>): void {
  const model = json?.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== "object") throw new Error('no "model" object');
  const type = model.type;
  if (type !== undefined && !MODEL_TYPES.includes(type as string)) {
    throw new Error(`model.type ${JSON.stringify(type)} is not one of ${MODEL_TYPES.join(", ")}`);
  }
  const vocab = model.vocab;
  if (type === "Unigram" || Array.isArray(vocab)) {
    if (!Array.isArray(vocab) || vocab.length === 0) throw new Error("a Unigram model.vocab must be a non-empty list of [token, score]");
    vocab.forEach((entry, i) => {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number") {
        throw new Error(`model.vocab entry ${i} is ${JSON.stringify(entry)}, not [token, score]`);
      }
    });
  } else {
    if (!vocab || typeof vocab !== "object" || Object.keys(vocab).length === 0) throw new Error("model.vocab must be a non-empty map of tokens to ids");
    const map = vocab as Record<string, unknown>;
    const tokens = Object.keys(map);
    // Which ids are taken: a bitmap where ids are dense, as they are; a set for any beyond.
    const taken = new Uint8Array(2 * tokens.length);
    const takenBeyond = new Set<number>();
    for (const token of tokens) {
      const id = map[token] as number;
      if (!Number.isSafeInteger(id) || id < 0) throw new Error(`model.vocab gives ${JSON.stringify(token)} the id ${JSON.stringify(id)}, not a non-negative integer`);
      const twice = id < taken.length ? taken[id]++ > 0 : takenBeyond.size === takenBeyond.add(id).size;
      if (twice) throw new Error(`model.vocab gives ${JSON.stringify(token)} the id ${id}, which another token has`);
    }
    if (type === "BPE") checkMerges(model, new Set(tokens));
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new Error("added_tokens must be a list");
  for (const t of added) {
    if (typeof t?.content !== "string" || !Number.isSafeInteger(t?.id) || t.id < 0) {
      throw new Error(`added token ${JSON.stringify(t)} needs a string "content" and a non-negative integer "id"`);
    }
  }
}

/** Every merge ("a b" or [a, b]) joins two tokens of the vocabulary into a third. */
function checkMerges(model: Record<string, unknown>, vocab: ReadonlySet<string>): void {
  const merges = model.merges;
  if (!Array.isArray(merges)) throw new Error("a BPE model needs a list of merges");
  const prefix = typeof model.continuing_subword_prefix === "string" ? model.continuing_subword_prefix : "";
  for (let i = 0; i < merges.length; i++) {
    const merge: unknown = merges[i];
    let a: unknown, b: unknown;
    if (typeof merge === "string") {
      const space = merge.indexOf(" ");
      if (space >= 0) [a, b] = [merge.slice(0, space), merge.slice(space + 1)];
    } else if (Array.isArray(merge) && merge.length === 2) {
      [a, b] = merge;
    }
    if (typeof a !== "string" || typeof b !== "string") throw new Error(`merge ${i} is ${JSON.stringify(merge)}, not two tokens`);
    const joined = a + (prefix && b.startsWith(prefix) ? b.slice(prefix.length) : b);
    for (const token of [a, b, joined]) {
      if (!vocab.has(token)) throw new Error(`merge ${i} (${JSON.stringify(merge)}) needs the token ${JSON.stringify(token)}, which the vocabulary lacks`);
    }
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
