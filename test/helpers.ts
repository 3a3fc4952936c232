/** Shared helpers for the test suites. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, expect, onTestFinished } from "vitest";
import { loadNativeAddon, type NativeAddon, packageRoot } from "../src/core/native.js";
import { Rng } from "../src/core/rng.js";
import type { DatasetActivations } from "../src/data/dataset-source.js";

/** The native addon; fails the test (with the load error) when it is not built. */
export function nativeAddon(): NativeAddon {
  const load = loadNativeAddon();
  if (!load.addon) throw new Error(`native addon not loaded: ${load.error}`);
  return load.addon;
}

export function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return rng.fillNormal(new Float32Array(n), scale);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * A temporary folder, removed after the test that made it or, made outside any test, after
 * the suite. (An afterAll hook registered while a test runs is never called: folders made
 * inside tests once stayed behind in /tmp after every run.)
 */
export function tempDir(prefix = "saekit-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  if (expect.getState().currentTestName !== undefined) onTestFinished(remove);
  else afterAll(remove);
  return dir;
}

/** Runs fn once per instruction set the CPU supports, restoring the best one afterwards. */
export function forEachIsa(fn: (isa: string) => void): void {
  const addon = nativeAddon();
  const best = addon.info().bestIsa;
  const isas = ["generic", "avx2", "avx512"].filter((isa) => addon.setIsa(isa as "generic"));
  try {
    for (const isa of isas) {
      addon.setIsa(isa as "generic");
      fn(isa);
    }
  } finally {
    addon.setIsa(best as "generic");
  }
}

/**
 * A file under ../shared/data (real data every developer and CI run has; never copied into
 * this repo), or null with a clear message when this checkout has no ../shared.
 */
export function sharedData(relative: string): string | null {
  const path = join(packageRoot(), "..", "shared", "data", relative);
  if (existsSync(path)) return path;
  console.warn(`[saekit tests] ${path} is absent: tests that need ../shared/data/${relative} are skipped`);
  return null;
}

/**
 * A file under `root` as huggingface.co serves it to @huggingface/hub (HTTP range requests,
 * an ETag), or 404 EntryNotFound when there is no such file: the core of the tests' stand-in hubs.
 */
export function serveHubFile(root: string, path: string | null, init?: RequestInit): Response {
  if (!path || !existsSync(path)) return new Response("not found", { status: 404, headers: { "X-Error-Code": "EntryNotFound" } });
  const body = readFileSync(path);
  const range = new Headers(init?.headers).get("Range");
  const [from, to] = range ? range.replace("bytes=", "").split("-").map(Number) as [number, number] : [0, body.length - 1];
  const end = Math.min(to ?? body.length - 1, body.length - 1);
  return new Response(body.subarray(from, end + 1), {
    status: range ? 206 : 200,
    headers: { "Content-Range": `bytes ${from}-${end}/${body.length}`, ETag: `"${relative(root, path)}"`, "Content-Length": String(end - from + 1) },
  });
}

/** Every vector of a dataset of activations (Arrow or Parquet), in file order, and each vector's token. */
export function readEveryVector<C extends { rows: number }>(a: DatasetActivations<C>, maxRows = 4): { values: Float32Array; tokens: Int32Array } {
  const values = new Float32Array(a.vectors * a.d);
  const tokens = new Int32Array(a.vectors);
  let at = 0;
  for (const c of a.chunks(maxRows)) {
    a.read(c, values, at * a.d);
    tokens.set(a.readTokens(c), at);
    at += c.rows * a.vectorsPerRow;
  }
  expect(at).toBe(a.vectors);
  return { values, tokens };
}

/**
 * The largest relative difference, over every `stride`-th entry of x, between `grad` and the
 * central difference (loss(x + h e_i) - loss(x - h e_i)) / 2h of a float64 loss that reads x.
 */
export function worstCentralDifference(x: Float64Array, loss: () => number, grad: ArrayLike<number>, stride = 1, h = 1e-5): number {
  let worst = 0;
  for (let i = 0; i < x.length; i += stride) {
    const keep = x[i]!;
    x[i] = keep + h;
    const plus = loss();
    x[i] = keep - h;
    const minus = loss();
    x[i] = keep;
    const numeric = (plus - minus) / (2 * h);
    worst = Math.max(worst, Math.abs(numeric - grad[i]!) / Math.max(1, Math.abs(numeric)));
  }
  return worst;
}
