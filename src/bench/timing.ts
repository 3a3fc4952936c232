/**
 * Timing for `saekit bench`: warm-up runs, then the median of repeated runs. Benchmarks
 * print one JSON line per measurement so results can be collected and compared with the
 * Python peers' output (bench/peer_*.py print the same schema).
 */
import { performance } from "node:perf_hooks";

export interface Timing {
  /** Median milliseconds over the timed runs. */
  ms: number;
  /** Every timed run, in milliseconds. */
  runs: number[];
}

export function timeIt(fn: () => void, opts: { warmup?: number; runs?: number } = {}): Timing {
  const warmup = opts.warmup ?? 2;
  const count = Math.max(5, opts.runs ?? 7);
  for (let i = 0; i < warmup; i++) fn();
  const runs: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  return { ms: median(runs), runs };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
