/**
 * k-sparse probing: the class-balanced data, the top-k selection, probes on data with a
 * known answer, mean pooling against a one-text-at-a-time oracle, labelled datasets and
 * their class splits, and `saekit probe` end to end on a tiny model.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/core/native.js";
import { Rng } from "../../src/core/rng.js";
import { readLabeledTexts, splitByClass, type LabeledText } from "../../src/data/labeled.js";
import { meanPooledActivations, probeTokens } from "../../src/eval/pooled-activations.js";
import { type ClassRows, oneVsRest, sparseProbing, topKMeanDiff } from "../../src/eval/sparse-probing.js";
import { loadModel } from "../../src/lm/load.js";
import { toDense } from "../../src/sae/sparse-code.js";
import { maxAbsDiff, tempDir } from "../helpers.js";
import { writeTinyNeox } from "../lm/fixtures.js";
import { randomSae, writeTinyModelAndSae } from "./tiny-task.js";

const dir = tempDir();

/** Classes "a", "b", "c" in `width` dims: noise, plus +2 on dim 3*c for class c. */
function syntheticRows(seed: number, perClass: number, width: number): ClassRows {
  const rng = new Rng(seed);
  const classes = new Map<string, Float32Array>();
  ["a", "b", "c"].forEach((name, c) => {
    const rows = new Float32Array(perClass * width).map(() => 0.5 * rng.normal());
    for (let i = 0; i < perClass; i++) rows[i * width + 3 * c]! += 2;
    classes.set(name, rows);
  });
  return { width, classes };
}

describe("sparse probing on pooled vectors", () => {
  it("builds balanced one-vs-rest data from the class's rows and evenly drawn negatives", () => {
    const width = 2;
    // Row values encode (class, index) so every drawn row can be traced back.
    const classes = new Map<string, Float32Array>();
    const sizes = { a: 10, b: 7, c: 30 };
    Object.entries(sizes).forEach(([name, n], c) => {
      classes.set(name, Float32Array.from({ length: n * width }, (_, i) => (i % 2 === 0 ? c : Math.floor(i / 2))));
    });
    const data = oneVsRest({ width, classes }, "a", new Rng(5));
    expect(data.n).toBe(20);
    const pos: string[] = [], neg: string[] = [];
    for (let i = 0; i < data.n; i++) (data.y[i] ? pos : neg).push(`${data.x[i * 2]}:${data.x[i * 2 + 1]}`);
    expect(pos.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `0:${i}`).sort());
    expect(neg.length).toBe(10);
    expect(new Set(neg).size).toBe(10); // drawn without replacement
    expect(neg.every((r) => r.startsWith("1:") || r.startsWith("2:"))).toBe(true);
    // ceil(10 / 2) = 5 drawn from each other class, then 10 of those 10.
    expect(neg.filter((r) => r.startsWith("1:")).length).toBe(5);
  });

  it("ranks dimensions by |mean difference| and probes a known signal", () => {
    const width = 6;
    const n = 8;
    const x = new Float32Array(n * width);
    const y = Uint8Array.from({ length: n }, (_, i) => (i < 4 ? 1 : 0));
    for (let i = 0; i < n; i++) {
      x[i * width + 3] = y[i] ? 5 : 0; // difference 5
      x[i * width + 1] = y[i] ? 0 : 2; // difference 2 (negative direction counts too)
      x[i * width + 4] = 1; // no difference
    }
    expect([...topKMeanDiff({ x, y, n }, width, 2)]).toEqual([3, 1]);
    expect(() => topKMeanDiff({ x, y, n }, width, 7)).toThrow(/k = 7/);

    const train = syntheticRows(1, 60, 12);
    const test = syntheticRows(2, 30, 12);
    const r = sparseProbing(train, test, { kValues: [1, 2], full: true, seed: 3 });
    expect(r.classes.map((c) => c.class)).toEqual(["a", "b", "c"]);
    r.classes.forEach((c, i) => {
      expect(c.top_k_dims["1"]).toEqual([3 * i]);
      expect(c.train_rows).toBe(120);
      expect(c.test_rows).toBe(60);
      expect(c.top_k_test_accuracy["1"]).toBeGreaterThan(0.95);
    });
    expect(r.test_accuracy).toBeGreaterThan(0.95);
    // Mean over classes.
    expect(r.top_k_test_accuracy["2"]).toBeCloseTo(r.classes.reduce((s, c) => s + c.top_k_test_accuracy["2"]!, 0) / 3, 12);
    // Deterministic given the seed.
    expect(sparseProbing(train, test, { kValues: [1, 2], full: true, seed: 3 })).toEqual(r);
  });

  it("is at chance on pure noise", () => {
    const rng = new Rng(9);
    const noise = (perClass: number): ClassRows => ({
      width: 8,
      classes: new Map(["x", "y"].map((c) => [c, new Float32Array(perClass * 8).map(() => rng.normal())])),
    });
    const r = sparseProbing(noise(300), noise(300), { kValues: [1], seed: 1 });
    expect(Math.abs(r.top_k_test_accuracy["1"]! - 0.5)).toBeLessThan(0.08);
  });
});

describe("mean pooling over a model's hook", () => {
  const modelDir = writeTinyNeox(join(dir, "model"), { vocab: 300, d: 32, layers: 2 });

  it("equals averaging each text's own forward pass over its non-special positions", async () => {
    const { model, tokenizer, bosId } = await loadModel(modelDir);
    const sae = randomSae("topk", 32, 64, 4);
    const texts = ["the cat sat", "a much longer text about a dog that ran to the park and back", "hi", "x y z w"];
    const tokens = probeTokens(tokenizer!, texts, { ctx: 10, bos: bosId });
    expect(tokens.every((t) => t[0] === bosId && t.length <= 10)).toBe(true);
    expect(tokens[1]!.length).toBe(10); // cut to ctx
    const hook = "blocks.1.hook_resid_post";
    const pooled = meanPooledActivations(model, tokens, [sae], { hook, special: [bosId!], batch: 3 });
    const d = 32;
    tokens.forEach((ids, i) => {
      let act: Float32Array | null = null;
      model.forward(ids, 1, ids.length, { stopAt: hook, output: "none", hooks: { [hook]: (a) => { act = a.slice(); } } });
      const kept = [...ids.keys()].filter((t) => ids[t] !== bosId);
      const mean = new Float32Array(d);
      for (const t of kept) for (let c = 0; c < d; c++) mean[c]! += act![t * d + c]! / kept.length;
      expect(maxAbsDiff(pooled.model.subarray(i * d, (i + 1) * d), mean)).toBeLessThan(1e-5);
      const rows = new Float32Array(kept.length * d);
      kept.forEach((t, e) => rows.set(act!.subarray(t * d, (t + 1) * d), e * d));
      const dense = toDense(sae.encode(rows, kept.length));
      const meanCode = new Float32Array(64);
      for (let e = 0; e < kept.length; e++) for (let j = 0; j < 64; j++) meanCode[j]! += dense[e * 64 + j]! / kept.length;
      expect(maxAbsDiff(pooled.saes[0]!.subarray(i * 64, (i + 1) * 64), meanCode)).toBeLessThan(1e-5);
    });
    expect(pooled.positions).toBe(tokens.reduce((s, t) => s + t.length - 1, 0));
    expect(() => meanPooledActivations(model, [Int32Array.of(bosId!)], [], { hook, special: [bosId!] })).toThrow(/no tokens besides special/);
  });
});

describe("labelled datasets", () => {
  it("reads jsonl and parquet labels as strings and names the line of a bad record", async () => {
    const jsonl = join(dir, "l.jsonl");
    writeFileSync(jsonl, [{ t: "one", y: 0 }, { t: "  ", y: 1 }, { t: "two", y: "b" }].map((r) => JSON.stringify(r)).join("\n"));
    expect(await readLabeledTexts(jsonl, { textField: "t", labelField: "y" })).toEqual([{ text: "one", label: "0" }, { text: "two", label: "b" }]);
    await expect(readLabeledTexts(jsonl, { textField: "t" })).rejects.toThrow(/l.jsonl:1: no string, number or boolean field "label"/);
    const pq = join(dir, "l.parquet");
    writeFileSync(pq, Buffer.from(parquetWriteBuffer({ columnData: [{ name: "text", data: ["p", "q"] }, { name: "label", data: [3, 4] }] })));
    expect(await readLabeledTexts(pq)).toEqual([{ text: "p", label: "3" }, { text: "q", label: "4" }]);
    await expect(readLabeledTexts(pq, { labelField: "cls" })).rejects.toThrow(/no column "cls"/);
    const txt = join(dir, "l.txt");
    writeFileSync(txt, "plain");
    await expect(readLabeledTexts(txt)).rejects.toThrow(/must be .jsonl, .parquet or .arrow/);
  });

  it("draws disjoint per-class splits, halving small classes and dropping tiny ones", () => {
    const items: LabeledText[] = [];
    const add = (label: string, n: number) => { for (let i = 0; i < n; i++) items.push({ text: `${label}${i}`, label }); };
    add("big", 100);
    add("small", 10);
    add("tiny", 1);
    const s = splitByClass(items, { trainPerClass: 40, testPerClass: 10, seed: 1 });
    expect([...s.train.keys()]).toEqual(["big", "small"]);
    expect(s.dropped).toEqual(["tiny"]);
    expect(s.train.get("big")!.length).toBe(40);
    expect(s.test.get("big")!.length).toBe(10);
    expect(s.test.get("small")!.length).toBe(5); // at most half of a small class
    expect(s.train.get("small")!.length).toBe(5);
    for (const c of ["big", "small"]) {
      const train = new Set(s.train.get(c));
      expect(s.test.get(c)!.some((t) => train.has(t))).toBe(false);
      expect(s.train.get(c)!.every((t) => t.startsWith(c))).toBe(true);
    }
    expect(splitByClass(items, { trainPerClass: 40, testPerClass: 10, seed: 1 })).toEqual(s);
    expect(splitByClass(items, { trainPerClass: 40, testPerClass: 10, seed: 2 }).test.get("big")).not.toEqual(s.test.get("big"));
    // A separate test split is sampled from, not held out.
    const own = splitByClass(items, { trainPerClass: 5, testPerClass: 3, seed: 1, test: [{ text: "T", label: "big" }, { text: "U", label: "small" }] });
    expect(own.test.get("big")).toEqual(["T"]);
    expect(own.train.get("big")!.length).toBe(5);
    expect(own.dropped).toEqual(["tiny"]);
    expect(() => splitByClass(items, { trainPerClass: 5, testPerClass: 3, seed: 1, classes: ["big", "nope"] })).toThrow(/no texts of class "nope"/);
    expect(() => splitByClass(items, { trainPerClass: 5, testPerClass: 3, seed: 1, classes: ["big", "tiny"] })).toThrow(/at least 2 classes/);
  });
});

describe("saekit probe", () => {
  it("probes an SAE on a labelled dataset and writes SAEBench's sparse_probing output", () => {
    const { modelDir, saeDir } = writeTinyModelAndSae(join(dir, "probe-task"));
    // Three topics with their own words: an easy task for a probe on the model's activations.
    const words: Record<string, string[]> = { sport: ["ball", "goal", "run"], food: ["cake", "soup", "rice"], sea: ["fish", "wave", "boat"] };
    const rng = new Rng(3);
    const lines: string[] = [];
    for (let i = 0; i < 150; i++) {
      for (const [label, ws] of Object.entries(words)) {
        const text = Array.from({ length: 4 + rng.int(4) }, () => ws[rng.int(3)]).join(" ");
        lines.push(JSON.stringify({ text, topic: label }));
      }
    }
    const data = join(dir, "topics.jsonl");
    writeFileSync(data, lines.join("\n"));
    const out = join(dir, "probe.json");
    const bench = join(dir, "probe-saebench.json");
    const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "probe", "--model", modelDir, "--sae", saeDir,
      "--dataset", data, "--label-field", "topic", "--train-per-class", "80", "--test-per-class", "40", "--k", "1,2",
      "--ctx", "8", "--out", out, "--saebench", bench], { encoding: "utf8", env: { ...process.env, SAEKIT_THREADS: "1" } });
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(printed);
    expect(printed.classes).toEqual(["food", "sea", "sport"]);
    expect(printed.train_texts).toBe(240);
    expect(printed.test_texts).toBe(120);
    expect(printed.hook).toBe("blocks.0.hook_resid_post");
    expect(printed.model_probes.test_accuracy).toBeGreaterThan(0.9);
    for (const p of [printed.model_probes, printed.sae_probes]) {
      expect(Object.keys(p.top_k_test_accuracy)).toEqual(["1", "2"]);
      for (const c of p.classes) {
        expect(c.train_rows).toBe(160);
        expect(c.test_rows).toBe(80);
        expect(c.top_k_dims["2"]).toHaveLength(2);
      }
    }
    expect(printed.sae_probes.classes[0].top_k_dims["1"][0]).toBeLessThan(48);
    const sb = JSON.parse(readFileSync(bench, "utf8"));
    expect(sb.eval_type_id).toBe("sparse_probing");
    expect(sb.eval_config.k_values).toEqual([1, 2]);
    expect(sb.eval_result_metrics.llm.llm_test_accuracy).toBe(printed.model_probes.test_accuracy);
    expect(sb.eval_result_metrics.sae.sae_top_2_test_accuracy).toBe(printed.sae_probes.top_k_test_accuracy["2"]);
    expect(sb.eval_result_details[0].dataset_name).toBe(data);
    expect(sb.eval_result_unstructured[`${data}_results`].sae_top_1_test_accuracy.sea).toBe(printed.sae_probes.classes[1].top_k_test_accuracy["1"]);
    expect(sb.sae_cfg_dict.d_sae).toBe(48);

    const bad = spawnSync(process.execPath, [join(packageRoot(), "bin", "saekit.js"), "probe", "--model", modelDir, "--sae", saeDir,
      "--dataset", data], { encoding: "utf8" });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/no string, number or boolean field "label" \(set --label-field\)/);
  }, 60_000);
});
