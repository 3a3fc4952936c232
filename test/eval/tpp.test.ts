/**
 * Targeted probe perturbation: the ablation by hand, latent selection and the metric on
 * pooled vectors where each class has its own SAE latent, and `saekit tpp` end to end.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import { Rng } from "../../src/core/rng.js";
import type { ClassRows } from "../../src/eval/sparse-probing.js";
import { ablateLatents, targetedProbePerturbation, topLatentsByEffect } from "../../src/eval/tpp.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { pooledDecoderMatrix } from "../../src/sae/sae.js";
import { tempDir } from "../helpers.js";
import { writeTinyModelAndSae } from "./tiny-task.js";

const dir = tempDir();

describe("TPP on pooled vectors", () => {
  it("ablates x - sum_j f_j W_dec_j and ranks latents by effect", () => {
    const W_dec = Float32Array.of(1, 0, 0, 1, 2, 2); // 3 latents, d = 2
    const x = Float32Array.of(5, 5, 1, 1);
    const codes = Float32Array.of(1, 2, 0.5, 0, 0, 1);
    expect([...ablateLatents(x, codes, 2, 2, 3, W_dec, [0, 2])]).toEqual([5 - 1 - 1, 5 - 1, 1 - 2, 1 - 2]);
    expect([...ablateLatents(x, codes, 2, 2, 3, W_dec, [])]).toEqual([...x]);
    expect(topLatentsByEffect(Float64Array.of(0.5, 0, 2, -1, 0.5), 3)).toEqual([2, 0, 4]);
    expect(topLatentsByEffect(Float64Array.of(0, 0.1, 0), 5)).toEqual([1]); // only non-zero effects
  });

  it("refuses an SAE that normalises each token: its latents' parts do not survive pooling", () => {
    const normalised = createSae(defaultConfig({ architecture: "topk", d_in: 4, d_sae: 8, k: 2, input_normalization: "layer_norm" }));
    expect(() => pooledDecoderMatrix(normalised, "TPP")).toThrow(/TPP removes latents from activations pooled over tokens; this SAE normalises each token \(layer_norm\)/);
    expect(pooledDecoderMatrix(createSae(defaultConfig({ architecture: "topk", d_in: 4, d_sae: 8, k: 2 })), "TPP")).toHaveLength(32);
  });

  it("scores an SAE whose latents are the classes above one whose latents are shared", () => {
    // Three classes in d = 8: class c lifts its own pair of dims (2c, 2c + 1) on top of noise.
    const d = 8;
    const rng = new Rng(4);
    const rows = (perClass: number) => {
      const classes = new Map<string, Float32Array>();
      for (const c of [0, 1, 2]) {
        const x = new Float32Array(perClass * d).map(() => 0.4 * rng.normal());
        for (let i = 0; i < perClass; i++) { x[i * d + 2 * c]! += 1.5; x[i * d + 2 * c + 1]! += 1.5; }
        classes.set(`class${c}`, x);
      }
      return { width: d, classes } as ClassRows;
    };
    // Codes of an SAE with decoder rows W_dec (m = 4) fitted by least squares to each row.
    const encode = (split: ClassRows, W: number[][]): ClassRows => {
      const m = W.length;
      const classes = new Map<string, Float32Array>();
      for (const [c, x] of split.classes) {
        const n = x.length / d;
        const f = new Float32Array(n * m);
        // Orthonormal-ish rows: the code is the projection, clamped at 0 like a ReLU SAE.
        for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
          let s = 0;
          for (let k = 0; k < d; k++) s += x[i * d + k]! * W[j]![k]!;
          f[i * m + j] = Math.max(0, s);
        }
        classes.set(c, f);
      }
      return { width: m, classes };
    };
    const h = Math.SQRT1_2;
    // Specific: one latent per class (its dim pair), one spare. Shared: latents mixing classes.
    const specific = [[h, h, 0, 0, 0, 0, 0, 0], [0, 0, h, h, 0, 0, 0, 0], [0, 0, 0, 0, h, h, 0, 0], [0, 0, 0, 0, 0, 0, h, h]];
    const shared = [[0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0, 0.5, 0.5, 0, 0], [0, 0, 0, 0, 0, 0, h, h]];
    const train = rows(150), test = rows(100);
    const run = (W: number[][]) => targetedProbePerturbation(
      { model: train, sae: encode(train, W) }, { model: test, sae: encode(test, W) }, Float32Array.from(W.flat()), { nValues: [1, 2], seed: 3 });
    const good = run(specific);
    const bad = run(shared);
    // Each class's own latent comes first, and ablating it hurts its probe more than the others'.
    good.classes.forEach((c, i) => {
      expect(c.ablated_latents["1"]).toEqual([i]);
      expect(c.clean_accuracy).toBeGreaterThan(0.9);
      expect(c.intended_diff_only["1"]).toBeGreaterThan(c.unintended_diff_only["1"]!);
    });
    expect(good.total_metric["1"]).toBeGreaterThan(0.3);
    // Ablating latents that mix classes hurts every probe about equally.
    expect(Math.abs(bad.total_metric["1"]!)).toBeLessThan(0.15);
    // total = intended - unintended, per class and on average.
    for (const r of [good, bad]) {
      expect(r.total_metric["2"]).toBeCloseTo(r.intended_diff_only["2"]! - r.unintended_diff_only["2"]!, 12);
      expect(r.total_metric["1"]).toBeCloseTo(r.classes.reduce((s, c) => s + c.total_metric["1"]!, 0) / 3, 12);
    }
  });
});

describe("saekit tpp", () => {
  it("runs on a labelled dataset and writes SAEBench's tpp output", () => {
    const { modelDir, saeDir } = writeTinyModelAndSae(dir);
    const rng = new Rng(7);
    const words: Record<string, string[]> = { sport: ["ball", "goal", "run"], food: ["cake", "soup", "rice"], sea: ["fish", "wave", "boat"] };
    const lines: string[] = [];
    for (let i = 0; i < 100; i++) {
      for (const [label, ws] of Object.entries(words)) lines.push(JSON.stringify({ text: Array.from({ length: 5 }, () => ws[rng.int(3)]).join(" "), label }));
    }
    const data = join(dir, "topics.jsonl");
    writeFileSync(data, lines.join("\n"));
    const bench = join(dir, "tpp-saebench.json");
    const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "tpp", "--model", modelDir, "--sae", saeDir,
      "--dataset", data, "--train-per-class", "60", "--test-per-class", "30", "--n", "2,5", "--ctx", "8", "--saebench", bench],
    { encoding: "utf8", env: { ...process.env, SAEKIT_THREADS: "1" } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.classes.map((c: { class: string }) => c.class)).toEqual(["food", "sea", "sport"]);
    expect(Object.keys(out.total_metric)).toEqual(["2", "5"]);
    for (const c of out.classes) {
      expect(c.ablated_latents["5"].length).toBeLessThanOrEqual(5);
      expect(c.ablated_latents["5"].slice(0, c.ablated_latents["2"].length)).toEqual(c.ablated_latents["2"]);
    }
    const sb = JSON.parse(readFileSync(bench, "utf8"));
    expect(sb.eval_type_id).toBe("tpp");
    expect(sb.eval_config).toMatchObject({ perform_scr: false, n_values: [2, 5], train_set_size: 180, test_set_size: 90 });
    expect(sb.eval_result_metrics.tpp_metrics.tpp_threshold_5_total_metric).toBe(out.total_metric["5"]);
    expect(sb.eval_result_unstructured[data].sea.tpp_threshold_2_intended_diff_only).toBe(out.classes[1].intended_diff_only["2"]);
  }, 60_000);
});
