/**
 * The explorer page (web/), as built by scripts/build-web.mjs, run in a bare JavaScript
 * realm against a minimal stand-in for the DOM: a user generating data, training an SAE in
 * the page, measuring it, opening a latent, downloading it, and loading files, checked
 * against what the page must show.
 */
import vm from "node:vm";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildExplorer } from "../scripts/build-web.mjs";
import { Rng } from "../src/core/rng.js";
import { encodeSafetensors, SafetensorsReader } from "../src/core/safetensors-format.js";
import { defaultConfig } from "../src/sae/config.js";
import { createSae } from "../src/sae/registry.js";
import { saveSae } from "../src/sae/saelens.js";
import { tempDir } from "./helpers.js";
import { writeTinyNeox } from "./lm/fixtures.js";

/** Just enough of an element: the properties and events the page uses. */
class FakeElement {
  textContent = "";
  innerHTML = "";
  className = "";
  disabled = false;
  value = "";
  checked = false;
  files: Array<{ name: string; arrayBuffer(): Promise<ArrayBuffer> }> = [];
  private listeners: Record<string, Array<(ev: unknown) => unknown>> = {};
  constructor(readonly id: string, private readonly attrs: Record<string, string> = {}) {}
  addEventListener(type: string, fn: (ev: unknown) => unknown): void {
    (this.listeners[type] ??= []).push(fn);
  }
  getAttribute(name: string): string | null {
    return this.attrs[name] ?? null;
  }
  closest(): FakeElement | null {
    return "data-latent" in this.attrs ? this : null;
  }
  /** Dispatches an event and waits for what the handlers started. */
  async fire(type: string, target: FakeElement = this): Promise<void> {
    for (const fn of this.listeners[type] ?? []) await fn({ target, preventDefault() {} });
  }
}

// A copy: a Node Buffer may be a view into a larger shared pool.
const fileOf = (name: string, bytes: Uint8Array) => ({ name, arrayBuffer: async () => new Uint8Array(bytes).buffer });
const concat = (parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

describe("the explorer page", async () => {
  const html = await buildExplorer();
  const script = /<script>\n([^]*)<\/script>/.exec(html)![1]!;
  const elements = new Map<string, FakeElement>();
  const el = (id: string) => elements.get(id) ?? elements.set(id, new FakeElement(id)).get(id)!;
  const blobs: Array<{ parts: Uint8Array[] }> = [];
  const realm = vm.createContext({
    TextEncoder, TextDecoder, console, setTimeout, performance,
    document: { getElementById: el },
    Blob: class { constructor(readonly parts: Uint8Array[]) { blobs.push(this); } },
    URL: { createObjectURL: () => `blob:${blobs.length - 1}` },
  });
  vm.runInContext(script, realm);
  const inputs: Record<string, string> = {
    "synth-d": "16", "synth-features": "48", "synth-rows": "3000", arch: "topk", "d-sae": "64", k: "4", steps: "60", batch: "128", lr: "0.003",
  };
  for (const [id, v] of Object.entries(inputs)) el(id).value = v;

  it("is one page: the HTML with the bundle inlined, no Node module, no native addon", () => {
    expect(html).toContain("<h1>saekit explorer</h1>");
    expect(script).not.toMatch(/require\(|node:fs|createRequire/);
    expect(el("train").disabled).toBe(true); // nothing to train on yet
    expect(el("runtime").textContent).toBe("Runs on one core: matrix products on WebAssembly SIMD, the rest in TypeScript.");
  });

  it("says when the browser has no WebAssembly SIMD", () => {
    // A realm whose WebAssembly is hidden, as in an engine without it.
    const bare = vm.createContext({
      TextEncoder, TextDecoder, console, setTimeout, performance, WebAssembly: undefined,
      document: { getElementById: (id: string) => (id === "runtime" ? runtime : new FakeElement(id)) },
    });
    const runtime = new FakeElement("runtime");
    vm.runInContext(script, bare);
    expect(runtime.textContent).toMatch(/^Runs on one core in plain TypeScript \(this browser has no WebAssembly SIMD\)/);
  });

  it("generates data, trains an SAE on it, measures it and opens a latent", async () => {
    await el("synth").fire("click");
    expect(el("acts-status").textContent).toMatch(/3000 rows of width 16/);
    expect(el("train").disabled).toBe(false);
    await el("train").fire("click");
    expect(el("train-status").textContent).toMatch(/^step 60 \/ 60: loss [\d.]+, FVU [\d.]+/);
    expect(el("train-curve").innerHTML).toContain("<svg");
    expect(el("sae-status").textContent).toBe("topk trained here (60 steps): topk, d_in = 16, d_sae = 64, k = 4");
    expect(el("explore").disabled).toBe(false);
    await el("explore").fire("click");
    expect(el("explore-status").className).toBe("status");
    expect(el("metrics").innerHTML).toMatch(/<th>FVU<\/th><td>0\.\d{4}<\/td>/);
    expect(el("metrics").innerHTML).toMatch(/<th>L0 \(f != 0\)<\/th><td>4\.00<\/td>/);
    expect((el("figures").innerHTML.match(/<svg/g) ?? []).length).toBe(2); // density and max activations; no t-SNE asked
    const first = /data-latent="(\d+)"/.exec(el("latents").innerHTML)![1]!;
    await el("latents").fire("click", new FakeElement("cell", { "data-latent": first }));
    expect(el("latent-detail").innerHTML).toContain(`<h3>Latent ${first}</h3>`);
    expect(el("latent-detail").innerHTML).toMatch(/<tr><td>\d+<\/td><td>[\d.e-]+<\/td><\/tr>/);
  });

  it("fine-tunes the SAE it holds: same architecture and size, trained on from its weights", async () => {
    el("fine-tune").checked = true;
    el("steps").value = "20";
    el("arch").value = "relu"; // ignored: fine-tuning keeps the SAE's own architecture
    await el("train").fire("click");
    expect(el("train-status").textContent).toMatch(/^step 20 \/ 20: loss [\d.]+, FVU [\d.]+/);
    expect(el("sae-status").textContent).toBe("topk trained here (60 steps), fine-tuned here (20 steps): topk, d_in = 16, d_sae = 64, k = 4");
    Object.assign(el("fine-tune"), { checked: false });
    el("steps").value = "60";
    el("arch").value = "topk";
  });

  it("trains with sparsify's optimizer when asked, keeping the running average it ends with", async () => {
    Object.assign(el("optimizer"), { value: "signum" });
    el("lr").value = "0.02";
    await el("train").fire("click");
    expect(el("train-status").textContent).toMatch(/^step 60 \/ 60: loss [\d.]+, FVU [\d.]+/);
    expect(el("sae-status").textContent).toBe("topk trained here (60 steps, signum): topk, d_in = 16, d_sae = 64, k = 4");
    // p-annealing (its schedule fitted to the page's short run) under sparsify's Muon.
    Object.assign(el("arch"), { value: "panneal" });
    el("optimizer").value = "muon";
    await el("train").fire("click");
    expect(el("train-status").textContent).toMatch(/^step 60 \/ 60: loss [\d.]+, FVU [\d.]+/);
    expect(el("sae-status").textContent).toBe("panneal trained here (60 steps, muon): panneal, d_in = 16, d_sae = 64");
    el("arch").value = "topk";
    el("optimizer").value = "adam";
    el("lr").value = "0.003";
    await el("train").fire("click");
    expect(el("sae-status").textContent).toBe("topk trained here (60 steps): topk, d_in = 16, d_sae = 64, k = 4");
  });

  it("downloads the SAE in SAELens format", async () => {
    await el("download").fire("click");
    const links = el("download-links").innerHTML;
    expect(links).toContain('download="cfg.json"');
    expect(links).toContain('download="sae_weights.safetensors"');
    const file = (name: string) => concat(blobs[Number(new RegExp(`download="${name}" href="blob:(\\d+)"`).exec(links)![1])]!.parts);
    expect(JSON.parse(new TextDecoder().decode(file("cfg.json")))).toMatchObject({ architecture: "topk", d_in: 16, d_sae: 64, k: 4 });
    expect(SafetensorsReader.fromBytes(file("sae_weights.safetensors")).shape("W_enc")).toEqual([16, 64]);
  });

  it("loads an SAE folder and activations from files, and says what is wrong with bad ones", async () => {
    const dir = tempDir();
    const sae = createSae(defaultConfig({ architecture: "jumprelu", d_in: 16, d_sae: 24 }));
    new Rng(1).fillNormal(sae.params.get("W_enc")!.data, 0.2);
    saveSae(dir, sae, { metadata: { hook_name: "blocks.2.hook_resid_post" } });
    el("sae-files").files = ["cfg.json", "sae_weights.safetensors"].map((f) => fileOf(f, readFileSync(join(dir, f))));
    await el("sae-files").fire("change");
    expect(el("sae-status").textContent).toBe("loaded SAE: jumprelu, d_in = 16, d_sae = 24, trained on blocks.2.hook_resid_post");
    const acts = Float32Array.from({ length: 50 * 16 }, (_, i) => Math.sin(i));
    el("acts-file").files = [fileOf("acts.safetensors", concat(encodeSafetensors({ activations: { shape: [50, 16], data: acts } })))];
    await el("acts-file").fire("change");
    expect(el("acts-status").textContent).toBe("acts.safetensors: 50 rows of width 16");
    el("sae-files").files = [fileOf("cfg.json", new TextEncoder().encode("{broken"))];
    await el("sae-files").fire("change");
    expect(el("sae-status").className).toBe("status error");
    expect(el("sae-status").textContent).toMatch(/cfg.json: not valid JSON/);
    el("acts-file").files = [fileOf("acts.npy", new Uint8Array([1, 2, 3]))];
    await el("acts-file").fire("change");
    expect(el("acts-status").textContent).toMatch(/acts.npy: not a usable .npy file/);
    // A data file of a SAELens cache on the hub: Parquet (DuckDB's, snappy and dictionary pages).
    const parquet = join(import.meta.dirname, "fixtures", "parquet", "acts-dict-snappy.parquet");
    el("acts-file").files = [fileOf("train-00000-of-00001.parquet", readFileSync(parquet))];
    await el("acts-file").fire("change");
    expect(el("acts-status").textContent).toBe("train-00000-of-00001.parquet: 5000 rows of width 3");
  });

  it("runs a language model in the page: activations for training, and a prompt read token by token", async () => {
    const model = writeTinyNeox(join(tempDir(), "model"));
    expect(el("model-acts").disabled).toBe(true);
    el("model-files").files = readdirSync(model).map((f) => fileOf(f, readFileSync(join(model, f))));
    await el("model-files").fire("change");
    const loaded = /^model loaded: gpt_neox, 2 layers, d_model = 32, vocabulary 300, weights float32 \(([\d.]+) MiB\)$/
      .exec(el("model-status").textContent);
    expect(loaded).not.toBeNull();
    // Loaded again with its weights kept as bfloat16.
    el("model-bf16").checked = true;
    await el("model-files").fire("change");
    const half = /weights bfloat16 \(([\d.]+) MiB\)$/.exec(el("model-status").textContent);
    // Half the matrices' bytes; norms and biases stay float32 (a larger share in so small a model).
    const ratio = Number(half![1]) / Number(loaded![1]);
    expect(ratio).toBeGreaterThan(0.49);
    expect(ratio).toBeLessThan(0.55);
    expect(el("hook").innerHTML).toContain("<option>blocks.1.attn.hook_z</option>");
    expect(el("hook").value).toBe("blocks.0.hook_resid_post"); // the loaded SAE's hook is not in this model
    Object.assign(el("ctx"), { value: "16" });
    Object.assign(el("lm-tokens"), { value: "300" });
    el("exclude-bos").checked = true;
    el("lm-text").value = Array.from({ length: 30 }, (_, i) => `Once upon a time a fox named ${i} ran home.`).join("\n\n");
    await el("model-acts").fire("click");
    // 300 positions at 15 per context (BOS left out): 20 contexts.
    expect(el("acts-status").textContent).toBe("blocks.0.hook_resid_post over 20 contexts: 300 rows of width 32");
    await el("train").fire("click");
    expect(el("sae-status").textContent).toMatch(/^topk trained here \(60 steps\): topk, d_in = 32/);
    // On the model's activations the SAE is also spliced into the model, and a latent opens
    // as a dashboard over the contexts read.
    await el("explore").fire("click");
    expect(el("explore-status").textContent).toBe("measured on 300 rows; spliced into the model on 20 of its contexts");
    expect(el("metrics").innerHTML).toMatch(/<th>CE loss recovered<\/th><td>-?\d+\.\d{4}<\/td>/);
    expect(el("metrics").innerHTML).toMatch(/<th>CE loss clean \/ with SAE \/ zero-ablated<\/th><td>[\d.]+ \/ [\d.]+ \/ [\d.]+<\/td>/);
    const latent = /data-latent="(\d+)"/.exec(el("latents").innerHTML)![1]!;
    await el("latents").fire("click", new FakeElement("cell", { "data-latent": latent }));
    expect(el("explore-status").textContent).toBe(`latent ${latent} over 300 tokens of blocks.0.hook_resid_post`);
    expect(el("latent-detail").innerHTML).toContain(`<section id="latent-${latent}">`);
    expect(el("latent-detail").innerHTML).toMatch(/<h3>Top activations<\/h3>\n<div class="ex">/);
    expect(el("show-prompt").disabled).toBe(false);
    el("prompt").value = "Once upon a time";
    await el("show-prompt").fire("click");
    expect(el("prompt-status").className).toBe("status");
    const table = el("prompt-view").innerHTML;
    // BOS, then one row per token of the prompt, each with its strongest latents.
    const rows = table.match(/<tr><td class="tok">/g) ?? [];
    expect(rows.length).toBeGreaterThan(1);
    expect(table).toMatch(/<td>\d+ \(-?[\d.e+-]+, [+-][\d.e+-]+\)/);
    // An SAE of another width is refused, naming both.
    el("hook").value = "blocks.1.attn.hook_z";
    const wide = createSae(defaultConfig({ architecture: "topk", d_in: 40, d_sae: 8, k: 2 }));
    const dir = tempDir();
    saveSae(dir, wide, { metadata: {} });
    el("sae-files").files = ["cfg.json", "sae_weights.safetensors"].map((f) => fileOf(f, readFileSync(join(dir, f))));
    await el("sae-files").fire("change");
    await el("show-prompt").fire("click");
    expect(el("prompt-status").textContent).toBe("the SAE reads width 40; blocks.1.attn.hook_z of this model has width 32");
  });
});
