/** The CLI as a user runs it: every command answers --help, benches print JSON lines. */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../src/cli/main.js";
import { packageRoot } from "../src/core/native.js";
import { tempDir } from "./helpers.js";

const bin = join(packageRoot(), "bin", "saekit.js");

function saekit(...args: string[]) {
  return saekitWith({}, ...args);
}

function saekitWith(env: Record<string, string>, ...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, SAEKIT_QUIET: "1", ...env } });
}

/** Every command path in the program, e.g. ["bench", "gemm"]. */
function commandPaths(): string[][] {
  const paths: string[][] = [];
  const walk = (cmd: ReturnType<typeof buildProgram>, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const path = [...prefix, sub.name()];
      paths.push(path);
      walk(sub as ReturnType<typeof buildProgram>, path);
    }
  };
  walk(buildProgram(), []);
  return paths;
}

describe("saekit CLI", () => {
  it("has --help on every command", () => {
    const paths = commandPaths();
    expect(paths.length).toBeGreaterThan(3);
    for (const path of paths) {
      const r = saekit(...path, "--help");
      expect(r.status, `${path.join(" ")} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`Usage: saekit ${path.join(" ")}`);
    }
  });

  it("info says what saekit runs on, including the WebAssembly fallback", () => {
    const r = saekit("info");
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({ kernels: "native", wasmSimd: true, arch: process.arch });
    // The AVX-512 kernel's tile here, AVX2's or the portable one's elsewhere.
    expect(info.gemmTile).toBe({ avx512: "14x32", avx2: "6x16", generic: process.arch === "arm64" ? "8x12" : "6x8" }[info.isa as string]);
    // bfloat16 products on vdpbf16ps exactly where the kernel lists the AVX-512 BF16 flag.
    expect(info.matmulPrecision).toBe("highest");
    if (existsSync("/proc/cpuinfo") && info.isa === "avx512") {
      const bf16 = /\bavx512_bf16\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
      expect(info.bf16Matmul).toBe(bf16 ? "dot-product instructions" : "emulated");
    }
    expect(JSON.parse(saekitWith({ SAEKIT_MATMUL_PRECISION: "medium" }, "info").stdout).matmulPrecision).toBe("medium");
    const bad = saekitWith({ SAEKIT_MATMUL_PRECISION: "half" }, "info");
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/SAEKIT_MATMUL_PRECISION must be one of highest, medium, got "half"/);
  });

  it("bench gemm and bench topk print one JSON line each", () => {
    const g = saekit("bench", "gemm", "--m", "64", "--k", "32", "--n", "48", "--threads", "1", "--runs", "5");
    expect(g.status, g.stderr).toBe(0);
    const gj = JSON.parse(g.stdout);
    expect(gj).toMatchObject({ bench: "gemm", m: 64, k: 32, n: 48, threads: 1, kernels: "native" });
    expect(gj.gflops).toBeGreaterThan(0);
    const t = saekit("bench", "topk", "--batch", "8", "--m", "100", "--k", "5", "--threads", "1");
    expect(t.status, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ bench: "topk", batch: 8, m: 100, k: 5 });
    const half = saekitWith({ SAEKIT_QUIET: "" }, "bench", "gemm", "--m", "64", "--k", "32", "--n", "48", "--threads", "1", "--runs", "5", "--matmul-precision", "medium");
    expect(JSON.parse(half.stdout)).toMatchObject({ bench: "gemm", precision: "medium" });
    // Where the products cannot run on the BF16 dot-product instructions (forced here by
    // SAEKIT_ISA), the user hears that medium precision brings no speed-up.
    const emulatedNote = /--matmul-precision medium: no AVX-512 BF16 dot-product instructions in use here/;
    const avx2 = saekitWith({ SAEKIT_QUIET: "", SAEKIT_ISA: "avx2" }, "bench", "gemm", "--m", "64", "--k", "32", "--n", "48", "--threads", "1", "--runs", "5", "--matmul-precision", "medium");
    expect(avx2.status, avx2.stderr).toBe(0);
    expect(avx2.stderr).toMatch(emulatedNote);
    expect(half.stderr).toMatch(JSON.parse(saekit("info").stdout).bf16Matmul === "emulated" ? emulatedNote : /^$/);
    // The browser's kernels and the reference twins, timed on request.
    for (const set of ["typescript", "reference"]) {
      const r = saekit("bench", "gemm", "--m", "16", "--k", "8", "--n", "12", "--runs", "5", "--kernels", set);
      expect(JSON.parse(r.stdout)).toMatchObject({ bench: "gemm", kernels: set, isa: "typescript" });
    }
  });

  it("bench train prints a training step's tokens/s for every architecture it offers", () => {
    for (const arch of ["topk", "vsae", "abstopk", "batchtopk", "matryoshka", "mp"]) {
      const r = saekit("bench", "train", "--arch", arch, "--d", "64", "--m", "512", "--k", "8", "--batch", "256", "--steps", "5", "--threads", "1", "--matmul-precision", "medium");
      expect(r.status, `${arch}: ${r.stderr}`).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j).toMatchObject({ bench: "train", arch, d: 64, m: 512, k: 8, batch: 256, matmul_precision: "medium" });
      expect(j.tokens_per_s).toBeGreaterThan(0);
    }
    // With dead latents, AuxK at its default aux_k = d / 2 runs in every step.
    const aux = saekit("bench", "train", "--d", "64", "--m", "512", "--k", "8", "--batch", "256", "--steps", "5", "--threads", "1", "--dead", "100");
    expect(aux.status, aux.stderr).toBe(0);
    expect(JSON.parse(aux.stdout)).toMatchObject({ arch: "topk", dead: 100, aux_k: 32 });
    expect(JSON.parse(saekit("bench", "train", "--d", "64", "--m", "512", "--k", "8", "--batch", "256", "--steps", "5", "--threads", "1").stdout)).toMatchObject({ dead: 0, aux_k: 0 });
    expect(saekit("bench", "train", "--m", "512", "--dead", "513").stderr).toMatch(/--dead \(513\) must not exceed --m \(512\)/);
    expect(saekit("bench", "train", "--arch", "mp", "--dead", "5").stderr).toMatch(/a matching pursuit has no AuxK/);
  });

  it("bench train runs the SAEs without a k as initialised (about half their latents firing) or at a set L0", () => {
    const small = ["--d", "64", "--m", "512", "--batch", "256", "--steps", "5", "--threads", "1"];
    for (const arch of ["relu", "jumprelu", "gated"]) {
      for (const l0 of [0, 8]) {
        const r = saekit("bench", "train", "--arch", arch, "--l0", `${l0}`, ...small);
        expect(r.status, `${arch}: ${r.stderr}`).toBe(0);
        const j = JSON.parse(r.stdout);
        expect(j).toMatchObject({ bench: "train", arch, d: 64, m: 512, batch: 256 });
        expect(j).not.toHaveProperty("k");
        expect(j.tokens_per_s).toBeGreaterThan(0);
        if (l0 === 0) expect(j.l0, arch).toBeGreaterThan(0.35 * 512);
        if (l0 === 0) expect(j.l0, arch).toBeLessThan(0.65 * 512);
        else expect(Math.abs(j.l0 - l0), arch).toBeLessThan(0.5 * l0);
      }
    }
    // JumpReLU's dead latents get the pre-activation loss.
    const dead = saekit("bench", "train", "--arch", "jumprelu", "--dead", "50", ...small);
    expect(dead.status, dead.stderr).toBe(0);
    expect(JSON.parse(dead.stdout)).toMatchObject({ arch: "jumprelu", dead: 50 });
    expect(saekit("bench", "train", "--arch", "relu", "--dead", "5").stderr).toMatch(/a relu SAE has no AuxK or pre-activation loss/);
    expect(saekit("bench", "train", "--arch", "topk", "--l0", "5").stderr).toMatch(/--l0: a topk SAE's L0 is its --k/);
    expect(saekit("bench", "train", "--arch", "relu", "--m", "512", "--l0", "256").stderr).toMatch(/--l0 \(256\) must be below half of --m \(512\)/);
  });

  it("bench lm prints harvest, full-forward and generation speeds at a preset's shapes", () => {
    const r = saekit("bench", "lm", "--batch", "1", "--ctx", "16", "--runs", "5", "--threads", "1", "--matmul-precision", "medium");
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ bench: "lm", preset: "pythia-70m", ctx: 16, batch: 1, matmul_precision: "medium", weight_mb: 269 });
    for (const key of ["harvest_tokens_per_s", "full_tokens_per_s", "e2e_kl_tokens_per_s", "generate_tokens_per_s"]) expect(j[key], key).toBeGreaterThan(0);
  });

  it("rejects bad option values with a clear message", () => {
    const r = saekit("bench", "topk", "--k", "zero");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--k.*expected a positive integer/);
    const r2 = saekit("bench", "topk", "--m", "10", "--k", "20", "--batch", "2");
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/--k \(20\) must not exceed --m \(10\)/);
  });

  it("falls back to the reference kernels, saying so once, when the addon is unavailable", () => {
    const r = spawnSync(process.execPath, [bin, "bench", "topk", "--batch", "4", "--m", "50", "--k", "3", "--threads", "1"], {
      encoding: "utf8", env: { ...process.env, SAEKIT_NO_NATIVE: "1", SAEKIT_QUIET: "" },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kernels: "reference", isa: "wasm-simd128" }); // the GEMM on WebAssembly SIMD
    expect(r.stderr.match(/reference kernels/g)?.length).toBe(1);
  });
});

describe("saekit train --sweep", () => {
  it("trains one SAE per combination of settings from the same batches, each as it would be alone", () => {
    const out = join(tempDir(), "sweep");
    const common = ["train", "--data", "synthetic:superposition", "--synth-d", "16", "--synth-features", "32", "--d-sae", "32",
      "--steps", "6", "--batch", "64", "--threads", "1"];
    // --save-best (sparsify's save_best) keeps each run's best checkpoint, and changes no run.
    const r = saekit(...common, "--sweep", "k=2,4", "--sweep", "lr=1e-3,3e-3", "--checkpoint-every", "3", "--save-best", "--out", out);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.sweep)).toEqual(["k=2,lr=1e-3", "k=2,lr=3e-3", "k=4,lr=1e-3", "k=4,lr=3e-3"]);
    for (const l of lines) {
      const cfg = JSON.parse(readFileSync(join(l.out, "cfg.json"), "utf8"));
      expect(cfg.k).toBe(Number(/k=(\d+)/.exec(l.sweep)![1]));
      expect(cfg.saekit.training.lr).toBe(Number(/lr=(.+)$/.exec(l.sweep)![1]));
      const best = JSON.parse(readFileSync(join(l.out, "best", "cfg.json"), "utf8"));
      expect([3, 6]).toContain(best.saekit.training.best_step);
      expect(best.k).toBe(cfg.k);
    }
    const alone = join(tempDir(), "alone");
    expect(saekit(...common, "--k", "4", "--lr", "3e-3", "--out", alone).status).toBe(0);
    expect(readFileSync(join(alone, "sae_weights.safetensors")).equals(readFileSync(join(out, "k=4,lr=3e-3", "sae_weights.safetensors")))).toBe(true);
  });

  it("keeps snapshots at --n-checkpoints (linear or log spacing) and --save-steps, in every run of a sweep; a rerun needs --resume or --overwrite", () => {
    const out = join(tempDir(), "snapshots");
    const common = ["train", "--data", "synthetic:superposition", "--synth-d", "16", "--synth-features", "32", "--d-sae", "32",
      "--steps", "100", "--batch", "16", "--threads", "1", "--sweep", "k=2,4"];
    const snapshots = (run: string) => readdirSync(join(out, run, "checkpoints")).map(Number).sort((a, b) => a - b);
    // 1600 tokens in 4: 400, 800, 1200 passed after steps 26, 51, 76; and step 10.
    expect(saekit(...common, "--n-checkpoints", "4", "--save-steps", "10", "--out", out).status).toBe(0);
    for (const run of ["k=2", "k=4"]) expect(snapshots(run)).toEqual([10, 26, 51, 76].map((step) => step * 16));
    const again = saekit(...common, "--n-checkpoints", "4", "--checkpoint-spacing", "log", "--out", out);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/k=2: holds a trained SAE already .*; resume it \(--resume\), replace it \(--overwrite\)/);
    // Log spacing: 100^(1/4), 100^(2/4), 100^(3/4) = 3.2, 10, 31.6: steps 4, 10, 32.
    expect(saekit(...common, "--n-checkpoints", "4", "--checkpoint-spacing", "log", "--overwrite", "--out", out).status).toBe(0);
    for (const run of ["k=2", "k=4"]) expect(snapshots(run)).toEqual([4, 10, 32].map((step) => step * 16));
  });

  it("sizes the dictionary by --expansion-factor (SAELens', sparsify's), and sweeps it", () => {
    const out = join(tempDir(), "ef");
    const r = saekit("train", "--data", "synthetic:superposition", "--synth-d", "16", "--synth-features", "32", "--steps", "2", "--batch", "32",
      "--threads", "1", "--sweep", "expansion-factor=2,4", "--out", out);
    expect(r.status, r.stderr).toBe(0);
    for (const [ef, dSae] of [[2, 32], [4, 64]]) {
      expect(JSON.parse(readFileSync(join(out, `expansion-factor=${ef}`, "cfg.json"), "utf8")).d_sae).toBe(dSae);
    }
    expect(saekit("train", "--data", "synthetic:superposition", "--steps", "1", "--d-sae", "32", "--expansion-factor", "2", "--out", join(out, "x")).stderr)
      .toMatch(/give --d-sae or --expansion-factor, not both/);
  });

  it("sweeps architectures, each run taking the options that are its own; an option of none of them is refused", () => {
    const out = join(tempDir(), "archs");
    const common = ["train", "--data", "synthetic:superposition", "--synth-d", "16", "--synth-features", "32", "--d-sae", "32",
      "--steps", "2", "--batch", "32", "--threads", "1"];
    const r = saekit(...common, "--sweep", "arch=topk,relu", "--k", "3", "--l1", "2", "--out", out);
    expect(r.status, r.stderr).toBe(0);
    const topk = JSON.parse(readFileSync(join(out, "arch=topk", "cfg.json"), "utf8")).saekit.config;
    const relu = JSON.parse(readFileSync(join(out, "arch=relu", "cfg.json"), "utf8")).saekit.config;
    expect([topk.k, topk.l1_coefficient, relu.k, relu.l1_coefficient]).toEqual([3, undefined, undefined, 2]);
    expect(saekit(...common, "--sweep", "arch=topk,vsae", "--l0", "3", "--out", join(out, "x")).stderr)
      .toMatch(/--l0: not an option of any architecture swept/);
  });

  it("refuses what it cannot vary, and values the option itself would refuse", () => {
    const base = ["train", "--data", "synthetic:superposition", "--steps", "2", "--out", join(tempDir(), "x")];
    expect(saekit(...base, "--sweep", "steps=1,2").stderr).toMatch(/--sweep steps: not a setting a sweep can vary/);
    expect(saekit(...base, "--sweep", "optimizer=adam,sgd").stderr).toMatch(/--sweep optimizer: "sgd" is not one of adam, signum/);
    expect(saekit(...base, "--sweep", "k=4,0").stderr).toMatch(/--sweep k=0: /);
    expect(saekit(...base, "--sweep", "k").stderr).toMatch(/write a setting and its values/);
    expect(saekit(...base, "--sweep", "k=2", "--sweep", "k=4").stderr).toMatch(/--sweep k is given twice/);
  });

  it("trains with sparsify's Muon at its defaults, or the weight decay given, recording them", () => {
    const dir = tempDir();
    const base = ["train", "--data", "synthetic:superposition", "--synth-d", "16", "--synth-features", "32", "--d-sae", "32", "--steps", "3", "--batch", "32", "--threads", "1", "--optimizer", "muon"];
    const training = (out: string) => JSON.parse(readFileSync(join(out, "cfg.json"), "utf8")).saekit.training;
    expect(saekit(...base, "--out", join(dir, "a")).status).toBe(0);
    expect(training(join(dir, "a"))).toMatchObject({ optimizer: "muon", lr: 2e-3, weight_decay: 0.1 });
    expect(saekit(...base, "--weight-decay", "0", "--out", join(dir, "b")).status).toBe(0);
    expect(training(join(dir, "b"))).toMatchObject({ optimizer: "muon", weight_decay: 0 });
    expect(readFileSync(join(dir, "a", "sae_weights.safetensors")).equals(readFileSync(join(dir, "b", "sae_weights.safetensors")))).toBe(false);
  });

  it("refuses an option of another architecture by its flag, alone or swept, rather than store and ignore it", () => {
    const base = ["train", "--data", "synthetic:superposition", "--steps", "2", "--out", join(tempDir(), "x")];
    expect(saekit(...base, "--arch", "topk", "--l0", "3", "--p-end", "0.1").stderr).toMatch(/--p-end, --l0: not options of --arch topk/);
    expect(saekit(...base, "--arch", "relu", "--sweep", "k=2,4").stderr).toMatch(/--k: not an option of --arch relu/);
  });
});
