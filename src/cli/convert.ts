/** `saekit convert`: rewrite an SAE from any format saekit reads in SAELens' (or sparsify's) format. */
import { type Command, Option } from "commander";
import { fetchSae, isSaePath } from "../sae/open.js";
import { saveSae } from "../sae/saelens.js";
import { saveSparsifySae } from "../sae/sparsify.js";
import { SAE_HELP } from "./lm-options.js";
import { printJson } from "./options.js";

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description("write an SAE from any format saekit reads (SAELens, sparsify, dictionary_learning ae.pt, OpenAI sparse_autoencoder .pt, Goodfire .pth, GemmaScope params.npz) as a SAELens folder (cfg.json + sae_weights.safetensors) or, for TopK SAEs, a sparsify one (cfg.json + sae.safetensors)")
    .requiredOption("--sae <path>", SAE_HELP)
    .option("--cache-dir <dir>", "where hf: SAEs are downloaded (default ~/.cache/saekit/hub or $SAEKIT_CACHE)")
    .requiredOption("--out <dir>", "folder to write (for sparsify, name it after the module it reads: layers.6, layers.6.mlp)")
    .addOption(new Option("--format <name>", "what to write").choices(["saelens", "sparsify"]).default("saelens"))
    .option("--overwrite", "write over an SAE already in --out (without it, such a folder is refused)")
    .action(async (o) => {
      // An SAE already there (a trained run's, say) is not replaced unless asked.
      if (!o.overwrite && isSaePath(o.out)) throw new Error(`${o.out}: holds an SAE already; choose another --out, or --overwrite to replace it`);
      const { sae, metadata, format } = await fetchSae(o.sae, { cacheDir: o.cacheDir });
      if (o.format === "sparsify") saveSparsifySae(o.out, sae, { transcoder: Boolean(metadata.hook_name_out) });
      else saveSae(o.out, sae, { metadata, info: { converted_from: { format, path: o.sae } } });
      printJson({ out: o.out, from: format, architecture: sae.cfg.architecture, d_in: sae.cfg.d_in, d_sae: sae.cfg.d_sae, hook_name: metadata.hook_name ?? null });
    });
}
