/**
 * Token contexts for a language model, packed as SAELens does: documents are tokenized and
 * concatenated into one stream with a separator token between them (BOS, or none), and
 * each context is BOS followed by the next ctx - 1 stream tokens (or ctx stream tokens
 * when BOS is not prepended). The sequence of contexts is a pure function of the dataset
 * and these settings, so a harvest can resume by skipping contexts it already stored.
 */
import type { TextTokenizer } from "../lm/tokenizer.js";

/** How a .txt dataset splits into documents: on "<|endoftext|>", blank lines or each line. */
export type DocumentSplit = "auto" | "eot" | "blank" | "line";

/**
 * The separator for a split mode; "auto" is "<|endoftext|>" (TinyStories' own format) when
 * `sample`, the text's start, contains it, else blank lines.
 */
export function documentSeparator(mode: DocumentSplit, sample: string): RegExp {
  const m = mode === "auto" ? (sample.includes("<|endoftext|>") ? "eot" : "blank") : mode;
  return m === "eot" ? /<\|endoftext\|>/ : m === "line" ? /\r?\n/ : /\r?\n[ \t]*\r?\n/;
}

/** The non-empty documents of a text held in memory, trimmed, split as a .txt dataset is. */
export function splitDocuments(text: string, mode: DocumentSplit = "auto"): string[] {
  return text.split(documentSeparator(mode, text.slice(0, 1 << 20))).map((d) => d.trim()).filter(Boolean);
}

export interface PackOptions {
  ctx: number;
  /** Token to put first in every context (null: none). */
  bos: number | null;
  /** Token placed between documents in the stream (null: none). Default: bos. */
  separator?: number | null;
}

export async function* packContexts(documents: AsyncIterable<string>, tokenizer: TextTokenizer,
  o: PackOptions): AsyncGenerator<Int32Array> {
  const body = o.bos === null ? o.ctx : o.ctx - 1;
  if (body < 1) throw new RangeError(`context size ${o.ctx} leaves no room for text`);
  const separator = o.separator === undefined ? o.bos : o.separator;
  let stream: number[] = [];
  let first = true;
  for await (const doc of documents) {
    if (!first && separator !== null) stream.push(separator);
    first = false;
    const ids = tokenizer.encode(doc);
    for (const id of ids) stream.push(id);
    let at = 0;
    while (stream.length - at >= body) {
      const c = new Int32Array(o.ctx);
      if (o.bos !== null) c[0] = o.bos;
      c.set(stream.slice(at, at + body), o.bos === null ? 0 : 1);
      at += body;
      yield c;
    }
    if (at > 0) stream = stream.slice(at);
  }
}

/** What contextsFromItems needs beyond the packing: the vocabulary and the data's name, for its checks. */
export interface ItemContextOptions extends PackOptions {
  /** Token ids must be below this (the model's vocabulary). */
  vocabSize: number;
  /** Names the dataset in errors. */
  source: string;
}

/**
 * Contexts from a dataset's items: text documents packed as above (with the tokenizer), or
 * the rows of a pretokenized dataset taken as SAELens takes them: each row one context, cut
 * to ctx tokens, with whatever BOS its pretokenization gave it (none is added). A dataset
 * is one or the other; a row shorter than ctx is refused.
 */
export async function* contextsFromItems(items: AsyncIterable<string | Int32Array>, tokenizer: TextTokenizer | null,
  o: ItemContextOptions): AsyncGenerator<Int32Array> {
  const it = items[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const mixed = () => new Error(`${o.source}: mixes text and token rows; a dataset is one or the other`);
  if (typeof first.value === "string") {
    if (!tokenizer) throw new Error(`${o.source} is text and the model has no tokenizer; pass --tokenizer, use a pretokenized dataset, or --dataset sampled:N`);
    async function* texts(): AsyncGenerator<string> {
      yield first.value as string;
      for (let n = await it.next(); !n.done; n = await it.next()) {
        if (typeof n.value !== "string") throw mixed();
        yield n.value;
      }
    }
    yield* packContexts(texts(), tokenizer, o);
    return;
  }
  let index = 0;
  for (let n: IteratorResult<string | Int32Array> = first; !n.done; n = await it.next(), index++) {
    const row = n.value;
    if (typeof row === "string") throw mixed();
    if (row.length < o.ctx) throw new Error(`${o.source}: pretokenized row ${index} has ${row.length} tokens, fewer than the context size ${o.ctx}`);
    for (let t = 0; t < o.ctx; t++) {
      if (row[t]! >= o.vocabSize) throw new Error(`${o.source}: pretokenized row ${index} has token id ${row[t]} at position ${t}, outside the model's vocabulary of ${o.vocabSize}`);
    }
    yield row.slice(0, o.ctx);
  }
}
