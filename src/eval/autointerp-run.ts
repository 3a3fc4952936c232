/**
 * `saekit autointerp` end to end: run the model over token contexts, read the SAE's code at
 * the hook (special-token positions zeroed, as SAEBench masks BOS, EOS and padding), pick
 * the latents to interpret (a seeded sample of those firing more than deadLatentThreshold
 * times, unless given), gather each one's examples (autointerp.ts) and have the LLM
 * explain and score them.
 *
 * Two passes over the same contexts: the first counts every latent's firings, the second
 * keeps the chosen latents' non-zero activations (sparse: the codes are), so memory
 * follows the tokens, not tokens x latents.
 */
import { Rng } from "../core/rng.js";
import type { LanguageModel } from "../lm/model.js";
import type { Sae } from "../sae/sae.js";
import { ProgressBar } from "../util/progress.js";
import {
  type AutoInterpConfig, type AutoInterpResult, type ChatFn, type InterpretOptions, type LatentExamples, gatherExamples,
  interpretLatents,
} from "./autointerp.js";

export interface AutoInterpRunOptions {
  hook: string;
  ctx: number;
  /** Contexts per forward pass. */
  batch?: number;
  /** Token ids whose positions are masked (BOS, EOS, padding). */
  special: number[];
  /** Interpret exactly these latents (else a sample of the alive ones). */
  latents?: number[];
  concurrency?: number;
  progress?: boolean;
  /** Latents an earlier run finished, and a hook for each one this run finishes (interpretLatents' done / onResult: a journal). */
  done?: InterpretOptions["done"];
  onResult?: InterpretOptions["onResult"];
}

export interface AutoInterpRunResult extends AutoInterpResult {
  tokens: number;
  /** Latents chosen, and those that had enough examples to be interpreted. */
  chosen: number[];
  skipped: number[];
}

export async function runAutoInterp(model: LanguageModel, sae: Sae, contexts: Int32Array[], decode: (id: number) => string,
  chat: ChatFn, cfg: AutoInterpConfig, o: AutoInterpRunOptions): Promise<AutoInterpRunResult> {
  const { examples, chosen, skipped, tokens } = collectExamples(model, sae, contexts, cfg, o);
  const bar = new ProgressBar(examples.size, "autointerp: LLM", o.progress !== false && process.stderr.isTTY === true);
  const result = await interpretLatents(examples, decode, chat, cfg, {
    concurrency: o.concurrency, onLatent: (n) => bar.update(n), done: o.done, onResult: o.onResult,
  });
  bar.finish();
  return { ...result, tokens, chosen, skipped };
}

export interface CollectedExamples {
  /** Per interpreted latent, its generation and scoring examples. */
  examples: Map<number, LatentExamples>;
  chosen: number[];
  /** Chosen latents with too few examples. */
  skipped: number[];
  tokens: number;
}

/** The model and SAE over the contexts, and each chosen latent's examples (no LLM). */
export function collectExamples(model: LanguageModel, sae: Sae, contexts: Int32Array[], cfg: AutoInterpConfig,
  o: AutoInterpRunOptions): CollectedExamples {
  model.checkHook(o.hook);
  const T = o.ctx;
  const N = contexts.length;
  if (N === 0) throw new Error("autointerp: the dataset gave no contexts");
  const tokens = new Int32Array(N * T);
  contexts.forEach((c, i) => {
    if (c.length !== T) throw new Error(`autointerp: a context of ${c.length} tokens, expected ${T}`);
    tokens.set(c, i * T);
  });
  const special = new Set(o.special);
  const m = sae.cfg.d_sae;

  // Pass 1: how often each latent fires (f != 0) on non-special tokens.
  const counts = new Float64Array(m);
  forEachCode(model, sae, tokens, N, T, o, "autointerp: density", (pos, idx, val) => {
    if (val !== 0 && !special.has(tokens[pos]!)) counts[idx]! += 1;
  });
  const chosen = o.latents ?? chooseLatents(counts, cfg);
  for (const j of chosen) if (!Number.isInteger(j) || j < 0 || j >= m) throw new RangeError(`latent ${j} is outside 0..${m - 1}`);

  // Pass 2: the chosen latents' non-zero activations, per latent (positions ascending).
  const slot = new Map(chosen.map((j, s) => [j, s]));
  const positions = chosen.map(() => [] as number[]);
  const values = chosen.map(() => [] as number[]);
  forEachCode(model, sae, tokens, N, T, o, "autointerp: examples", (pos, idx, val) => {
    const s = slot.get(idx);
    if (s === undefined || val === 0 || special.has(tokens[pos]!)) return;
    positions[s]!.push(pos);
    values[s]!.push(val);
  });

  // Examples, one latent at a time through one dense buffer.
  const acts = new Float32Array(N * T);
  const rng = new Rng(cfg.seed);
  const examples = new Map<number, LatentExamples>();
  const skipped: number[] = [];
  chosen.forEach((latent, s) => {
    positions[s]!.forEach((p, i) => (acts[p] = values[s]![i]!));
    const ex = gatherExamples({ latent, tokens, acts, contexts: N, ctx: T, nonzero: positions[s] }, cfg, rng);
    if (ex) examples.set(latent, ex);
    else skipped.push(latent);
    for (const p of positions[s]!) acts[p] = 0;
  });
  return { examples, chosen, skipped, tokens: N * T };
}

/** A seeded sample of nLatents of the latents firing more than deadLatentThreshold times (all, if fewer). */
export function chooseLatents(counts: ArrayLike<number>, cfg: AutoInterpConfig): number[] {
  const alive = Array.from(counts, (c, j) => (c > cfg.deadLatentThreshold ? j : -1)).filter((j) => j >= 0);
  if (alive.length <= cfg.nLatents) return alive;
  return new Rng(cfg.seed).shuffle(alive).slice(0, cfg.nLatents).sort((a, b) => a - b);
}

/** Runs the model to the hook over all contexts and calls fn(flat position, latent, value) for every code entry. */
function forEachCode(model: LanguageModel, sae: Sae, tokens: Int32Array, N: number, T: number, o: AutoInterpRunOptions,
  label: string, fn: (pos: number, latent: number, value: number) => void): void {
  const d = model.hookWidth(o.hook);
  const B = o.batch ?? 16;
  const bar = new ProgressBar(N, label, o.progress !== false && process.stderr.isTTY === true);
  for (let c0 = 0; c0 < N; c0 += B) {
    const n = Math.min(B, N - c0);
    const act = model.activationAt(tokens.subarray(c0 * T, (c0 + n) * T), n, T, o.hook);
    const code = sae.encode(act.subarray(0, n * T * d), n * T);
    for (let r = 0; r < n * T; r++) {
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) fn(c0 * T + r, code.idx[e]!, code.val[e]!);
    }
    bar.update(c0 + n);
  }
  bar.finish();
}
