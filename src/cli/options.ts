/** Option parsers shared by the CLI commands: strict, with messages that name the option. */
import { availableParallelism } from "node:os";
import { InvalidArgumentError } from "commander";

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  }
  return n;
}

export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

/** "1,2,3" -> [1, 2, 3] (non-negative integers). */
export function intList(value: string): number[] {
  return value.split(",").map((part) => nonNegativeInt(part));
}

/** "0.5,1,2" -> [0.5, 1, 2]. */
export function numberList(value: string): number[] {
  return value.split(",").map((part) => finiteNumber(part));
}

/** The default thread count: SAEKIT_THREADS or every core. */
export function defaultThreads(): number {
  const env = Number(process.env.SAEKIT_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, availableParallelism());
}

/** Prints one JSON object as a line on stdout (the format benches and evals emit). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}
