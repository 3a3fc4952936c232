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

export function meanPooledActivations(model: LanguageModel, texts: Int32Array[], saes: Sae[], o: PoolOptions): PooledActivations {
  model.checkHook(o.hook);
  const d = model.cfg.dModel;
  for (const sae of saes) {
    if (sae.cfg.d_in !== d) throw new Error(`an SAE reads ${sae.cfg.d_in}-dim activations, ${o.hook} of this model is ${d}-dim`);
  }
  const n = texts.length;
  const special = new Set(o.special);
  const pooled: PooledActivations = {
    model: new Float32Array(n * d),
    saes: saes.map((sae) => new Float32Array(n * sae.cfg.d_sae)),
    positions: 0,
  };
  // Longest first, so each batch pads little.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => texts[b]!.length - texts[a]!.length || a - b);
  const B = o.batch ?? 32;
  const bar = new ProgressBar(n, `pool ${o.hook}`, o.progress !== false && process.stderr.isTTY === true);
  for (let start = 0; start < n; start += B) {
    const members = order.slice(start, start + B);
    const T = Math.max(1, ...members.map((i) => texts[i]!.length));
    const tokens = new Int32Array(members.length * T); // padding: token 0
    members.forEach((i, b) => tokens.set(texts[i]!, b * T));
    // The kept positions of the batch, gathered contiguously, and which text each is.
    const keep: number[] = [];
    const owner: number[] = [];
    members.forEach((i, b) => {
      texts[i]!.forEach((id, t) => {
        if (!special.has(id)) {
          keep.push(b * T + t);
          owner.push(i);
        }
      });
      if (!texts[i]!.some((id) => !special.has(id))) throw new Error(`text ${i} has no tokens besides special ones (BOS/EOS) to average over`);
    });
    const rows = new Float32Array(keep.length * d);
    model.forward(tokens, members.length, T, {
      stopAt: o.hook,
      output: "none",
      hooks: { [o.hook]: (act) => { keep.forEach((r, e) => rows.set(act.subarray(r * d, (r + 1) * d), e * d)); } },
    });
    const count = new Map<number, number>();
    for (const i of owner) count.set(i, (count.get(i) ?? 0) + 1);
    for (let e = 0; e < keep.length; e++) {
      const i = owner[e]!;
      const inv = 1 / count.get(i)!;
      for (let c = 0; c < d; c++) pooled.model[i * d + c]! += rows[e * d + c]! * inv;
    }
    saes.forEach((sae, s) => {
      const m = sae.cfg.d_sae;
      const out = pooled.saes[s]!;
      const code = sae.encode(rows, keep.length);
      for (let e = 0; e < keep.length; e++) {
        const i = owner[e]!;
        const inv = 1 / count.get(i)!;
        for (let q = code.rowPtr[e]!; q < code.rowPtr[e + 1]!; q++) out[i * m + code.idx[q]!]! += code.val[q]! * inv;
      }
    });
    pooled.positions += keep.length;
    bar.update(Math.min(n, start + B));
  }
  bar.finish();
  return pooled;
}
