/**
 * saekit explorer: a self-contained web page (no server, no network) to load an SAE and
 * activations from local files (or compute activations with a language model run in the
 * page), train an SAE on them in the page, measure it, look at its latents, read a prompt
 * through it token by token, and download it in SAELens format. Everything runs on saekit's browser build;
 * this file is only the page: it reads inputs, calls the library, and draws the results.
 *
 * Built by scripts/build-web.mjs into dist/web/explorer.html (`saekit web` writes a copy).
 */
import {
  type ActivationMatrix, type Architecture, type Exploration, InMemoryTraining, LmSource, type LoadedModel, type PromptToken,
  type OptimizerKind, type Sae, type SaeMetadata, type SpliceEvalResult, DASHBOARD_STYLE, SuperpositionSource, activationsFromBytes, activationsFromParquetBytes,
  buildDashboards, defaultConfig, evaluateSpliceOn, exploreActivations, histogramSvg, latentDashboardHtml, latentDetail, lineSvg, modelFromFiles, packContexts, promptView,
  runtimeInfo, saeFromFileMap, saeLensFolderBytes, splitDocuments,
} from "../src/browser.js";

/**
 * What the page holds: the SAE being explored, the activations it is explored on, and the
 * language model that can compute activations and read prompts.
 */
const state: {
  sae: Sae | null; saeName: string; metadata: SaeMetadata; acts: ActivationMatrix | null; actsName: string; lm: LoadedModel | null;
  /** Where the activations came from when the model computed them: latents then get dashboards. */
  fromModel: { hook: string; contexts: Int32Array[]; ctx: number; excludeBos: boolean } | null;
} = { sae: null, saeName: "", metadata: {}, acts: null, actsName: "", lm: null, fromModel: null };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number(($(id) as HTMLInputElement).value);
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
/** Lets the browser paint before (and between) long computations. */
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function status(id: string, text: string, error = false): void {
  const el = $(id);
  el.textContent = text;
  el.className = error ? "status error" : "status";
}

/** Runs an action, reporting its error in the section's status line rather than losing it. */
async function guarded(statusId: string, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    status(statusId, (err as Error).message, true);
  }
}

async function readFiles(input: HTMLInputElement): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const f of Array.from(input.files ?? [])) files.set(f.name, new Uint8Array(await f.arrayBuffer()));
  return files;
}

function describeSae(): void {
  const sae = state.sae;
  if (!sae) return;
  const c = sae.cfg;
  const k = "k" in c ? `, k = ${c.k}` : c.architecture === "mp" ? `, at most ${c.max_iterations} pursuit steps` : "";
  const hook = state.metadata.hook_name ? `, trained on ${state.metadata.hook_name}` : "";
  status("sae-status", `${state.saeName}: ${c.architecture}, d_in = ${c.d_in}, d_sae = ${c.d_sae}${k}${hook}`);
  ($("download") as HTMLButtonElement).disabled = false;
  refreshRunButton();
}

function describeActs(): void {
  const a = state.acts;
  if (a) status("acts-status", `${state.actsName}: ${a.rows} rows of width ${a.d}`);
  refreshRunButton();
}

function refreshRunButton(): void {
  const ready = state.sae !== null && state.acts !== null && state.sae.cfg.d_in === state.acts.d;
  ($("explore") as HTMLButtonElement).disabled = !ready;
  ($("train") as HTMLButtonElement).disabled = state.acts === null;
  ($("model-acts") as HTMLButtonElement).disabled = state.lm === null;
  ($("show-prompt") as HTMLButtonElement).disabled = state.lm === null || state.sae === null;
  if (state.sae && state.acts && state.sae.cfg.d_in !== state.acts.d) {
    status("explore-status", `the SAE reads width ${state.sae.cfg.d_in}, the activations have width ${state.acts.d}`, true);
  }
}

async function loadSaeFiles(): Promise<void> {
  const files = await readFiles($("sae-files"));
  const loaded = saeFromFileMap(files, "the chosen files");
  Object.assign(state, { sae: loaded.sae, saeName: "loaded SAE", metadata: loaded.metadata });
  describeSae();
}

async function loadActs(): Promise<void> {
  const [name, bytes] = [...(await readFiles($("acts-file"))).entries()][0] ?? [];
  if (!name || !bytes) return;
  const acts = name.endsWith(".parquet") ? await activationsFromParquetBytes(name, bytes) : activationsFromBytes(name, bytes);
  Object.assign(state, { acts, actsName: name, fromModel: null });
  describeActs();
}

function syntheticActs(): void {
  const d = Number(($("synth-d") as HTMLInputElement).value);
  const rows = Number(($("synth-rows") as HTMLInputElement).value);
  const features = Number(($("synth-features") as HTMLInputElement).value);
  const source = new SuperpositionSource({ d, nFeatures: features, seed: 0 });
  const data = new Float32Array(rows * d);
  source.next(data, rows);
  Object.assign(state, { acts: { data, rows, d }, actsName: `superposition of ${features} features in R^${d}`, fromModel: null });
  describeActs();
}

async function loadModelFiles(): Promise<void> {
  const files = await readFiles($("model-files"));
  if (files.size === 0) return;
  const weights = ($("model-bf16") as HTMLInputElement).checked ? "bf16" : "f32";
  const lm = modelFromFiles(files, { source: "the chosen files", weights });
  state.lm = lm;
  // Offer every hook point; start at the loaded SAE's own hook, else the first block's output.
  const hooks = lm.model.hookNames();
  const saeHook = state.metadata.hook_name;
  const wanted = saeHook && hooks.includes(saeHook) ? saeHook : "blocks.0.hook_resid_post";
  $("hook").innerHTML = hooks.map((h) => `<option${h === wanted ? " selected" : ""}>${esc(h)}</option>`).join("");
  ($("hook") as HTMLSelectElement).value = wanted;
  const c = lm.model.cfg;
  status("model-status", `model loaded: ${c.architecture}, ${c.nLayers} layers, d_model = ${c.dModel}, vocabulary ${c.vocabSize}, ` +
    `weights ${lm.model.weightDtype === "bf16" ? "bfloat16" : "float32"} (${(lm.model.weightBytes() / 2 ** 20).toPrecision(3)} MiB)` +
    (lm.tokenizer ? "" : "; no tokenizer: add its file (tokenizer.json, or the llama2.c tokenizer .bin)"));
  refreshRunButton();
}

function tokenizerOf(lm: LoadedModel) {
  if (!lm.tokenizer) throw new Error("the model has no tokenizer: choose its file with the model's (tokenizer.json, or the llama2.c tokenizer .bin)");
  return lm.tokenizer;
}

/**
 * The activations at the chosen hook over the text's first positions, packed into contexts
 * as `saekit harvest` packs them, computed a few contexts at a time so the page can paint.
 */
async function modelActivations(): Promise<void> {
  const lm = state.lm!;
  const tokenizer = tokenizerOf(lm);
  const file = [...(await readFiles($("text-file"))).values()][0];
  const text = file ? new TextDecoder().decode(file) : ($("lm-text") as HTMLTextAreaElement).value;
  const hook = ($("hook") as HTMLSelectElement).value;
  const ctx = num("ctx");
  const excludeBos = ($("exclude-bos") as HTMLInputElement).checked && lm.bosId !== null;
  const perContext = ctx - (excludeBos ? 1 : 0);
  const wanted = Math.ceil(num("lm-tokens") / perContext);
  const contexts: Int32Array[] = [];
  async function* documents() { yield* splitDocuments(text); }
  for await (const c of packContexts(documents(), tokenizer, { ctx, bos: lm.bosId })) {
    contexts.push(c);
    if (contexts.length === wanted) break;
  }
  if (contexts.length === 0) throw new Error(`the text is shorter than one context of ${ctx} tokens`);
  const group = 8;
  const source = new LmSource(lm.model, contexts, { hook, excludeBos, bufferRows: group * perContext, batch: group });
  const rows = contexts.length * perContext;
  const data = new Float32Array(rows * source.d);
  const t0 = performance.now();
  for (let done = 0; done < rows;) {
    const n = Math.min(group * perContext, rows - done);
    source.next(data.subarray(done * source.d, (done + n) * source.d), n);
    done += n;
    status("acts-status", `${hook}: ${done} of ${rows} positions (${Math.round(done / ((performance.now() - t0) / 1000))} tokens/s)`);
    await tick();
  }
  Object.assign(state, {
    acts: { data, rows, d: source.d }, actsName: `${hook} over ${contexts.length} contexts`, fromModel: { hook, contexts, ctx, excludeBos },
  });
  describeActs();
}

/** The prompt's tokens, each with its strongest latents and their effect on the next token's loss. */
async function showPrompt(): Promise<void> {
  const lm = state.lm!;
  const sae = state.sae!;
  const tokenizer = tokenizerOf(lm);
  const saeHook = state.metadata.hook_name;
  const hook = saeHook && lm.model.hookNames().includes(saeHook) ? saeHook : ($("hook") as HTMLSelectElement).value;
  const width = lm.model.hookWidth(hook);
  if (width !== sae.cfg.d_in) throw new Error(`the SAE reads width ${sae.cfg.d_in}; ${hook} of this model has width ${width}`);
  const text = ($("prompt") as HTMLTextAreaElement).value;
  const tokens = Int32Array.from([...(lm.bosId !== null ? [lm.bosId] : []), ...tokenizer.encode(text)]);
  status("prompt-status", `reading ${tokens.length} tokens at ${hook}...`);
  await tick();
  const decode = (t: number) => (t === lm.bosId ? "<bos>" : tokenizer.decode([t]));
  const view = promptView(lm.model, sae, tokens, decode, { hook, top: 5, skipFirst: lm.bosId !== null });
  $("prompt-view").innerHTML = promptTable(view);
  status("prompt-status", `${tokens.length} tokens at ${hook}`);
}

function promptTable(view: PromptToken[]): string {
  const cell = (t: PromptToken) => t.top.map((l) => `${l.latent} (${l.activation.toPrecision(3)}` +
    `${l.loss_effect === null ? "" : `, ${l.loss_effect >= 0 ? "+" : ""}${l.loss_effect.toPrecision(2)}`})`).join(", ");
  const rows = view.map((t) => `<tr><td class="tok">${esc(JSON.stringify(t.text))}</td>` +
    `<td>${t.loss === null ? "" : t.loss.toFixed(3)}</td><td>${cell(t)}</td></tr>`).join("");
  return `<table class="prompt"><tr><th>token</th><th>next-token loss</th><th>latents (activation, loss effect)</th></tr>${rows}</table>`;
}

/** Trains in the page, a few steps per frame, drawing the loss and FVU as it goes. */
async function train(): Promise<void> {
  const acts = state.acts!;
  // Fine-tuning starts from the SAE in hand, with its architecture and size.
  const start = ($("fine-tune") as HTMLInputElement).checked ? state.sae : null;
  if (($("fine-tune") as HTMLInputElement).checked && !start) throw new Error("no SAE to fine-tune: load one in section 1, or train one first");
  const arch = start ? start.cfg.architecture : ($("arch") as HTMLSelectElement).value as Architecture;
  const steps = num("steps");
  const base = start ? { ...start.cfg } : { architecture: arch, d_in: acts.d, d_sae: num("d-sae") };
  // k only for the architectures that select k latents; a matching pursuit takes at most k steps.
  // p-annealing starts its schedule a quarter of the way in here (as the CLI does for short runs).
  const cfg = defaultConfig(arch === "mp" ? { ...base, max_iterations: num("k") }
    : arch === "panneal" || arch === "gated_anneal" ? { ...base, anneal_start: Math.min(10000, Math.floor(0.25 * steps)) }
    : "k" in defaultConfig(base) ? { ...base, k: num("k") } : base);
  const normalize = ($("normalize") as HTMLInputElement).checked ? "expected_norm" as const : "none" as const;
  const optimizer = (($("optimizer") as HTMLSelectElement).value || "adam") as OptimizerKind;
  const run = new InMemoryTraining(cfg, acts, {
    steps, batchSize: num("batch"), lr: num("lr"), optimizer, seed: 0, normalizeActivations: normalize, ...(start ? { initialSae: start } : {}),
  });
  const curve: { step: number[]; loss: number[]; fvu: number[] } = { step: [], loss: [], fvu: [] };
  const t0 = performance.now();
  while (!run.done) {
    for (const r of run.run(Math.max(1, Math.floor(steps / 100)))) {
      curve.step.push(r.step);
      curve.loss.push(r.loss);
      curve.fvu.push(r.fvu!);
    }
    const last = curve.step.length - 1;
    status("train-status", `step ${run.step} / ${steps}: loss ${curve.loss[last]!.toPrecision(4)}, FVU ${curve.fvu[last]!.toFixed(3)} ` +
      `(${Math.round((run.step * num("batch")) / ((performance.now() - t0) / 1000))} tokens/s)`);
    $("train-curve").innerHTML = lineSvg({
      title: `${arch}: training`, xLabel: "step", yLabel: "value", logY: true,
      series: [{ label: "loss", x: curve.step, y: curve.loss }, { label: "FVU", x: curve.step, y: curve.fvu }],
    });
    await tick();
  }
  // result() takes raw inputs: a normalising run's scale is already folded into its weights.
  const how = `${steps} steps${optimizer === "adam" ? "" : `, ${optimizer}`}`;
  const saeName = start ? `${state.saeName}, fine-tuned here (${how})` : `${arch} trained here (${how})`;
  Object.assign(state, { sae: run.result(), saeName, metadata: start ? state.metadata : {} });
  describeSae();
}

/** The measurements on the activations, then (when the model computed them) the splice scores. */
function metricsTable(e: Exploration, splice?: SpliceEvalResult): string {
  const r = e.reconstruction;
  const s = e.sparsity;
  const rows: Array<[string, string]> = [
    ["rows", String(e.rows)], ["FVU", r.fvu.toFixed(4)], ["explained variance", r.explained_variance.toFixed(4)],
    ["cosine similarity", r.cossim.toFixed(4)], ["L0 (f != 0)", s.l0.toFixed(2)], ["frac alive", s.frac_alive.toFixed(3)],
    ["latents > 1% / > 10% dense", `${s.freq_over_1_percent.toFixed(3)} / ${s.freq_over_10_percent.toFixed(3)}`],
    ["living latents", `${e.analysis.living} of ${e.analysis.d_sae}`],
  ];
  if (splice) {
    const ce = [splice.ce_loss_clean, splice.ce_loss_with_sae, splice.ce_loss_zero_ablated].map((v) => v.toFixed(4)).join(" / ");
    rows.push(["CE loss clean / with SAE / zero-ablated", ce], ["CE loss recovered", splice.ce_loss_recovered.toFixed(4)],
      ["KL score", splice.kl_div_score.toFixed(4)]);
  }
  return `<table>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</table>`;
}

/** The most used latents, each row a link to its detail. */
function latentTable(e: Exploration, limit = 100): string {
  const a = e.analysis;
  const order = [...a.utilization.keys()].sort((i, j) => a.utilization[j]! - a.utilization[i]! || i - j).slice(0, limit);
  const body = order.map((j) => `<tr data-latent="${j}"><td><a href="#" data-latent="${j}">${j}</a></td>` +
    `<td>${(100 * a.utilization[j]!).toPrecision(3)}%</td><td>${a.max_activation[j]!.toPrecision(4)}</td><td>${a.mean_activation[j]!.toPrecision(4)}</td></tr>`).join("");
  return `<table class="latents"><tr><th>latent</th><th>fires on</th><th>max |f|</th><th>mean |f| when on</th></tr>${body}</table>`;
}

async function explore(): Promise<void> {
  status("explore-status", "measuring...");
  await tick();
  const tsne = ($("tsne") as HTMLInputElement).checked ? 1000 : 0;
  const e = exploreActivations(state.sae!, state.acts!, { tsnePoints: tsne });
  $("metrics").innerHTML = metricsTable(e);
  $("figures").innerHTML = Object.values(e.figures).join("\n");
  $("latents").innerHTML = latentTable(e);
  status("explore-status", `measured on ${e.rows} rows`);
  const m = state.fromModel;
  if (m && state.lm && !state.metadata.hook_name_out) {
    status("explore-status", `measured on ${e.rows} rows; splicing the SAE into the model...`);
    await tick();
    const splice = spliceScoresHere(state.lm, state.sae!, m);
    $("metrics").innerHTML = metricsTable(e, splice);
    status("explore-status", `measured on ${e.rows} rows; spliced into the model on ${splice.contexts} of its contexts`);
  }
}

/**
 * The SAE spliced into the model at the hook the activations came from, on (up to 32 of)
 * the same contexts: CE loss clean, with the SAE and zero-ablated, and the two scores.
 */
function spliceScoresHere(lm: LoadedModel, sae: Sae, m: NonNullable<typeof state.fromModel>): SpliceEvalResult {
  const contexts = m.contexts.slice(0, 32);
  return evaluateSpliceOn(lm.model, sae, contexts, {
    hook: m.hook, tokens: contexts.length * (m.ctx - 1), ctx: m.ctx, batch: 8, excludeBos: m.excludeBos, progress: false,
  });
}

/**
 * A latent's detail: on activations the model computed here, its sae_vis-style dashboard
 * (the contexts where it fires hardest, quantile examples, logit effects, feature tables);
 * on other activations, its histogram and strongest rows.
 */
async function showLatent(latent: number): Promise<void> {
  const m = state.fromModel;
  const lm = state.lm;
  if (m && lm) {
    status("explore-status", `latent ${latent}: reading ${m.contexts.length} contexts...`);
    await tick();
    async function* contexts() { yield* m!.contexts; }
    const perContext = m.ctx - (m.excludeBos ? 1 : 0);
    const dash = await buildDashboards(lm.model, lm.tokenizer, state.sae!, contexts(), {
      hook: m.hook, latents: [latent], tokens: m.contexts.length * perContext, ctx: m.ctx, excludeBos: m.excludeBos, topExamples: 10,
    });
    $("latent-detail").innerHTML = `<style>${DASHBOARD_STYLE}</style>${latentDashboardHtml(dash.latents[0]!)}`;
    status("explore-status", `latent ${latent} over ${dash.tokens} tokens of ${m.hook}`);
    return;
  }
  const d = latentDetail(state.sae!, state.acts!, latent, { top: 20 });
  const top = d.top.map((t) => `<tr><td>${t.row}</td><td>${t.value.toPrecision(4)}</td></tr>`).join("");
  $("latent-detail").innerHTML = `<h3>Latent ${latent}</h3>` +
    histogramSvg({ title: `latent ${latent}: non-zero activations`, xLabel: "f", yLabel: "rows", ...d.histogram }) +
    `<table><tr><th>row</th><th>f</th></tr>${top}</table>`;
}

function download(): void {
  const files = saeLensFolderBytes(state.sae!, { metadata: state.metadata });
  const links = [...files].map(([name, bytes]) => {
    const url = URL.createObjectURL(new Blob([bytes as BlobPart]));
    return `<a download="${esc(name)}" href="${url}">${esc(name)}</a>`;
  });
  $("download-links").innerHTML = `SAELens format: ${links.join(" &middot; ")}`;
}

function wire(): void {
  $("sae-files").addEventListener("change", () => guarded("sae-status", loadSaeFiles));
  $("acts-file").addEventListener("change", () => guarded("acts-status", loadActs));
  $("synth").addEventListener("click", () => guarded("acts-status", async () => syntheticActs()));
  $("train").addEventListener("click", () => guarded("train-status", train));
  $("explore").addEventListener("click", () => guarded("explore-status", explore));
  $("download").addEventListener("click", () => guarded("sae-status", async () => download()));
  $("model-files").addEventListener("change", () => guarded("model-status", loadModelFiles));
  $("model-acts").addEventListener("click", () => guarded("acts-status", modelActivations));
  $("show-prompt").addEventListener("click", () => guarded("prompt-status", showPrompt));
  $("latents").addEventListener("click", (ev) => {
    const target = (ev.target as HTMLElement).closest("[data-latent]");
    if (!target) return undefined;
    ev.preventDefault();
    return guarded("explore-status", () => showLatent(Number(target.getAttribute("data-latent"))));
  });
  refreshRunButton();
  $("runtime").textContent = runtimeInfo().isa === "wasm-simd128"
    ? "Runs on one core: matrix products on WebAssembly SIMD, the rest in TypeScript."
    : "Runs on one core in plain TypeScript (this browser has no WebAssembly SIMD): matrix products are about six times slower.";
}

wire();
