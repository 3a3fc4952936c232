/** `saekit convert`: rewrite an SAE from sparsify or dictionary_learning in SAELens format. */
import type { Command } from "commander";
import { openSae } from "../sae/open.js";
import { saveSae } from "../sae/saelens.js";
import { printJson } from "./options.js";

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description("write an SAE from any format saekit reads (SAELens, sparsify, dictionary_learning ae.pt) as a SAELens folder: cfg.json + sae_weights.safetensors")
    .requiredOption("--sae <path>", "the SAE to convert")
    .requiredOption("--out <dir>", "SAELens folder to write")
    .action((o) => {
      const { sae, metadata, format } = openSae(o.sae);
      saveSae(o.out, sae, { metadata, info: { converted_from: { format, path: o.sae } } });
      printJson({ out: o.out, from: format, architecture: sae.cfg.architecture, d_in: sae.cfg.d_in, d_sae: sae.cfg.d_sae, hook_name: metadata.hook_name ?? null });
    });
}
