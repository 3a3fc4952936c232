#!/usr/bin/env node
// Runs saekit's benchmarks and the Python peers side by side, in one run on one machine,
// and prints every measurement plus the ratios saekit / peer as JSON lines.
//
//   node bench/compare.mjs kernels [--threads 2]   # sgemm (float32, and at bfloat16 precision) and
//                                                  # topk vs PyTorch (OpenBLAS; oneDNN for bf16)
//   node bench/compare.mjs train   [--threads 2]   # TopK/vSAE/BatchTopK/Matryoshka/MP training step vs
//                                                  # peer_topk_sae.py, peer_batchtopk.py, peer_mp.py;
//                                                  # TopK with Muon vs peer_muon.py
//                                                  # (TopK at bf16 precision: peer_topk_sae_autocast.py)
//   node bench/compare.mjs relu    [--threads 2]   # ReLU/JumpReLU/Gated steps as initialised and at L0 64
//                                                  # vs SAELens' (peer_relu_sae.py)
//   node bench/compare.mjs tsne    [--threads 2]   # analyze's Barnes-Hut t-SNE map vs sklearn's TSNE
//   node bench/compare.mjs lm      [--threads 2]   # Pythia-70M forward (harvest, full) vs peer_lm.py
//   node bench/compare.mjs falcon-h1 --python VENV/bin/python
//                                                  # Falcon-H1-0.5B (Mamba-2 beside attention; harvest, full,
//                                                  # e2e KL) vs transformers' own FalconH1ForCausalLM
//                                                  # (peer_falcon_h1.py: needs torch and transformers)
//
// --rounds N (default 1) measures each side N times, alternating, and takes medians; --python
// PATH picks the peers' Python (default /usr/bin/python3). A table of
// the medians and ratios (saekit's speed over the peer's) follows on stderr.
// The peers need Debian's PyTorch: apt-get install -y python3-torch libopenblas0-pthread
// (and for tsne, scikit-learn: apt-get install -y python3-sklearn).
// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment so OpenBLAS
// picks its AVX-512 kernel.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const suite = args[0] ?? "kernels";
const threadsAt = args.indexOf("--threads");
const threads = threadsAt >= 0 ? Number(args[threadsAt + 1]) : 2;
const roundsAt = args.indexOf("--rounds");
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 1;
if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds must be a positive integer, got ${args[roundsAt + 1]}`);
// --python PATH runs the peers in another Python (default Debian's, with python3-torch): a
// virtual environment with PyPI's torch, say, whose CPU build multiplies with MKL, not OpenBLAS.
const pythonAt = args.indexOf("--python");
const python = pythonAt >= 0 ? args[pythonAt + 1] : "/usr/bin/python3";
const env = { ...process.env };
delete env.OPENBLAS_CORETYPE;
delete env.OPENBLAS_L2_SIZE;

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, env, encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} failed:\n${r.stderr}`);
  return r.stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

const saekit = (...a) => run(process.execPath, [join(root, "bin", "saekit.js"), ...a])[0];
const runPeer = (...a) => run(python, a)[0];
const out = (o) => console.log(JSON.stringify(o));

// Each measurement function runs once per round, in turn, and every record is printed; the
// ratios use each one's median over the rounds. On a shared machine whose speed drifts (a VM
// whose two vCPUs sometimes land on one physical core runs a 2-thread GEMM anywhere from 1.1x
// to 2x its 1-thread speed), alternating spreads the drift over saekit and its peer alike.
function alternating(...measure) {
  const records = measure.map(() => []);
  for (let r = 0; r < rounds; r++) {
    measure.forEach((f, i) => {
      const record = f();
      out(record);
      records[i].push(record);
    });
  }
  return records;
}
const median = (records, key) => {
  const values = records.map((r) => r[key]).sort((a, b) => a - b);
  return values[(values.length - 1) >> 1];
};
const ratio = (a, b, digits = 2) => +(a / b).toFixed(digits);
// Each comparison's medians and ratio, for the table printed to stderr at the end (stdout
// stays JSON lines).
const summary = [];
const summarize = (what, ours, peer, r) => summary.push([what, ours, peer, r]);
function printSummary() {
  if (summary.length === 0) return;
  const cells = [["measurement", "saekit", "peer", "ratio"], ...summary.map(([w, a, b, r]) =>
    [w, Number(a).toLocaleString("en-US", { maximumFractionDigits: 1 }), Number(b).toLocaleString("en-US", { maximumFractionDigits: 1 }), `${r}x`])];
  const widths = cells[0].map((_, c) => Math.max(...cells.map((row) => row[c].length)));
  const line = (row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
  process.stderr.write(`\n${cells.map(line).join("\n")}\n(medians of ${rounds} round${rounds > 1 ? "s" : ""}, ${threads} threads)\n`);
}
// PyTorch's bfloat16 products are only fast with the AVX-512 BF16 instructions; elsewhere
// they run a scalar emulation (~5 GFLOP/s on a Zen 3 core, 30x below float32) and a single
// autocast training step takes minutes, so those peers run only where saekit has the
// instructions too.
const bf16Native = saekit("info").bf16Matmul === "dot-product instructions";
const bf16PeerSkipped = (what) =>
  out({ skipped: what, reason: "no AVX-512 BF16 instructions here: PyTorch's bfloat16 path is an emulation, not a peer" });

if (suite === "kernels") {
  const shapes = [[4096, 512, 16384], [4096, 2048, 512]];
  for (const [m, k, n] of shapes) {
    const gemm = (...extra) => () => saekit("bench", "gemm", "--m", `${m}`, "--k", `${k}`, "--n", `${n}`, "--threads", `${threads}`, ...extra);
    const peerGemm = (...extra) => () => runPeer("bench/peer_kernels.py", "--shapes", `${m}x${k}x${n}`, "--topk", "", "--threads", `${threads}`, ...extra);
    // float32 against OpenBLAS; at bfloat16 precision against our own float32 and, where the
    // CPU has the instructions, PyTorch's bf16 torch.mm.
    const [ours, peer, half, peerHalf] = alternating(gemm(), peerGemm(), gemm("--matmul-precision", "medium"),
      ...(bf16Native ? [peerGemm("--dtype", "bfloat16")] : []));
    const gflops = median(ours, "gflops"), peerGflops = median(peer, "gflops"), halfGflops = median(half, "gflops");
    const vsOpenblas = ratio(gflops, peerGflops, 3);
    out({ compare: "gemm", m, k, n, threads, rounds, ratio_vs_openblas: vsOpenblas });
    summarize(`sgemm ${m}x${k}x${n}, GFLOP/s (${peer[0].blas ?? "OpenBLAS"})`, gflops, peerGflops, vsOpenblas);
    let vsTorchBf16;
    if (peerHalf) {
      const peerHalfGflops = median(peerHalf, "gflops");
      vsTorchBf16 = ratio(halfGflops, peerHalfGflops, 3);
      summarize(`  bf16 ${m}x${k}x${n}, GFLOP/s (torch bf16)`, halfGflops, peerHalfGflops, vsTorchBf16);
    } else {
      bf16PeerSkipped("gemm-bf16 peer");
    }
    out({
      compare: "gemm-bf16", m, k, n, threads, rounds,
      ...(peerHalf ? { ratio_vs_torch_bf16: vsTorchBf16 } : {}),
      ratio_vs_float32: ratio(halfGflops, gflops, 3),
    });
  }
  const [ours, peer] = alternating(
    () => saekit("bench", "topk", "--batch", "4096", "--m", "16384", "--k", "64", "--threads", `${threads}`),
    () => runPeer("bench/peer_kernels.py", "--shapes", "", "--topk", "4096x16384x64", "--threads", `${threads}`));
  const ms = median(ours, "ms"), peerMs = median(peer, "ms"), speedup = ratio(peerMs, ms);
  out({ compare: "topk", threads, rounds, ms, speedup_vs_torch: speedup });
  summarize("top-64 of 4096x16384, ms (torch.topk)", ms, peerMs, speedup);
} else if (suite === "train") {
  // The bar: topk m=16384 >= 4x peer sparse; topk m=2048 >= 2.5x; vsae >= 3x peer vsae.
  // BatchTopK and Matryoshka against dictionary_learning's way (bench/peer_batchtopk.py);
  // matching pursuit (16 steps) against SAELens' loop (bench/peer_mp.py).
  const topkPeer = "../shared/bench/peer_topk_sae.py", batchPeer = "bench/peer_batchtopk.py";
  const cases = [
    ["topk", 16384, topkPeer, "sparse"], ["topk", 2048, topkPeer, "sparse"], ["vsae", 16384, topkPeer, "vsae"],
    ["batchtopk", 16384, batchPeer, "batchtopk"], ["matryoshka", 16384, batchPeer, "matryoshka"],
    ["mp", 16384, "bench/peer_mp.py", "mp", 16],
  ];
  for (const [arch, m, peerScript, peerImpl, k] of cases) {
    const kArgs = k ? ["--k", `${k}`] : [];
    const step = (...extra) => () => saekit("bench", "train", "--arch", arch, "--m", `${m}`, ...kArgs, "--threads", `${threads}`, ...extra);
    const peerStep = (script) => () => runPeer(script, "--m", `${m}`, ...kArgs, "--threads", `${threads}`, "--impl", peerImpl, "--steps", "5");
    // The TopK step also at bfloat16 matmul precision, against our float32 step and, where
    // the CPU has the instructions, the peer's encoder under PyTorch's bf16 autocast
    // (bench/peer_topk_sae_autocast.py).
    const withHalf = arch === "topk" && m === 16384;
    const [ours, peer, half, peerHalf] = alternating(step(), peerStep(peerScript),
      ...(withHalf ? [step("--matmul-precision", "medium")] : []),
      ...(withHalf && bf16Native ? [peerStep("bench/peer_topk_sae_autocast.py")] : []));
    const tokens = median(ours, "tokens_per_s"), peerTokens = median(peer, "tokens_per_s"), speedup = ratio(tokens, peerTokens);
    out({ compare: "train", arch, m, threads, rounds, peer_impl: peerImpl, speedup });
    summarize(`${arch} step m=${m}, tokens/s (${peerImpl})`, tokens, peerTokens, speedup);
    if (!withHalf) continue;
    const halfTokens = median(half, "tokens_per_s");
    let vsAutocast;
    if (peerHalf) {
      const peerHalfTokens = median(peerHalf, "tokens_per_s");
      vsAutocast = ratio(halfTokens, peerHalfTokens);
      summarize(`  bf16 ${arch} step m=${m}, tokens/s (autocast)`, halfTokens, peerHalfTokens, vsAutocast);
    } else {
      bf16PeerSkipped("train-bf16 peer (bench/peer_topk_sae_autocast.py)");
    }
    out({
      compare: "train-bf16", arch, m, threads, rounds, speedup_vs_float32: ratio(halfTokens, tokens),
      ...(peerHalf ? { speedup_vs_peer_autocast: vsAutocast } : {}),
    });
  }
  // sparsify's Muon (bench/peer_muon.py): the TopK step with its optimizer in float32, and at
  // bfloat16 precision against the peer's bfloat16 Newton-Schulz products (sparsify's own).
  const muon = (...extra) => () => saekit("bench", "train", "--optimizer", "muon", "--threads", `${threads}`, ...extra);
  const peerMuon = (...extra) => () => runPeer("bench/peer_muon.py", "--threads", `${threads}`, "--steps", "5", ...extra);
  const [ours, peer, half, peerHalf] = alternating(muon(), peerMuon(), muon("--matmul-precision", "medium"),
    ...(bf16Native ? [peerMuon("--ns-dtype", "bfloat16")] : []));
  const tokens = median(ours, "tokens_per_s"), peerTokens = median(peer, "tokens_per_s"), speedup = ratio(tokens, peerTokens);
  out({ compare: "train-muon", arch: "topk", m: 16384, threads, rounds, speedup });
  summarize("topk + muon step m=16384, tokens/s (muon)", tokens, peerTokens, speedup);
  if (peerHalf) {
    const halfTokens = median(half, "tokens_per_s"), peerHalfTokens = median(peerHalf, "tokens_per_s");
    const vsBf16 = ratio(halfTokens, peerHalfTokens);
    out({ compare: "train-muon-bf16", arch: "topk", m: 16384, threads, rounds, speedup: vsBf16 });
    summarize("  bf16 topk + muon step, tokens/s (muon bf16)", halfTokens, peerHalfTokens, vsBf16);
  } else {
    bf16PeerSkipped("train-muon-bf16 peer (bench/peer_muon.py --ns-dtype bfloat16)");
  }
} else if (suite === "relu") {
  // The SAEs without a k against SAELens' steps (bench/peer_relu_sae.py, dense decode): as
  // initialised (about half the latents firing, where saekit's code kernels switch to their
  // dense GEMM twins) and at L0 64, as after training.
  for (const arch of ["relu", "jumprelu", "gated"]) {
    for (const l0 of [0, 64]) {
      const [ours, peer] = alternating(
        () => saekit("bench", "train", "--arch", arch, "--l0", `${l0}`, "--threads", `${threads}`),
        () => runPeer("bench/peer_relu_sae.py", "--impl", arch, "--l0", `${l0}`, "--threads", `${threads}`, "--steps", "5"));
      const tokens = median(ours, "tokens_per_s"), peerTokens = median(peer, "tokens_per_s"), speedup = ratio(tokens, peerTokens);
      out({ compare: "train", arch, m: 16384, l0: median(ours, "l0"), l0_peer: median(peer, "l0"), threads, rounds, speedup });
      summarize(`${arch} step m=16384 at L0 ${l0 ? l0 : "m/2 (init)"}, tokens/s (SAELens)`, tokens, peerTokens, speedup);
    }
  }
} else if (suite === "tsne") {
  // The very points saekit's bench draws (clustered unit vectors in R^512), handed to the
  // peer as raw float32, so that the two final KL divergences compare; 1000 iterations.
  const { clusteredDirections } = await import("../dist/bench/tsne.js");
  const dir = mkdtempSync(join(tmpdir(), "saekit-tsne-"));
  for (const n of [2000, 10000]) {
    const points = join(dir, `points-${n}.f32`);
    writeFileSync(points, Float32Array.from(clusteredDirections(n, 512, 50, 0)));
    const [ours, peer] = alternating(() => saekit("bench", "tsne", "--n", `${n}`, "--threads", `${threads}`),
      () => runPeer("bench/peer_tsne.py", "--n", `${n}`, "--points", points, "--threads", `${threads}`));
    const s = median(ours, "s"), peerS = median(peer, "s"), speedup = ratio(peerS, s);
    out({ compare: "tsne", n, threads, rounds, speedup_vs_sklearn: speedup, kl: median(ours, "kl"), kl_peer: median(peer, "kl") });
    summarize(`t-SNE n=${n}, s (sklearn)`, s, peerS, speedup);
  }
  rmSync(dir, { recursive: true, force: true });
} else if (suite === "lm") {
  // Random weights at Pythia-70M's shapes, 32 contexts of 128 tokens: the harvest forward
  // (embedding + block 0, for blocks.0.hook_resid_post), the full forward with its loss, and
  // the model's share of an end-to-end (KL) training step at that hook, against the same
  // GPT-NeoX forward in PyTorch as Hugging Face computes it (eager; autograd's backward).
  const lm = (...extra) => () => saekit("bench", "lm", "--preset", "pythia-70m", "--threads", `${threads}`, ...extra);
  const [ours, peer, half] = alternating(lm(), () => runPeer("bench/peer_lm.py", "--threads", `${threads}`),
    lm("--matmul-precision", "medium"));
  const harvest = median(ours, "harvest_tokens_per_s"), full = median(ours, "full_tokens_per_s");
  const peerHarvest = median(peer, "harvest_tokens_per_s"), peerFull = median(peer, "full_tokens_per_s");
  const e2e = median(ours, "e2e_kl_tokens_per_s"), peerE2e = median(peer, "e2e_kl_tokens_per_s");
  const harvestSpeedup = ratio(harvest, peerHarvest), fullSpeedup = ratio(full, peerFull), e2eSpeedup = ratio(e2e, peerE2e);
  out({ compare: "lm", preset: "pythia-70m", threads, rounds, harvest_speedup: harvestSpeedup, full_speedup: fullSpeedup, e2e_kl_speedup: e2eSpeedup });
  summarize("Pythia-70M harvest, tokens/s (torch)", harvest, peerHarvest, harvestSpeedup);
  summarize("Pythia-70M full forward, tokens/s (torch)", full, peerFull, fullSpeedup);
  summarize("Pythia-70M e2e KL forward+backward from layer 0, tokens/s (torch autograd)", e2e, peerE2e, e2eSpeedup);
  out({
    compare: "lm-bf16", preset: "pythia-70m", threads, rounds,
    harvest_speedup_vs_float32: ratio(median(half, "harvest_tokens_per_s"), harvest),
    full_speedup_vs_float32: ratio(median(half, "full_tokens_per_s"), full),
  });
} else if (suite === "falcon-h1") {
  // Random weights at Falcon-H1-0.5B's shapes, one context of 128 tokens (a 36-layer model of
  // 0.5B parameters: seconds per pass), against transformers' FalconH1ForCausalLM itself (eager
  // attention, its torch fallback for Mamba-2's scan), weights frozen for the end-to-end step.
  const shape = ["--batch", "1", "--ctx", "128", "--threads", `${threads}`];
  const [ours, peer] = alternating(() => saekit("bench", "lm", "--preset", "falcon-h1-0.5b", ...shape),
    () => runPeer("bench/peer_falcon_h1.py", ...shape));
  const speedups = {};
  for (const [key, label] of [["harvest", "harvest to layer 0"], ["full", "full forward"], ["e2e_kl", "e2e KL forward+backward from layer 0"]]) {
    const mine = median(ours, `${key}_tokens_per_s`), theirs = median(peer, `${key}_tokens_per_s`);
    speedups[`${key}_speedup`] = ratio(mine, theirs);
    summarize(`Falcon-H1-0.5B ${label}, tokens/s (transformers)`, mine, theirs, speedups[`${key}_speedup`]);
  }
  out({ compare: "falcon-h1", preset: "falcon-h1-0.5b", threads, rounds, peer: peer[0].impl, ...speedups });
} else {
  console.error(`unknown suite "${suite}" (kernels, train, relu, tsne, lm, falcon-h1)`);
  process.exit(2);
}
printSummary();
