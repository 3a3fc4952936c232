/**
 * SAEBench's autointerp, piece by piece: example selection against hand-made activations,
 * the prompts, SAEBench's parsing and scoring of replies, the OpenAI-compatible client
 * against a stand-in server, and the whole run on a tiny model with a stand-in judge
 * (examples recomputed from the model directly).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { LatentInterpretation } from "../../src/eval/autointerp.js";
import { Rng } from "../../src/core/rng.js";
import {
  AUTOINTERP_DEFAULTS, type ChatMessage, type LatentActivations, gatherExamples, generationMessages, importanceSampledPositions,
  interpretLatents, openAiChat, parseExplanation, parsePredictions, scorePredictions, scoringMessages, topPositions,
} from "../../src/eval/autointerp.js";
import { chooseLatents, collectExamples, runAutoInterp } from "../../src/eval/autointerp-run.js";
import { saeBenchAutoInterpOutput } from "../../src/eval/saebench.js";
import { openContexts } from "../../src/lm/dataset.js";
import { loadModel } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { toDense } from "../../src/sae/sparse-code.js";
import { tempDir } from "../helpers.js";
import { writeTinyNeox } from "../lm/fixtures.js";

const cfg = { ...AUTOINTERP_DEFAULTS, buffer: 2 };

/** N contexts of T tokens (token = position), activations from f(context, position). */
function latent(N: number, T: number, f: (c: number, t: number) => number): LatentActivations {
  const acts = new Float32Array(N * T);
  for (let c = 0; c < N; c++) for (let t = 0; t < T; t++) acts[c * T + t] = f(c, t);
  return { latent: 7, tokens: Int32Array.from({ length: N * T }, (_, i) => i % T), acts, contexts: N, ctx: T };
}

describe("autointerp example selection", () => {
  it("top positions: the largest, away from the ends, none within the buffer of another", () => {
    const a = latent(2, 12, () => 0);
    // Context 0: peaks at 5 (9) and 6 (8, inside 5's buffer) and 10 (20, too near the end).
    a.acts[5] = 9; a.acts[6] = 8; a.acts[10] = 20; a.acts[2] = 3;
    a.acts[12 + 4] = 7; a.acts[12 + 8] = 5;
    expect(topPositions(a, 3, 2, true)).toEqual([5, 16, 20]);
    expect(topPositions(a, 3, 2, false)).toEqual([5, 6, 16]);
  });

  it("importance sampling draws below the threshold, without replacement, in proportion to act^2", () => {
    const a = latent(1, 10, (_, t) => [0, 0, 1, 2, 3, 9, 0, 1, 0, 0][t]!);
    const counts = new Map<number, number>();
    const rng = new Rng(1);
    for (let i = 0; i < 4000; i++) {
      const got = importanceSampledPositions(a, 2, 2, 5, rng);
      expect(new Set(got).size).toBe(2);
      for (const p of got) counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((x, y) => x - y)).toEqual([2, 3, 4, 7]); // 5 is at the threshold's side; 8, 9 too near the end
    // First draws favour act^2: position 4 (9) is drawn far more often than 2 (1).
    expect(counts.get(4)!).toBeGreaterThan(2 * counts.get(2)!);
  });

  it("splits top and importance-sampled examples between the phases, marks active tokens, and zeroes random ones", () => {
    // 40 contexts, each with one peak whose height grows with the context, and small noise.
    const a = latent(40, 16, (c, t) => (t === 8 ? 1 + c : t % 5 === 0 ? 0.05 * (1 + ((c * 7 + t) % 5)) : 0));
    const ex = gatherExamples(a, cfg, new Rng(3))!;
    expect(ex.generation).toHaveLength(15);
    expect(ex.scoring).toHaveLength(14);
    const peak = (e: { acts: number[] }) => Math.max(...e.acts);
    for (let i = 1; i < 15; i++) expect(peak(ex.generation[i]!)).toBeLessThanOrEqual(peak(ex.generation[i - 1]!));
    // The 12 top examples are the 12 strongest peaks (contexts 28..39); 10 explain, 2 are scored.
    const tops = [...ex.generation, ...ex.scoring].filter((e) => peak(e) >= 29);
    expect(tops.map(peak).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => 29 + i));
    // Active: above 1% of the largest activation in the top windows (0.4): the peaks only.
    for (const e of [...ex.generation, ...ex.scoring]) e.acts.forEach((v, i) => expect(e.active[i]).toBe(v > 0.4));
    // Random examples carry zero activations: 10 of the scoring ones, never active.
    expect(ex.scoring.filter((e) => e.acts.every((v) => v === 0))).toHaveLength(10);
    // A latent that never fires has no examples.
    expect(gatherExamples(latent(40, 16, () => 0), cfg, new Rng(3))).toBeNull();
  });

  it("chooses a seeded sample of the latents that fire more than the dead threshold", () => {
    const counts = Array.from({ length: 100 }, (_, j) => (j % 2 ? 100 : 15));
    const chosen = chooseLatents(counts, { ...cfg, nLatents: 10 });
    expect(chosen).toHaveLength(10);
    expect(chosen.every((j) => j % 2 === 1)).toBe(true);
    expect(chooseLatents(counts, { ...cfg, nLatents: 10 })).toEqual(chosen);
    expect(chooseLatents(counts, { ...cfg, nLatents: 1000 })).toHaveLength(50);
  });
});

describe("autointerp prompts and replies", () => {
  const decode = (id: number) => ` w${id}`;
  const ex = { tokens: [1, 2, 3], acts: [0, 5, 0], active: [false, true, false], isActive: true };
  const quiet = { tokens: [4, 5, 6], acts: [0, 0, 0], active: [false, false, false], isActive: false };

  it("shows generation examples with active tokens in << >>, scoring examples unmarked", () => {
    const gen = generationMessages([ex], decode, cfg);
    expect(gen[0]!.content).toMatch(/^We're studying neurons in a neural network\./);
    expect(gen[0]!.content).toContain("Some examples: \"This neuron activates on the word 'knows'");
    expect(gen[1]!.content).toBe("The activating documents are given below:\n\n1.  w1<< w2>> w3");
    const score = scoringMessages("the word w2", [ex, quiet], decode, cfg, new Rng(1));
    expect(score[0]!.content).toContain("be shown 14 example sequences in random order");
    expect(score[1]!.content).toBe("Here is the explanation: this neuron fires on the word w2.\n\nHere are the examples:\n\n1.  w1 w2 w3\n2.  w4 w5 w6");
  });

  it("parses replies and scores predictions as SAEBench does", () => {
    expect(parseExplanation("This neuron activates on the word 'cat' in stories.")).toBe("the word 'cat' in stories");
    expect(parsePredictions("1, 4 and 7.")).toEqual([1, 4, 7]);
    expect(parsePredictions("None")).toEqual([]);
    expect(parsePredictions("2, three")).toBeNull();
    expect(scorePredictions([1], [ex, quiet])).toBe(1);
    expect(scorePredictions([2], [ex, quiet])).toBe(0);
    expect(scorePredictions([], [ex, quiet])).toBe(0.5);
  });

  it("interprets latents concurrently; mean and sample standard deviation of the scores; unparseable scoring drops a latent", async () => {
    const examples = new Map([3, 5, 8].map((l) => [l, { generation: [ex], scoring: [ex, quiet] }]));
    const chat = async (m: ChatMessage[]) => {
      await new Promise((r) => setTimeout(r, 1));
      if (m[1]!.content.startsWith("The activating")) return "This neuron activates on w2.";
      return m[1]!.content.includes("fires on w2") ? (seen++ === 0 ? "1" : seen === 2 ? "None" : "lots") : "";
    };
    let seen = 0;
    const r = await interpretLatents(examples, decode, chat, cfg, { concurrency: 2 });
    expect(r.latents.map((l) => l.explanation)).toEqual(["w2", "w2"]);
    expect(r.latents.map((l) => l.score).sort()).toEqual([0.5, 1]);
    expect(r.autointerp_score).toBe(0.75);
    expect(r.autointerp_std_dev).toBeCloseTo(Math.SQRT1_2 / 2, 12);
  });

  it("explains without scoring when asked: one call per latent, no scores", async () => {
    const examples = new Map([[4, { generation: [ex], scoring: [ex, quiet] }]]);
    const asked: string[] = [];
    const r = await interpretLatents(examples, decode, async (m) => { asked.push(m[1]!.content); return "This neuron activates on w2."; }, { ...cfg, scoring: false });
    expect(asked).toHaveLength(1);
    expect(r.latents).toEqual([expect.objectContaining({ latent: 4, explanation: "w2" })]);
    expect(r.latents[0]!.score).toBeUndefined();
    expect([r.autointerp_score, r.autointerp_std_dev]).toEqual([null, null]);
  });

  it("speaks to an OpenAI-compatible endpoint and says which one failed", async () => {
    const calls: Array<{ url: string; init: RequestInit }> = [];
    const fake = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return new Response(JSON.stringify({ choices: [{ message: { content: "1, 2" } }] }), { status: 200 });
    }) as unknown as typeof fetch;
    const chat = openAiChat({ baseUrl: "http://localhost:8080/v1/", model: "judge", apiKey: "k", fetch: fake });
    expect(await chat([{ role: "user", content: "hi" }], 33)).toBe("1, 2");
    expect(calls[0]!.url).toBe("http://localhost:8080/v1/chat/completions");
    expect(new Headers(calls[0]!.init.headers).get("Authorization")).toBe("Bearer k");
    expect(JSON.parse(String(calls[0]!.init.body))).toMatchObject({ model: "judge", max_tokens: 33, messages: [{ role: "user", content: "hi" }] });
    const failing = (async () => new Response("rate limited", { status: 429 })) as unknown as typeof fetch;
    await expect(openAiChat({ baseUrl: "http://x/v1", model: "m", fetch: failing, retries: 0 })([], 5)).rejects.toThrow("http://x/v1/chat/completions: HTTP 429 rate limited");
  });

  it("retries rate limits, server errors and dropped connections, but not a bad request", async () => {
    const ok = () => new Response(JSON.stringify({ choices: [{ message: { content: "fine" } }] }), { status: 200 });
    const scripted = (steps: Array<() => Response>) => {
      let calls = 0;
      const f = (async () => steps[Math.min(calls++, steps.length - 1)]!()) as unknown as typeof fetch;
      return { f, calls: () => calls };
    };
    const chat = (f: typeof fetch, retries = 3) => openAiChat({ baseUrl: "http://x/v1", model: "m", fetch: f, retries, retryDelayMs: 1 });
    const limited = scripted([() => new Response("slow down", { status: 429, headers: { "Retry-After": "0.001" } }),
      () => new Response("busy", { status: 503 }), ok]);
    expect(await chat(limited.f)([], 5)).toBe("fine");
    expect(limited.calls()).toBe(3);
    const dropped = scripted([() => { throw new TypeError("fetch failed"); }, ok]);
    expect(await chat(dropped.f)([], 5)).toBe("fine");
    expect(dropped.calls()).toBe(2);
    const bad = scripted([() => new Response("no such model", { status: 400 }), ok]);
    await expect(chat(bad.f)([], 5)).rejects.toThrow("HTTP 400 no such model");
    expect(bad.calls()).toBe(1);
    const down = scripted([() => new Response("down", { status: 502 })]);
    await expect(chat(down.f, 2)([], 5)).rejects.toThrow("HTTP 502 down");
    expect(down.calls()).toBe(3);
    const gone = scripted([() => { throw new TypeError("fetch failed"); }]);
    await expect(chat(gone.f, 1)([], 5)).rejects.toThrow("http://x/v1/chat/completions: fetch failed (after 2 tries)");
  });

  it("a failure lets the latents in flight finish, then throws; a rerun given them asks only for the rest", async () => {
    const examples = new Map([1, 2, 3, 4, 5, 6].map((l) => [l, { generation: [ex], scoring: [ex, quiet] }]));
    let calls = 0;
    const reply = async (m: ChatMessage[], _maxTokens?: number) => {
      calls++;
      await new Promise((r) => setTimeout(r, 2));
      return m[1]!.content.startsWith("The activating") ? "This neuron activates on w2." : "1";
    };
    // Two latents run at a time, and the fourth generation request fails: latent 4's, asked
    // while latent 3 is in flight.
    let generations = 0;
    const flaky = async (m: ChatMessage[], n: number) => {
      if (m[1]!.content.startsWith("The activating") && ++generations === 4) throw new Error("quota spent");
      return reply(m, n);
    };
    const journal = new Map<number, LatentInterpretation | null>();
    await expect(interpretLatents(examples, decode, flaky, cfg, { concurrency: 2, onResult: (l, r) => journal.set(l, r) }))
      .rejects.toThrow("quota spent");
    // Latents 1 and 2 finished; 3, in flight when 4 failed, finished too; 5 and 6 never started.
    expect([...journal.keys()].sort()).toEqual([1, 2, 3]);
    calls = 0;
    const asked: number[] = [];
    const resumed = await interpretLatents(examples, decode, async (m, n) => {
      if (m[1]!.content.startsWith("The activating")) asked.push(asked.length);
      return reply(m, n);
    }, cfg, { concurrency: 2, done: journal });
    expect(asked).toHaveLength(3); // 4, 5 and 6
    expect(calls).toBe(6);
    const whole = await interpretLatents(examples, decode, reply, cfg, { concurrency: 2 });
    expect(resumed).toEqual(whole);
  });
});

describe("autointerp on a model", async () => {
  const dir = tempDir();
  const text = join(dir, "stories.txt");
  writeFileSync(text, Array.from({ length: 120 }, (_, i) =>
    `Once upon a time a dog called Rex ${i} ran to the park, and ${i % 9} birds sang.`).join("<|endoftext|>"));
  const loaded = await loadModel(writeTinyNeox(join(dir, "model"), { seed: 2 }));
  const model = loaded.model;
  const d = model.cfg.dModel;
  const ctx = 32;
  const contexts: Int32Array[] = [];
  for await (const c of openContexts(loaded, text, { ctx, prependBos: true }).contexts) contexts.push(c);
  const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: 24, k: 3 }));
  const rng = new Rng(5);
  for (const t of sae.params.values()) rng.fillNormal(t.data, 0.4);
  const hook = "blocks.0.hook_resid_post";
  const o = { hook, ctx, batch: 8, special: [0] };
  const small = { ...AUTOINTERP_DEFAULTS, buffer: 4, nLatents: 6 };

  it("collects each chosen latent's examples from the model's own activations, BOS masked", () => {
    const got = collectExamples(model, sae, contexts, small, o);
    expect(got.chosen).toHaveLength(6);
    expect(got.examples.size).toBeGreaterThan(0);
    // Recount one latent directly: its code at every position of every context.
    const [latentId, ex] = [...got.examples][0]!;
    const dense = contexts.map((c) => {
      let act: Float32Array | null = null;
      model.forward(c, 1, ctx, { output: "none", hooks: { [hook]: (a) => { act = a.slice(); } } });
      // BOS (id 0) starts each context and separates documents: masked wherever it is.
      return Array.from({ length: ctx }, (_, t) => (c[t] === 0 ? 0 : toDense(sae.encode(act!.subarray(t * d, (t + 1) * d), 1))[latentId]!));
    });
    // Every window by its tokens (the stories repeat, so one token window can occur in several places).
    const windows = new Map<string, number[][]>();
    dense.forEach((row, c) => {
      for (let t = 4; t < ctx - 4; t++) {
        const key = Array.from(contexts[c]!.subarray(t - 4, t + 5)).join(",");
        windows.set(key, [...(windows.get(key) ?? []), row.slice(t - 4, t + 5)]);
      }
    });
    for (const e of [...ex.generation, ...ex.scoring.filter((s) => s.acts.some((v) => v !== 0))]) {
      const candidates = windows.get(e.tokens.join(",")) ?? [];
      expect(candidates.some((w) => w.every((v, i) => Math.abs(v - e.acts[i]!) < 1e-4))).toBe(true);
    }
  });

  it("runs end to end with a judge, and writes SAEBench's autointerp output", async () => {
    const judge = async (m: ChatMessage[]) => (m[1]!.content.startsWith("The activating") ? "This neuron activates on dogs." : "1, 3");
    const r = await runAutoInterp(model, sae, contexts, (id) => loaded.tokenizer!.decode([id]), judge, small, { ...o, progress: false });
    expect(r.latents.length + r.skipped.length).toBe(6);
    expect(r.latents.every((l) => l.explanation === "dogs" && l.predictions!.join() === "1,3")).toBe(true);
    const out = saeBenchAutoInterpOutput(r, small, {
      modelName: "tiny", dataset: "stories.txt", contextSize: ctx, batch: 8, totalTokens: r.tokens, overrideLatents: null,
      llmModel: "judge", saeCfg: {}, saeId: "sae",
    }) as { eval_type_id: string; eval_result_metrics: { autointerp: { autointerp_score: number } }; eval_result_unstructured: Record<string, { score: number }> };
    expect(out.eval_type_id).toBe("autointerp");
    expect(out.eval_result_metrics.autointerp.autointerp_score).toBe(r.autointerp_score);
    expect(Object.keys(out.eval_result_unstructured)).toHaveLength(r.latents.length);
  });
});
