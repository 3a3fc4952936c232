/**
 * Feature absorption: the L1 ranking probe against its optimality conditions, one word's
 * absorption by hand, the whole measure on activations with a planted absorber, the
 * first-letter task on a real tokenizer, and `saekit absorption` end to end.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import { Rng } from "../../src/core/rng.js";
import { ABSORPTION_DEFAULTS, type LabelledActivations, f1Score, measureAbsorption, wordAbsorption } from "../../src/eval/absorption.js";
import { LETTERS, alphaTokens, spellingPrompts, wordActivations } from "../../src/eval/first-letter.js";
import { fitL1LogisticCsr } from "../../src/eval/l1-logistic.js";
import { sigmoid } from "../../src/eval/logistic-regression.js";
import { loadModel } from "../../src/lm/load.js";
import { loadTokenizer } from "../../src/lm/load.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { saveSae } from "../../src/sae/saelens.js";
import { fromDense } from "../../src/sae/sparse-code.js";
import { sharedData, tempDir } from "../helpers.js";
import { writeTinyGpt2 } from "../lm/fixtures.js";

const dir = tempDir();

describe("L1 logistic probe on sparse codes", () => {
  it("meets the L1 optimality conditions: |grad_j| <= l1 where w_j = 0, grad_j = -l1 sign(w_j) elsewhere", () => {
    const rng = new Rng(3);
    const n = 300, m = 40;
    const dense = new Float32Array(n * m).map(() => (rng.uniform() < 0.15 ? rng.uniform() * 2 : 0));
    const y = Uint8Array.from({ length: n }, (_, i) => (dense[i * m + 3]! + 0.5 * dense[i * m + 7]! + 0.3 * rng.normal() > 0.4 ? 1 : 0));
    const X = fromDense(dense, n, m);
    const l1 = 0.01, posWeight = 2;
    const fit = fitL1LogisticCsr(X, y, { l1, posWeight, tol: 1e-10, maxIter: 20000 });
    // The smooth part's gradient, in float64 on the dense matrix.
    const grad = new Float64Array(m + 1);
    for (let i = 0; i < n; i++) {
      let z = fit.b;
      for (let j = 0; j < m; j++) z += dense[i * m + j]! * fit.w[j]!;
      const s = y[i] ? 1 : -1;
      const r = (-(y[i] ? posWeight : 1) * s * sigmoid(-s * z)) / n;
      for (let j = 0; j < m; j++) grad[j]! += r * dense[i * m + j]!;
      grad[m]! += r;
    }
    expect(Math.abs(grad[m]!)).toBeLessThan(1e-6);
    let zeros = 0;
    for (let j = 0; j < m; j++) {
      if (fit.w[j] === 0) {
        zeros++;
        expect(Math.abs(grad[j]!)).toBeLessThanOrEqual(l1 + 1e-6);
      } else {
        expect(grad[j]! + l1 * Math.sign(fit.w[j]!)).toBeCloseTo(0, 5);
      }
    }
    expect(zeros).toBeGreaterThan(10); // the penalty does select
    expect(fit.w[3]).toBeGreaterThan(0);
    expect(fit.w[3]).toBeGreaterThan(Math.max(...[...fit.w].filter((_, j) => j !== 3 && j !== 7)));
  });
});

describe("absorption of one word", () => {
  const o = ABSORPTION_DEFAULTS;
  // Four latents: 0 and 1 are the letter's main latents; 2 and 3 others.
  const latentProjection = Float64Array.of(1, 0.8, 0.6, 0.05);
  const cosine = Float64Array.of(1, 0.8, 0.6, 0.05);

  it("is 0 when the main latents account for the probe projection", () => {
    const r = wordAbsorption(1, { idx: [0, 2], val: [1.2, 0.5] }, latentProjection, cosine, [0, 1], o);
    expect(r.main_projection).toBeCloseTo(1.2, 12);
    expect(r.absorption_fraction).toBe(0);
    expect(r.is_full_absorption).toBe(false);
  });

  it("splits the projection between main latents and up to three aligned absorbers", () => {
    // main: 0.5 * 1 = 0.5; absorber 2: 1 * 0.6 = 0.6 (>= 0.4 of 1.0); unaccounted 0.5.
    const r = wordAbsorption(1, { idx: [0, 2, 3], val: [0.5, 1, 2] }, latentProjection, cosine, [0, 1], o);
    expect(r.main_projection).toBeCloseTo(0.5, 12);
    expect(r.absorption_fraction).toBeCloseTo(0.5 / (0.5 + 0.5), 12);
    expect(r.is_full_absorption).toBe(false); // a main latent fires
    // Latent 3 (cos 0.05 < 0.1) cannot absorb: alone, it leaves the fraction at 0.
    expect(wordAbsorption(1, { idx: [0, 3], val: [0.5, 10] }, latentProjection, cosine, [0, 1], o).absorption_fraction).toBe(0);
  });

  it("is full absorption when the main latents are silent and one aligned latent carries the projection", () => {
    const r = wordAbsorption(2, { idx: [2], val: [2] }, latentProjection, cosine, [0, 1], o);
    expect(r.absorption_fraction).toBe(1);
    expect(r.is_full_absorption).toBe(true);
    expect(r.top_latent).toBe(2);
    expect(r.top_projection).toBeCloseTo(1.2, 12);
    // ... but not when that latent carries less than 0.4 of it.
    expect(wordAbsorption(4, { idx: [2], val: [2] }, latentProjection, cosine, [0, 1], o).is_full_absorption).toBe(false);
  });

  it("counts F1 as SAEBench does", () => {
    expect(f1Score([true, true, false, false], [true, false, true, false])).toBeCloseTo(0.5, 12);
    expect(f1Score([false, false], [true, false])).toBe(0);
  });
});

describe("absorption with a planted absorber", () => {
  // d = 27: one direction per letter and one for "apple-like" words. 50 train and 50 test
  // words per letter; 2 of each 50 'a' words are apple-like.
  const d = 27;
  function words(seed: number): LabelledActivations {
    const rng = new Rng(seed);
    const n = 26 * 50;
    const x = new Float32Array(n * d).map(() => 0.02 * rng.normal());
    const letters = new Uint8Array(n);
    for (let L = 0; L < 26; L++) {
      for (let w = 0; w < 50; w++) {
        const i = L * 50 + w;
        letters[i] = L;
        x[i * d + L]! += 1;
        if (L === 0 && w < 2) x[i * d + 26]! += 1;
      }
    }
    return { x, letters, n };
  }
  // A ReLU SAE: latent L reads letter L (but latent 0 is shut off by the apple direction);
  // latent 26 fires on apple-like words and writes both "a" and "apple".
  const sae = createSae(defaultConfig({ architecture: "relu", d_in: d, d_sae: d }));
  const W_enc = sae.params.get("W_enc")!.data;
  const W_dec = sae.params.get("W_dec")!.data;
  sae.params.get("b_enc")!.data.fill(-0.5);
  for (let j = 0; j < 26; j++) {
    W_enc[j * d + j] = 1;
    W_dec[j * d + j] = 1;
  }
  W_enc[0 * d + 26] = -2;
  W_enc[26 * d + 26] = 2;
  W_dec[26 * d + 0] = Math.SQRT1_2;
  W_dec[26 * d + 26] = Math.SQRT1_2;

  it("finds the main latent of every letter and the absorbed 'a' words", () => {
    const r = measureAbsorption(sae, words(1), words(2));
    expect(r.letters.map((l) => l.letter).join("")).toBe(LETTERS);
    for (const l of r.letters) {
      const L = LETTERS.indexOf(l.letter);
      expect(l.included).toBe(true);
      expect(l.probe_f1).toBeGreaterThan(0.95);
      expect(l.main_latents).toEqual([L]); // the absorber does not lift F1 by 0.03
      expect(l.num_probe_true_positives).toBe(50);
      if (L === 0) {
        // The two apple-like test words (rows 0 and 1): latent 0 silent, latent 26 carries it.
        expect(l.words.filter((w) => w.is_full_absorption).map((w) => w.row)).toEqual([0, 1]);
        expect(l.words.filter((w) => w.absorption_fraction === 1).map((w) => w.row)).toEqual([0, 1]);
        expect(l.words.filter((w) => w.absorption_fraction > 0).length).toBe(2);
        expect(l.words[0]!.top_latent).toBe(26);
        expect(l.mean_absorption_fraction).toBeCloseTo(2 / 50, 12);
        expect(l.full_absorption_rate).toBeCloseTo(2 / 50, 12);
        expect(l.k_sparse_f1[0]).toBeCloseTo(96 / 98, 6);
      } else {
        expect(l.mean_absorption_fraction).toBe(0);
        expect(l.num_full_absorption).toBe(0);
      }
    }
    expect(r.mean_absorption_fraction_score).toBeCloseTo(2 / 50 / 26, 12);
    expect(r.mean_full_absorption_score).toBeCloseTo(2 / 50 / 26, 12);
    expect(r.mean_num_split_features).toBe(1);
    expect(r.std_dev_num_split_features).toBe(0);
    expect(r.letters_scored).toBe(26);
    // Too few letters with a working probe: no scores at all.
    const strict = measureAbsorption(sae, words(1), words(2), { minLetters: 27 });
    expect(strict.mean_absorption_fraction_score).toBeNull();
    expect(strict.mean_full_absorption_score).toBeNull();
    expect(strict.letters_scored).toBe(26);
  });
});

const gpt2Dir = sharedData("tokenizers/gpt2");

describe.skipIf(!gpt2Dir)("the first-letter task on GPT-2's tokenizer", () => {
  it("picks the alphabetic tokens and finds each word's token in its prompt", () => {
    // The shared files are GPT-2's vocab.json + merges.txt under other names.
    const tokDir = join(dir, "gpt2-tokenizer");
    mkdirSync(tokDir, { recursive: true });
    copyFileSync(join(gpt2Dir!, "gpt2_vocab.json"), join(tokDir, "vocab.json"));
    copyFileSync(join(gpt2Dir!, "gpt2_merges.txt"), join(tokDir, "merges.txt"));
    const tokenizer = loadTokenizer(tokDir);
    const words = alphaTokens(tokenizer);
    const texts = new Set(words.map((w) => w.word));
    for (const w of [" cat", "cat", " The", " apple"]) expect(texts.has(w), w).toBe(true);
    for (const w of [" 2020", "'s", " cat.", ".", " "]) expect(texts.has(w), w).toBe(false);
    expect(words.every((w) => LETTERS[w.letter] === w.word.trim()[0]!.toLowerCase())).toBe(true);
    expect(words.length).toBeGreaterThan(20000);
    const sample = words.filter((_, i) => i % 500 === 0);
    const { prompts, skipped } = spellingPrompts(tokenizer, sample, words, new Rng(1), { bos: 50256 });
    expect(prompts.length + skipped).toBe(sample.length);
    expect(prompts.length).toBeGreaterThan(sample.length * 0.9);
    for (const p of prompts) {
      expect(p.tokens[0]).toBe(50256);
      expect(p.tokens[p.position]).toBe(p.word.token);
      // " has the first letter:" is 5 tokens: the word sits at -6, SAEBench's position.
      expect(p.position).toBe(p.tokens.length - 6);
      const text = tokenizer.decode(p.tokens.subarray(1));
      expect(text.endsWith(`${p.word.word} has the first letter:`)).toBe(true);
      expect(text.split("\n")).toHaveLength(11);
      expect(text.split("\n")[0]).toMatch(/^.+ has the first letter: [A-Z]$/);
    }
  });
});

describe("saekit absorption", () => {
  it("runs the first-letter task on a model and writes SAEBench's absorption output", async () => {
    const modelDir = writeTinyGpt2(join(dir, "gpt2"), { vocab: 400, d: 32, layers: 1, ctx: 1024 });
    const loaded = await loadModel(modelDir);
    // The tiny tokenizer's alphabetic tokens are single letters and their merges.
    const words = alphaTokens(loaded.tokenizer!);
    expect(words.length).toBeGreaterThan(40);
    const { prompts } = spellingPrompts(loaded.tokenizer!, words.slice(0, 5), words, new Rng(2), { bos: loaded.bosId, examples: 3 });
    const acts = wordActivations(loaded.model, prompts, "blocks.0.hook_resid_post", { batch: 2 });
    // Each row is the activation at the word's position in that prompt alone.
    prompts.forEach((p, i) => {
      let row: Float32Array | null = null;
      loaded.model.forward(p.tokens, 1, p.tokens.length, {
        stopAt: "blocks.0.hook_resid_post", output: "none",
        hooks: { "blocks.0.hook_resid_post": (a) => { row = a.slice(p.position * 32, (p.position + 1) * 32); } },
      });
      for (let c = 0; c < 32; c++) expect(acts[i * 32 + c]).toBeCloseTo(row![c]!, 5);
    });

    const saeDir = join(dir, "sae");
    const sae = createSae(defaultConfig({ architecture: "topk", d_in: 32, d_sae: 64, k: 4 }));
    const rng = new Rng(5);
    for (const t of sae.params.values()) rng.fillNormal(t.data, 0.3);
    saveSae(saeDir, sae, { metadata: { hook_name: "blocks.0.hook_resid_post", model_name: "tiny-gpt2" } });
    const out = join(dir, "absorption.json");
    const bench = join(dir, "absorption-saebench.json");
    const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "absorption", "--model", modelDir, "--sae", saeDir,
      "--examples", "3", "--max-k", "3", "--min-letters", "0", "--out", out, "--saebench", bench], { encoding: "utf8", env: { ...process.env, SAEKIT_THREADS: "1" } });
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    // The file also lists every scored word; the printed summary leaves them out.
    const file = JSON.parse(readFileSync(out, "utf8"));
    expect({ ...file, letters: file.letters.map(({ words: _w, ...l }: { words: unknown }) => l) }).toEqual(printed);
    for (const l of file.letters) expect(l.words.length).toBe(l.num_probe_true_positives);
    expect(printed.words).toBe(words.length);
    expect(printed.train_words + printed.test_words + printed.skipped_words).toBe(words.length);
    for (const l of printed.letters) {
      expect(l.main_latents.length).toBeLessThanOrEqual(3);
      expect(l.k_sparse_f1.length).toBeLessThanOrEqual(3);
      expect(l.mean_absorption_fraction).toBeGreaterThanOrEqual(0);
      expect(l.mean_absorption_fraction).toBeLessThanOrEqual(1);
      expect(l.words).toBeUndefined(); // per-word rows stay out of the summary
    }
    const sb = JSON.parse(readFileSync(bench, "utf8"));
    expect(sb.eval_type_id).toBe("absorption_first_letter");
    expect(sb.eval_config.max_k_value).toBe(3);
    expect(Object.keys(sb.eval_result_metrics.mean).sort()).toEqual([
      "mean_absorption_fraction_score", "mean_full_absorption_score", "mean_num_split_features",
      "std_dev_absorption_fraction_score", "std_dev_full_absorption_score", "std_dev_num_split_features",
    ]);
    expect(sb.eval_result_details.length).toBe(printed.letters.filter((l: { included: boolean }) => l.included).length);
  }, 60_000);
});
