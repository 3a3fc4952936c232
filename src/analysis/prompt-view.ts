/**
 * sae_vis's prompt-centric view: for one prompt, which latents fire on each token, ranked
 * by activation, each with its loss effect: how much the loss of predicting the next token
 * changes when that latent's contribution f_j W_dec_j is taken out of the hook's activation
 * at that position (the SAE's error term is kept, so only the latent changes). Positive: the
 * latent helped predict the next token.
 *
 * All the ablations of one prompt run as one batch: a copy of the prompt per (position,
 * latent), each with its own activation edited.
 */
import type { LanguageModel } from "../lm/model.js";
import { rowStats } from "../sae/input-norm.js";
import { decoderMatrix, type Sae } from "../sae/sae.js";

export interface PromptLatent {
  latent: number;
  activation: number;
  /** Next-token loss with the latent taken out minus the clean loss (null at the last token). */
  loss_effect: number | null;
}

export interface PromptToken {
  position: number;
  token: number;
  text: string;
  /** Clean loss of predicting the next token (null at the last token). */
  loss: number | null;
  top: PromptLatent[];
}

export function promptView(model: LanguageModel, sae: Sae, tokens: Int32Array, decode: (id: number) => string,
  o: { hook: string; top?: number; skipFirst?: boolean }): PromptToken[] {
  const d = model.hookWidth(o.hook);
  const T = tokens.length;
  if (T < 1) throw new Error("the prompt has no tokens");
  const W_dec = decoderMatrix(sae, "the prompt view's loss effects");
  let act: Float32Array | null = null;
  // The edited passes resume from the clean one at the hook's block.
  const point = model.resumePoint(o.hook);
  let entering: Float32Array | null = null;
  const clean = model.forward(tokens, 1, T, {
    output: "final",
    hooks: { ...(point ? { [point.residHook]: (a: Float32Array) => { entering = a.slice(); } } : {}), [o.hook]: (a) => { act = a.slice(); } },
  }).final!;
  const cleanLoss = model.nextTokenLosses(tokens, 1, T, clean);
  const code = sae.encode(act!, T);

  // Each position's strongest latents (by |f|; BOS left out unless asked).
  const first = o.skipFirst === false ? 0 : 1;
  const picks: Array<{ position: number; latent: number; activation: number }> = [];
  const perToken = Array.from({ length: T }, (_, t) => {
    const entries: PromptLatent[] = [];
    for (let e = code.rowPtr[t]!; e < code.rowPtr[t + 1]!; e++) {
      if (code.val[e] !== 0) entries.push({ latent: code.idx[e]!, activation: code.val[e]!, loss_effect: null });
    }
    entries.sort((a, b) => Math.abs(b.activation) - Math.abs(a.activation) || a.latent - b.latent);
    const top = t < first ? [] : entries.slice(0, o.top ?? 10);
    for (const p of top) picks.push({ position: t, latent: p.latent, activation: p.activation });
    return top;
  });

  // One batch row per (position, latent) with a next token: the activation minus the
  // latent's part of the reconstruction there, f_j W_dec_j (times the token's scale for an
  // SAE that normalises its input).
  const scored = picks.filter((p) => p.position < T - 1);
  if (scored.length) {
    const n = scored.length;
    const batchTokens = new Int32Array(n * T);
    for (let b = 0; b < n; b++) batchTokens.set(tokens, b * T);
    const mode = sae.cfg.input_normalization;
    const scale = mode === "none" ? null : rowStats(mode, act!, T, d).scale;
    const resume = point && entering ? { resume: { layer: point.layer, resid: repeatRows(entering, n) } } : {};
    const edited = model.forward(batchTokens, n, T, {
      output: "final", ...resume,
      hooks: {
        [o.hook]: (a) => {
          scored.forEach((p, b) => {
            const row = (b * T + p.position) * d;
            const f = p.activation * (scale ? scale[p.position]! : 1);
            for (let c = 0; c < d; c++) a[row + c] = act![p.position * d + c]! - f * W_dec[p.latent * d + c]!;
            // The rest of each copy keeps the clean activation.
          });
        },
      },
    }).final!;
    const losses = model.nextTokenLosses(batchTokens, n, T, edited);
    scored.forEach((p, b) => {
      const entry = perToken[p.position]!.find((e) => e.latent === p.latent)!;
      entry.loss_effect = losses[b * (T - 1) + p.position]! - cleanLoss[p.position]!;
    });
  }
  return perToken.map((top, t) => ({
    position: t, token: tokens[t]!, text: decode(tokens[t]!), loss: t < T - 1 ? cleanLoss[t]! : null, top,
  }));
}

/** The latents with the largest |activation| anywhere in the prompt, at most `limit`, strongest first. */
export function promptLatents(view: PromptToken[], limit: number): number[] {
  const best = new Map<number, number>();
  for (const t of view) for (const l of t.top) best.set(l.latent, Math.max(best.get(l.latent) ?? 0, Math.abs(l.activation)));
  return [...best].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, limit).map(([j]) => j);
}

/** `n` copies of x one after another. */
function repeatRows(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * x.length);
  for (let b = 0; b < n; b++) out.set(x, b * x.length);
  return out;
}
