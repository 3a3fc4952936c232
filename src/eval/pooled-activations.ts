/**
 * One vector per text for probing, as SAEBench builds them: run the model over each text
 * (BOS first, truncated to ctx tokens), take the hook's activation at every position that
 * is not a special token (BOS, EOS, padding), and average over those positions. SAE
 * features are averaged the same way: each kept position is encoded, then the codes are
 * averaged (the mean of the features, not the features of the mean).
 *
 * Texts of unequal length share a forward pass padded at the end; attention is causal,
 * so padding never changes the positions before it.
 */
import type { LanguageModel } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import type { Sae } from "../sae/sae.js";
import { ProgressBar } from "../util/progress.js";

export interface ProbeTokenOptions {
  ctx: number;
  /** Put first in every text (null: none). */
  bos: number | null;
}

/** Token ids of each text: BOS (when given) then the text, cut to ctx tokens. */
export function probeTokens(tokenizer: TextTokenizer, texts: string[], o: ProbeTokenOptions): Int32Array[] {
  return texts.map((text) => {
    const ids = tokenizer.encode(text);
    const all = o.bos === null ? ids : [o.bos, ...ids];
    return Int32Array.from(all.slice(0, o.ctx));
  });
}

export interface PoolOptions {
  hook: string;
  /** Token ids whose positions are left out of the mean (BOS, EOS, padding). */
  special: number[];
  /** Texts per forward pass. */
  batch?: number;
  progress?: boolean;
}

export interface PooledActivations {
  /** Mean hook activation per text [texts, d_model]. */
  model: Float32Array;
  /** Per SAE, the mean code per text [texts, d_sae]. */
  saes: Float32Array[];
  /** Positions averaged over, in all texts. */
  positions: number;
}

/**
 * Runs the model over token sequences of any lengths, `batch` at a time (longest first, so
 * each batch pads little; padded at the end with token 0, which causal attention keeps
 * from changing earlier positions), stopping at `hook`. `visit` gets the hook's activation
 * [members * T, d] with row b * T + t for position t of sequence members[b].
 */
export function forEachPaddedBatch(model: LanguageModel, sequences: Int32Array[], hook: string, batch: number,
  visit: (act: Float32Array, members: number[], T: number) => void, progress?: ProgressBar): void {
  const n = sequences.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => sequences[b]!.length - sequences[a]!.length || a - b);
  for (let start = 0; start < n; start += batch) {
    const members = order.slice(start, start + batch);
    const T = Math.max(1, ...members.map((i) => sequences[i]!.length));
    const tokens = new Int32Array(members.length * T);
    members.forEach((i, b) => tokens.set(sequences[i]!, b * T));
    model.forward(tokens, members.length, T, { stopAt: hook, output: "none", hooks: { [hook]: (act) => { visit(act, members, T); } } });
    progress?.update(Math.min(n, start + batch));
  }
  progress?.finish();
}

export function meanPooledActivations(model: LanguageModel, texts: Int32Array[], saes: Sae[], o: PoolOptions): PooledActivations {
  model.checkHook(o.hook);
  const d = model.hookWidth(o.hook);
  for (const sae of saes) {
    if (sae.cfg.d_in !== d) throw new Error(`an SAE reads ${sae.cfg.d_in}-dim activations, ${o.hook} of this model is ${d}-dim`);
  }
  const n = texts.length;
  const special = new Set(o.special);
  texts.forEach((ids, i) => {
    if (!ids.some((id) => !special.has(id))) throw new Error(`text ${i} has no tokens besides special ones (BOS/EOS) to average over`);
  });
  const pooled: PooledActivations = {
    model: new Float32Array(n * d),
    saes: saes.map((sae) => new Float32Array(n * sae.cfg.d_sae)),
    positions: 0,
  };
  const bar = new ProgressBar(n, `pool ${o.hook}`, o.progress !== false && process.stderr.isTTY === true);
  forEachPaddedBatch(model, texts, o.hook, o.batch ?? 32, (act, members, T) => {
    // The kept positions of the batch, gathered contiguously, and which text each is.
    const rows: number[] = [];
    const owner: number[] = [];
    members.forEach((i, b) => texts[i]!.forEach((id, t) => {
      if (!special.has(id)) {
        rows.push(b * T + t);
        owner.push(i);
      }
    }));
    const x = new Float32Array(rows.length * d);
    rows.forEach((r, e) => x.set(act.subarray(r * d, (r + 1) * d), e * d));
    const count = new Map<number, number>();
    for (const i of owner) count.set(i, (count.get(i) ?? 0) + 1);
    for (let e = 0; e < rows.length; e++) {
      const i = owner[e]!;
      const inv = 1 / count.get(i)!;
      for (let c = 0; c < d; c++) pooled.model[i * d + c]! += x[e * d + c]! * inv;
    }
    saes.forEach((sae, s) => {
      const m = sae.cfg.d_sae;
      const out = pooled.saes[s]!;
      const code = sae.encode(x, rows.length);
      for (let e = 0; e < rows.length; e++) {
        const i = owner[e]!;
        const inv = 1 / count.get(i)!;
        for (let q = code.rowPtr[e]!; q < code.rowPtr[e + 1]!; q++) out[i * m + code.idx[q]!]! += code.val[q]! * inv;
      }
    });
    pooled.positions += rows.length;
  }, bar);
  return pooled;
}
