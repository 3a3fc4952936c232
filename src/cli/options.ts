/** Option parsers shared by the CLI commands: strict, with messages that name the option. */
import { availableParallelism } from "node:os";
import { InvalidArgumentError, Option } from "commander";
import { MATMUL_PRECISIONS, type MatmulPrecision, runtimeInfo, setMatmulPrecision } from "../core/kernels.js";

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

/** --sae-memory: GiB, as bytes. */
export function gibibytes(value: string): number {
  const n = finiteNumber(value);
  if (n <= 0) throw new InvalidArgumentError(`expected a positive number of GiB, got "${value}"`);
  return Math.round(n * 2 ** 30);
}

/**
 * --sae-memory, for commands that run a folder of SAEs together: how much memory the SAEs
 * held at once may take; the rest wait for a later pass over the same data.
 */
export function saeMemoryOption(): Option {
  return new Option("--sae-memory <GiB>", "with a folder of SAEs: the memory the SAEs run together may take (their weights and a batch of pre-activations each); the others wait for another pass over the same data (default: a quarter of this machine's memory)")
    .argParser(gibibytes);
}

/** "1,2,3" -> [1, 2, 3] (non-negative integers). */
export function intList(value: string): number[] {
  return value.split(",").map((part) => nonNegativeInt(part));
}

/** --exclude-tokens: "special" (the model's special tokens), or token ids "0,50256". */
export function tokenExclusions(value: string): "special" | number[] {
  return value === "special" ? "special" : intList(value);
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

/**
 * --matmul-precision: what the command's matrix products compute in (kernels.ts
 * setMatmulPrecision); the default is SAEKIT_MATMUL_PRECISION or "highest".
 */
export function matmulPrecisionOption(): Option {
  return new Option("--matmul-precision <p>", "matrix products in float32 (highest) or on bfloat16-rounded inputs (medium: PyTorch's bf16 autocast; ~2x the GEMM speed on CPUs with AVX-512 BF16)")
    .choices([...MATMUL_PRECISIONS]).default(process.env.SAEKIT_MATMUL_PRECISION || "highest");
}

/**
 * Sets the command's matmul precision and returns it. At "medium" without the AVX-512 BF16
 * dot-product instructions (the CPU, the compiler or SAEKIT_ISA), says once on stderr that
 * the products get bfloat16's precision but not its speed-up.
 */
export function useMatmulPrecision(p: MatmulPrecision): MatmulPrecision {
  setMatmulPrecision(p);
  if (p === "medium" && runtimeInfo().bf16Matmul === "emulated" && process.env.SAEKIT_QUIET !== "1") {
    process.stderr.write("saekit: --matmul-precision medium: no AVX-512 BF16 dot-product instructions in use here, " +
      "so the products are computed at bfloat16 precision at float32's speed\n");
  }
  return p;
}

/** Prints one JSON object as a line on stdout (the format benches and evals emit). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}
