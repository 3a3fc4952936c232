/**
 * SAEBench's autointerp eval (sae_bench/evals/autointerp/main.py; Bills et al.'s explain-
 * then-score method): an LLM explains each latent from the contexts where it fires, then,
 * shown the explanation and a shuffled mix of contexts, predicts which ones make it fire.
 * The latent's score is the fraction of contexts classified right; the SAE's, the mean.
 *
 * Per latent, from its activation over token contexts [N, T] (special tokens zeroed):
 *   - top examples: the nTop largest activations at least `buffer` from either end, no two
 *     within `buffer` of each other in one context (no_overlap), each a window of
 *     2 * buffer + 1 tokens around it; a token in a window is "active" above
 *     actThresholdFrac x the largest activation in the top windows;
 *   - importance-weighted examples: nIw positions drawn without replacement with
 *     probability proportional to act^2 among those below the weakest top example's
 *     centre (so they are disjoint from the top ones); a latent with none is skipped;
 *   - random examples: nRandom windows at uniformly drawn positions, counted as negatives
 *     whatever the latent does there (SAEBench gives them zero activations: a latent that
 *     fires on most text loses points on them).
 * Generation shows nTopGen + nIwGen examples, strongest first, active tokens in << >>;
 * scoring shows nTopScore + nIwScore + nRandom examples, shuffled, unmarked. The prompts,
 * the parsing of the replies and the score are SAEBench's.
 *
 * Everything here is pure (no model, no file system, no network); autointerp-run.ts
 * collects the activations, and `openAiChat` speaks to any OpenAI-compatible endpoint.
 */
import { Rng } from "../core/rng.js";

export interface AutoInterpConfig {
  /** Latents to interpret, drawn from the alive ones (those firing more than deadLatentThreshold times). */
  nLatents: number;
  deadLatentThreshold: number;
  seed: number;
  /** Tokens either side of an example's centre. */
  buffer: number;
  noOverlap: boolean;
  actThresholdFrac: number;
  maxTokensInExplanation: number;
  useDemosInExplanation: boolean;
  /** Score the explanations (else only explain). */
  scoring: boolean;
  nTopExForGeneration: number;
  nIwSampledExForGeneration: number;
  nTopExForScoring: number;
  nRandomExForScoring: number;
  nIwSampledExForScoring: number;
}

/** SAEBench's AutoInterpEvalConfig defaults. */
export const AUTOINTERP_DEFAULTS: AutoInterpConfig = {
  nLatents: 1000, deadLatentThreshold: 15, seed: 42, buffer: 10, noOverlap: true, actThresholdFrac: 0.01,
  maxTokensInExplanation: 30, useDemosInExplanation: true, scoring: true,
  nTopExForGeneration: 10, nIwSampledExForGeneration: 5, nTopExForScoring: 2, nRandomExForScoring: 10, nIwSampledExForScoring: 2,
};

export const nExForScoring = (c: AutoInterpConfig) => c.nTopExForScoring + c.nRandomExForScoring + c.nIwSampledExForScoring;
/** Predictions are comma-separated numbers, each a token or two. */
export const maxTokensInPrediction = (c: AutoInterpConfig) => 2 * nExForScoring(c) + 5;

/** One latent's activations over token contexts [N, T], with the tokens. */
export interface LatentActivations {
  latent: number;
  tokens: Int32Array;
  acts: Float32Array;
  contexts: number;
  ctx: number;
  /** The flat positions where acts is non-zero, ascending (found by a scan when absent). */
  nonzero?: ArrayLike<number>;
}

/** The non-zero positions at least `buffer` from either end of their context. */
function inner(a: LatentActivations, buffer: number): number[] {
  const T = a.ctx;
  const all = a.nonzero ?? Array.from(a.acts.keys()).filter((p) => a.acts[p] !== 0);
  return Array.from(all).filter((p) => p % T >= buffer && p % T < T - buffer);
}

export interface Example {
  tokens: number[];
  acts: number[];
  /** Per token: above the latent's activation threshold. */
  active: boolean[];
  /** Whether any token is active: what the scoring phase predicts. */
  isActive: boolean;
}

export interface LatentExamples {
  generation: Example[];
  scoring: Example[];
}

/**
 * Positions (flat c * T + t) of the k largest positive activations, as SAEBench's
 * get_k_largest_indices (which, for a latent firing at fewer than k places, would pad with
 * zero windows that the next step then rejects).
 */
export function topPositions(a: LatentActivations, k: number, buffer: number, noOverlap: boolean): number[] {
  const { acts } = a;
  const candidates = inner(a, buffer).filter((p) => acts[p]! > 0);
  candidates.sort((p, q) => acts[q]! - acts[p]! || p - q);
  if (!noOverlap) return candidates.slice(0, k);
  const chosen: number[] = [];
  const taken = new Set<number>();
  for (const p of candidates) {
    if (chosen.length === k) break;
    if (taken.has(p)) continue;
    chosen.push(p);
    // The same context within `buffer` of it (the window never crosses contexts: t is inside).
    for (let o = -buffer; o <= buffer; o++) taken.add(p + o);
  }
  return chosen;
}

/**
 * k positions drawn without replacement with probability proportional to act^2 (SAEBench's
 * get_iw_sample_indices), among positions at least `buffer` from either end whose
 * activation is below `below`.
 */
export function importanceSampledPositions(a: LatentActivations, k: number, buffer: number, below: number, rng: Rng): number[] {
  const pos = inner(a, buffer).filter((p) => a.acts[p]! < below);
  const weight = pos.map((p) => a.acts[p]! ** 2);
  const out: number[] = [];
  let total = weight.reduce((s, w) => s + w, 0);
  while (out.length < k && total > 0) {
    let r = rng.uniform() * total;
    let i = 0;
    for (; i < weight.length - 1; i++) {
      if (weight[i]! > 0 && (r -= weight[i]!) < 0) break;
    }
    while (weight[i] === 0) i--; // rounding at the very end: the last positive weight
    out.push(pos[i]!);
    total -= weight[i]!;
    weight[i] = 0;
  }
  return out;
}

/**
 * The window of 2 * buffer + 1 tokens around flat position p, marked against `threshold`
 * (with zero activations when `negative`: a random example).
 */
function window(a: LatentActivations, p: number, buffer: number, threshold: number, negative = false): Example {
  const tokens: number[] = [];
  const acts: number[] = [];
  for (let o = -buffer; o <= buffer; o++) {
    tokens.push(a.tokens[p + o]!);
    acts.push(negative ? 0 : a.acts[p + o]!);
  }
  const active = acts.map((v) => v > threshold);
  return { tokens, acts, active, isActive: active.some(Boolean) };
}

/** The generation and scoring examples of one latent, or null when it has too little to show. */
export function gatherExamples(a: LatentActivations, cfg: AutoInterpConfig, rng: Rng): LatentExamples | null {
  const B = cfg.buffer;
  if (a.ctx < 2 * B + 1) throw new RangeError(`contexts of ${a.ctx} tokens are too short for windows of ${2 * B + 1}`);
  const nTop = cfg.nTopExForGeneration + cfg.nTopExForScoring;
  const nIw = cfg.nIwSampledExForGeneration + cfg.nIwSampledExForScoring;
  const top = topPositions(a, nTop, B, cfg.noOverlap);
  if (top.length < nTop || !(a.acts[top[0]!]! > 0)) return null;
  let maxInTop = 0;
  for (const p of top) for (let o = -B; o <= B; o++) maxInTop = Math.max(maxInTop, a.acts[p + o]!);
  const actThreshold = cfg.actThresholdFrac * maxInTop;
  // Importance-weighted examples come from below the weakest top example's centre.
  const weakestTop = Math.min(...top.map((p) => a.acts[p]!));
  const iw = importanceSampledPositions(a, nIw, B, weakestTop, rng);
  if (iw.length < nIw || !iw.some((p) => a.acts[p]! >= 1e-6)) return null;
  const random = Array.from({ length: cfg.nRandomExForScoring }, () => rng.int(a.contexts) * a.ctx + B + rng.int(a.ctx - 2 * B));
  const topOrder = rng.shuffle([...top.keys()]);
  const iwOrder = rng.shuffle([...iw.keys()]);
  const ex = (p: number) => window(a, p, B, actThreshold);
  const generation = [
    ...topOrder.slice(0, cfg.nTopExForGeneration).map((i) => ex(top[i]!)),
    ...iwOrder.slice(0, cfg.nIwSampledExForGeneration).map((i) => ex(iw[i]!)),
  ].sort((x, y) => Math.max(...y.acts) - Math.max(...x.acts));
  const scoring = rng.shuffle([
    ...topOrder.slice(cfg.nTopExForGeneration).map((i) => ex(top[i]!)),
    ...iwOrder.slice(cfg.nIwSampledExForGeneration).map((i) => ex(iw[i]!)),
    ...random.map((p) => window(a, p, B, actThreshold, true)),
  ]);
  return { generation, scoring };
}

export type ChatMessage = { role: "system" | "user" | "assistant"; content: string };
/** An LLM: messages in, the reply's text out. */
export type ChatFn = (messages: ChatMessage[], maxTokens: number) => Promise<string>;

/** An example as text: tokens joined, active ones in << >> when marked, newlines as ↵. */
export function exampleText(ex: Example, decode: (id: number) => string, mark: boolean): string {
  return ex.tokens.map((id, i) => (mark && ex.active[i] ? `<<${decode(id)}>>` : decode(id))).join("")
    .replace(/\uFFFD/g, "").replace(/\n/g, "↵");
}

// The two prompts are SAEBench's word for word: they are part of the benchmark's protocol,
// and scores only compare across tools when the judge is asked the same question.

export function generationMessages(examples: Example[], decode: (id: number) => string, cfg: AutoInterpConfig): ChatMessage[] {
  const listed = examples.map((ex, i) => `${i + 1}. ${exampleText(ex, decode, true)}`).join("\n");
  let system = "We're studying neurons in a neural network. Each neuron activates on some particular word/words/substring/concept in a short document. The activating words in each document are indicated with << ... >>. We will give you a list of documents on which the neuron activates, in order from most strongly activating to least strongly activating. Look at the parts of the document the neuron activates for and summarize in a single sentence what the neuron is activating on. Try not to be overly specific in your explanation. Note that some neurons will activate only on specific words or substrings, but others will activate on most/all words in a sentence provided that sentence contains some particular concept. Your explanation should cover most or all activating words (for example, don't give an explanation which is specific to a single word if all words in a sentence cause the neuron to activate). Pay attention to things like the capitalization and punctuation of the activating words or concepts, if that seems relevant. Keep the explanation as short and simple as possible, limited to 20 words or less. Omit punctuation and formatting. You should avoid giving long lists of words.";
  system += cfg.useDemosInExplanation
    ? " Some examples: \"This neuron activates on the word 'knows' in rhetorical questions\", and \"This neuron activates on verbs related to decision-making and preferences\", and \"This neuron activates on the substring 'Ent' at the start of words\", and \"This neuron activates on text about government economic policy\"."
    : "Your response should be in the form \"This neuron activates on...\".";
  return [{ role: "system", content: system }, { role: "user", content: `The activating documents are given below:\n\n${listed}` }];
}

export function scoringMessages(explanation: string, examples: Example[], decode: (id: number) => string,
  cfg: AutoInterpConfig, rng: Rng): ChatMessage[] {
  const n = nExForScoring(cfg);
  const listed = examples.map((ex, i) => `${i + 1}. ${exampleText(ex, decode, false)}`).join("\n");
  const sample = rng.shuffle(Array.from({ length: n }, (_, i) => i + 1)).slice(0, cfg.nTopExForScoring + cfg.nIwSampledExForScoring).sort((a, b) => a - b);
  const system = `We're studying neurons in a neural network. Each neuron activates on some particular word/words/substring/concept in a short document. You will be given a short explanation of what this neuron activates for, and then be shown ${n} example sequences in random order. You will have to return a comma-separated list of the examples where you think the neuron should activate at least once, on ANY of the words or substrings in the document. For example, your response might look like "${sample.join(", ")}". Try not to be overly specific in your interpretation of the explanation. If you think there are no examples where the neuron will activate, you should just respond with "None". You should include nothing else in your response other than comma-separated numbers or the word "None" - this is important.`;
  return [
    { role: "system", content: system },
    { role: "user", content: `Here is the explanation: this neuron fires on ${explanation}.\n\nHere are the examples:\n\n${listed}` },
  ];
}

/** The explanation in a reply: what follows the last "activates on", without a final period. */
export function parseExplanation(reply: string): string {
  return reply.split("activates on").at(-1)!.replace(/\.+$/, "").trim();
}

/** The example numbers in a reply ("2, 5 and 9", "None"); null when it is not such a list. */
export function parsePredictions(reply: string): number[] | null {
  const parts = reply.trim().replace(/\.+$/, "").replaceAll("and", ",").replaceAll("None", "").split(",")
    .map((s) => s.trim()).filter((s) => s !== "");
  if (!parts.every((s) => /^\d+$/.test(s))) return null;
  return parts.map(Number);
}

/** Fraction of the examples whose predicted and true activity agree. */
export function scorePredictions(predictions: number[], examples: Example[]): number {
  const predicted = new Set(predictions);
  return examples.filter((ex, i) => predicted.has(i + 1) === ex.isActive).length / examples.length;
}

export interface LatentInterpretation {
  latent: number;
  explanation: string;
  /** Scoring: the examples predicted active, those that are, and the score (absent when not scored). */
  predictions?: number[];
  correct?: number[];
  score?: number;
  /** The prompts and replies, for reading what the LLM saw. */
  logs: string;
}

export interface AutoInterpResult {
  /** Mean and sample standard deviation of the latents' scores (null without scores). */
  autointerp_score: number | null;
  autointerp_std_dev: number | null;
  latents: LatentInterpretation[];
}

/**
 * Explains (and scores) each latent through `chat`, `concurrency` latents at a time. A
 * scoring reply that is not a list of numbers drops the latent, as SAEBench does.
 */
export interface InterpretOptions {
  concurrency?: number;
  /** After each latent: how many are done (those from `done` included). */
  onLatent?: (done: number) => void;
  /**
   * Latents finished by an earlier run, not asked again: each one's interpretation, or null
   * where its scoring reply could not be parsed (the latent is dropped, as SAEBench does).
   */
  done?: ReadonlyMap<number, LatentInterpretation | null>;
  /** Each latent as it finishes (null: dropped), for a journal a rerun can resume from. */
  onResult?: (latent: number, result: LatentInterpretation | null) => void;
}

export async function interpretLatents(examples: Map<number, LatentExamples>, decode: (id: number) => string,
  chat: ChatFn, cfg: AutoInterpConfig, o: InterpretOptions = {}): Promise<AutoInterpResult> {
  const all = [...examples.keys()].sort((a, b) => a - b);
  const results = new Map<number, LatentInterpretation>();
  for (const l of all) {
    const before = o.done?.get(l);
    if (before) results.set(l, before);
  }
  const latents = all.filter((l) => !o.done?.has(l));
  let next = 0;
  let done = all.length - latents.length;
  if (done > 0) o.onLatent?.(done);
  const show = (messages: ChatMessage[], reply: string) =>
    [...messages, { role: "assistant", content: reply }].map((m) => `[${m.role}]\n${m.content}`).join("\n\n");
  const one = async (latent: number) => {
    const ex = examples.get(latent)!;
    // Each latent draws its scoring prompt's sample answer from its own stream.
    const rng = new Rng(cfg.seed * 1_000_003 + latent);
    const genMessages = generationMessages(ex.generation, decode, cfg);
    const genReply = (await chat(genMessages, cfg.maxTokensInExplanation)).trim();
    const explanation = parseExplanation(genReply);
    const result: LatentInterpretation = { latent, explanation, logs: `Generation phase\n${show(genMessages, genReply)}` };
    if (cfg.scoring) {
      const scoreMessages = scoringMessages(explanation, ex.scoring, decode, cfg, rng);
      const reply = (await chat(scoreMessages, maxTokensInPrediction(cfg))).trim();
      const predictions = parsePredictions(reply);
      if (predictions === null) {
        o.onResult?.(latent, null);
        return;
      }
      Object.assign(result, {
        predictions, correct: ex.scoring.flatMap((e, i) => (e.isActive ? [i + 1] : [])),
        score: scorePredictions(predictions, ex.scoring), logs: `${result.logs}\n\nScoring phase\n${show(scoreMessages, reply)}`,
      });
    }
    results.set(latent, result);
    o.onResult?.(latent, result);
  };
  // On a failure no new latent starts, the ones asked already finish (and reach onResult,
  // so a journal keeps them), and then the first error is thrown.
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (next < latents.length && failure === null) {
      try {
        await one(latents[next++]!);
      } catch (error) {
        failure ??= { error };
        return;
      }
      o.onLatent?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 8) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
  const kept = all.filter((l) => results.has(l)).map((l) => results.get(l)!);
  const scores = kept.flatMap((r) => (r.score === undefined ? [] : [r.score]));
  const mean = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null;
  const std = scores.length > 1 && mean !== null
    ? Math.sqrt(scores.reduce((a, s) => a + (s - mean) ** 2, 0) / (scores.length - 1)) : null;
  return { autointerp_score: mean, autointerp_std_dev: std, latents: kept };
}

/** HTTP statuses worth asking again: rate limits and the server's passing troubles. */
const TRANSIENT_STATUS = new Set([408, 409, 429, 500, 502, 503, 504]);

/**
 * An OpenAI-compatible chat client (OpenAI, or a local llama.cpp / vLLM / Ollama server):
 * POST {baseUrl}/chat/completions with the model, messages and max_tokens; the reply is
 * the first choice's content. A rate limit, a server error or a dropped connection is
 * retried `retries` times (5) after retryDelayMs (1 s) doubling each time, or after the
 * server's Retry-After when it gives one (at most a minute); other failures are not. Errors
 * name the endpoint and the status.
 */
export function openAiChat(o: {
  baseUrl: string; model: string; apiKey?: string; fetch?: typeof fetch; retries?: number; retryDelayMs?: number;
}): ChatFn {
  const doFetch = o.fetch ?? fetch;
  const url = `${o.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  const retries = o.retries ?? 5;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const post = async (messages: ChatMessage[], maxTokens: number): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      const wait = (o.retryDelayMs ?? 1000) * 2 ** attempt;
      let res: Response;
      try {
        res = await doFetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...(o.apiKey ? { Authorization: `Bearer ${o.apiKey}` } : {}) },
          body: JSON.stringify({ model: o.model, messages, max_tokens: maxTokens, n: 1, stream: false }),
        });
      } catch (e) {
        if (attempt >= retries) throw new Error(`${url}: ${(e as Error).message} (after ${attempt + 1} tries)`, { cause: e });
        await sleep(wait);
        continue;
      }
      if (res.ok || !TRANSIENT_STATUS.has(res.status) || attempt >= retries) return res;
      const after = Number(res.headers.get("retry-after"));
      await res.text(); // let the connection go
      await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 60_000) : wait);
    }
  };
  return async (messages, maxTokens) => {
    const res = await post(messages, maxTokens);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    const body = await res.json() as { choices?: Array<{ message?: { content?: string } }> };
    const content = body.choices?.[0]?.message?.content;
    if (typeof content !== "string") throw new Error(`${url}: the reply has no choices[0].message.content`);
    return content;
  };
}
