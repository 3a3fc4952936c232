/**
 * The saekit command line. Every command is a thin wrapper over a library call that users
 * can make from TypeScript too; this file only wires them up and reports errors.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { runtimeInfo } from "../core/kernels.js";
import { packageRoot } from "../core/native.js";
import { wasmSimdAvailable } from "../core/wasm-gemm.js";
import { registerAbsorption } from "./absorption.js";
import { registerAutoInterp } from "./autointerp.js";
import { registerAnalyze } from "./analyze.js";
import { registerBench } from "./bench.js";
import { registerCompare } from "./compare.js";
import { registerConvert } from "./convert.js";
import { registerDashboard } from "./dashboard.js";
import { printJson } from "./options.js";
import { registerDemo } from "./demo.js";
import { registerExample } from "./example.js";
import { registerExportCache } from "./export-cache.js";
import { registerLm } from "./lm.js";
import { registerMeasure } from "./measure.js";
import { registerPlot } from "./plot.js";
import { registerProbe } from "./probe.js";
import { registerScr } from "./scr.js";
import { registerTpp } from "./tpp.js";
import { registerTrain } from "./train.js";
import { registerWeb } from "./web.js";

function version(): string {
  try {
    return JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")).version as string;
  } catch {
    return "unknown";
  }
}

export function buildProgram(): Command {
  const program = new Command()
    .name("saekit")
    .description("Sparse autoencoders for neural-network activations: train, evaluate and explore SAEs on a CPU.")
    .version(version())
    .showHelpAfterError("(run with --help for usage)");

  program
    .command("info")
    .description("print the runtime saekit runs on (native or reference kernels, CPU architecture, instruction set, GEMM register tile, threads, matmul precision and how bfloat16 products run, and whether the WebAssembly SIMD fallback is there) as JSON")
    .action(() => printJson({ saekit: version(), node: process.version, arch: process.arch, ...runtimeInfo(), wasmSimd: wasmSimdAvailable() }));

  registerTrain(program);
  registerDemo(program);
  registerLm(program);
  registerExportCache(program);
  registerMeasure(program);
  registerProbe(program);
  registerTpp(program);
  registerScr(program);
  registerAbsorption(program);
  registerAutoInterp(program);
  registerConvert(program);
  registerCompare(program);
  registerAnalyze(program);
  registerDashboard(program);
  registerPlot(program);
  registerExample(program);
  registerWeb(program);
  registerBench(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`saekit: error: ${e.message}\n`);
    if (process.env.SAEKIT_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}
