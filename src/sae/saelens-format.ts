/**
 * SAEs in SAELens' format, so Python tools read what saekit trains and saekit
 * reads what SAELens trains: a folder with `cfg.json` and `sae_weights.safetensors`
 * (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], threshold [d_sae]
 * for JumpReLU). saekit keeps W_enc as [d_sae, d_in] in memory and transposes at the
 * boundary.
 *
 * Architecture mapping on save (inference behaviour is what SAELens would compute):
 *   relu, panneal -> "standard"; topk -> "topk"; batchtopk, matryoshka and jumprelu -> "jumprelu" (threshold);
 *   gated, gated_anneal -> "gated" (b_enc saved as SAELens' b_gate, with r_mag and b_mag);
 *   vsae -> "topk" when it selects after a ReLU (mu = TopK(ReLU(pre)) at inference);
 *   abstopk, vsae with |z| selection, vaease -> their own names, which SAELens does not
 *   know (loading them there fails loudly rather than computing the wrong thing).
 * A transcoder (metadata.hook_name_out set) gets SAELens' transcoder fields (d_out,
 * hook_name_out, hook_layer_out), and "standard"/"jumprelu" become "transcoder" /
 * "jumprelu_transcoder"; with a skip connection, "skip_transcoder" /
 * "jumprelu_skip_transcoder" and the tensor W_skip [d_out, d_in].
 * saekit's full config sits under "saekit" in cfg.json, and tensors SAELens would refuse
 * as unexpected keys (vSAE's log-variance head) go to `saekit_extras.safetensors`.
 */
import { concatBytes } from "../core/bytes.js";
import { parseJson } from "../core/json.js";
import { SafetensorsReader, encodeSafetensors } from "../core/safetensors-format.js";
import { Tensor } from "../core/tensor.js";
import { ARCHITECTURES, type Architecture, type SaeConfig, type SaeConfigInput, defaultConfig, settingsOf } from "./config.js";
import { foldDecoderNorms } from "./decoder-norms.js";
import { createSae } from "./registry.js";
import { type ParamSet, type Sae, cloneParams } from "./sae.js";

export const CFG_FILE = "cfg.json";
export const WEIGHTS_FILE = "sae_weights.safetensors";
export const EXTRAS_FILE = "saekit_extras.safetensors";
/** SAELens' optional per-latent log10 firing frequency from training: tensor "sparsity" [d_sae]. */
export const SPARSITY_FILE = "sparsity.safetensors";
/** SAELens training checkpoints' activation normalisation: {"scaling_factor": s}. */
export const SCALER_FILE = "activation_scaler.json";

/** log10(firing frequency + 1e-10), as SAELens records feature sparsity. */
export function logFeatureSparsity(fires: ArrayLike<number>, tokens: number): Float32Array {
  return Float32Array.from(fires, (f) => Math.log10((tokens > 0 ? f / tokens : 0) + 1e-10));
}

/** What SAELens' metadata block records about where the activations came from. */
export interface SaeMetadata {
  model_name?: string | null;
  hook_name?: string | null;
  hook_head_index?: number | null;
  context_size?: number | null;
  prepend_bos?: boolean;
  dataset_path?: string | null;
  /** A transcoder's output hook: it reads hook_name and predicts this one (SAELens' hook_name_out). */
  hook_name_out?: string | null;
  [key: string]: unknown;
}

/** Gated SAEs keep their gate bias as SAELens' b_gate, beside r_mag and b_mag. */
function isGated(cfg: SaeConfig): boolean {
  return cfg.architecture === "gated" || cfg.architecture === "gated_anneal";
}

/** SAELens' architecture name for an SAE's inference behaviour. */
function saeLensArchitecture(cfg: SaeConfig): string {
  switch (cfg.architecture) {
    case "relu":
    case "panneal": return "standard";
    case "topk": return cfg.activation === "groupmax" ? "groupmax" : "topk";
    case "batchtopk":
    case "matryoshka":
    case "jumprelu": return "jumprelu";
    case "gated":
    case "gated_anneal": return "gated";
    case "mp": return "matching_pursuit";
    case "vsae": return cfg.topk_mode === "relu" || cfg.relu_mu ? "topk" : "abstopk";
    default: return cfg.architecture;
  }
}

/**
 * Returns a copy of the parameters with an input scale s folded in: an SAE trained on
 * s * x becomes one that takes x and returns x_hat in x's units (SAELens does the same
 * for its expected_average_only_in normalisation). A matching pursuit's config changes
 * too: withInputScaleFolded gives the whole SAE.
 */
export function foldInputScale(sae: Sae, s: number): ParamSet {
  const out = cloneParams(sae.params);
  if (s === 1) return out;
  const mul = (name: string, f: number) => {
    const t = out.get(name);
    if (t) for (let i = 0; i < t.data.length; i++) t.data[i]! *= f;
  };
  if (sae.cfg.architecture === "vaease") {
    // The encoder reads x directly: scale its first layer; gamma is a variance in x^2 units.
    mul(sae.cfg.hidden.length > 0 ? "W_h0" : "W_mu", s);
    if (sae.cfg.hidden.length === 0) mul("W_s", s);
    mul("W_dec", 1 / s);
    mul("b_dec", 1 / s);
    out.get("log_gamma")!.data[0]! -= 2 * Math.log(s);
    return out;
  }
  if (sae.cfg.architecture === "mp") {
    // A pursuit of s x - b_dec makes the same choices as one of x - b_dec / s with s times
    // the amounts, so the codes carry the scale and only b_dec changes.
    mul("b_dec", 1 / s);
    return out;
  }
  // pre = W_enc (s x - b_dec) + b_enc = (s W_enc)(x - b_dec / s) + b_enc.
  mul("W_enc", s);
  mul("W_logvar", s);
  mul("W_dec", 1 / s);
  mul("b_dec", 1 / s);
  return out;
}

/**
 * The SAE that takes x, for one trained on s * x: foldInputScale's parameters, and the
 * config with what is in input units rescaled (a matching pursuit's residual threshold).
 */
export function withInputScaleFolded(sae: Sae, s: number): Sae {
  if (s === 1) return sae;
  const cfg = sae.cfg.architecture === "mp" ? { ...sae.cfg, residual_threshold: sae.cfg.residual_threshold / s } : sae.cfg;
  return createSae(cfg, foldInputScale(sae, s), sae.buffers);
}

export interface SaveOptions {
  /** Input scale the SAE was trained with (folded into the saved weights). */
  inputScale?: number;
  metadata?: SaeMetadata;
  /** Extra saekit information recorded in cfg.json (training summary and similar). */
  info?: Record<string, unknown>;
  /** Per-latent log10 firing frequency (logFeatureSparsity), saved as SAELens' sparsity.safetensors. */
  logFeatureSparsity?: Float32Array;
}

/**
 * What saveSae writes, in memory: the cfg.json object, the sae_weights tensors and the
 * saekit extras (empty when there are none).
 */
export function saeLensForm(sae: Sae, opts: SaveOptions = {}): { cfg: Record<string, unknown>; weights: Record<string, Tensor>; extras: Record<string, Tensor> } {
  const { cfg, params } = withInputScaleFolded(sae, opts.inputScale ?? 1);
  const weights: Record<string, Tensor> = {};
  const extras: Record<string, Tensor> = {};
  if (cfg.architecture === "vaease") {
    for (const [n, t] of params) weights[n] = t;
  } else if (cfg.architecture === "mp") {
    // Exactly SAELens' matching pursuit state dict (its loader is strict): no encoder at all.
    weights.W_dec = params.get("W_dec")!;
    weights.b_dec = params.get("b_dec")!;
  } else {
    weights.W_enc = params.get("W_enc")!.transpose();
    weights.W_dec = params.get("W_dec")!;
    const gated = isGated(cfg);
    weights[gated ? "b_gate" : "b_enc"] = params.get("b_enc")!;
    weights.b_dec = params.get("b_dec")!;
    if (gated) for (const n of ["r_mag", "b_mag"]) weights[n] = params.get(n)!;
    if (cfg.architecture === "jumprelu") {
      const lt = params.get("log_threshold")!.data;
      weights.threshold = new Tensor([cfg.d_sae], Float32Array.from(lt, Math.exp));
    }
    if (cfg.architecture === "batchtopk" || cfg.architecture === "matryoshka") weights.threshold = sae.buffers.get("threshold")!.clone();
    for (const n of ["W_logvar", "b_logvar"]) if (params.has(n)) extras[n] = params.get(n)!;
  }
  const lensCfg: Record<string, unknown> = {
    architecture: saeLensArchitecture(cfg),
    d_in: cfg.d_in,
    d_sae: cfg.d_sae,
    dtype: "float32",
    device: "cpu",
    apply_b_dec_to_input: cfg.apply_b_dec_to_input,
    normalize_activations: cfg.input_normalization,
    // SAELens flattens hook_z's [n_heads, d_head] itself when told; saekit's hook_z is flat already.
    reshape_activations: /hook_z$/.test(opts.metadata?.hook_name ?? "") ? "hook_z" : "none",
    metadata: {
      model_name: null, hook_name: null, hook_head_index: null, context_size: null,
      prepend_bos: true, dataset_path: null, ...(opts.metadata ?? {}),
    },
    saekit: { config: cfg, input_scale_folded: opts.inputScale ?? 1, ...(opts.info ?? {}) },
  };
  if ("k" in cfg) {
    lensCfg.k = cfg.k;
    lensCfg.rescale_acts_by_decoder_norm = false;
  }
  if (cfg.architecture === "mp") {
    lensCfg.residual_threshold = cfg.residual_threshold;
    lensCfg.max_iterations = cfg.max_iterations;
  }
  const hookOut = opts.metadata?.hook_name_out ?? null;
  if (hookOut || cfg.skip_connection) {
    // SAELens' transcoder fields; its ReLU and JumpReLU transcoders have names of their own,
    // with and without a skip connection (W_skip [d_out, d_in], as saekit holds it). Other
    // skip transcoders get names SAELens does not know, so it refuses them rather than
    // dropping W_skip.
    const arch = lensCfg.architecture as string;
    const known = arch === "standard" ? "transcoder" : arch === "jumprelu" ? "jumprelu_transcoder" : null;
    if (cfg.skip_connection) {
      weights.W_skip = params.get("W_skip")!;
      lensCfg.architecture = known ? known.replace("transcoder", "skip_transcoder") : `${arch}_skip_transcoder`;
    } else if (known) {
      lensCfg.architecture = known;
    }
    const layer = hookOut ? /^blocks\.(\d+)\./.exec(hookOut) : null;
    Object.assign(lensCfg, { d_out: cfg.d_in, hook_name_out: hookOut, hook_layer_out: layer ? Number(layer[1]) : 0, hook_head_index_out: null });
  }
  return { cfg: lensCfg, weights, extras };
}

/**
 * Every file of an SAE folder in SAELens' format: cfg.json's object and, by file name, the
 * tensors of sae_weights.safetensors (+ saekit_extras.safetensors, + sparsity.safetensors
 * when given the training's feature sparsity). saveSae writes them to disk; a web page
 * encodes them for download.
 */
export function saeLensFolder(sae: Sae, opts: SaveOptions = {}): { cfg: Record<string, unknown>; tensorFiles: Record<string, Record<string, Tensor>> } {
  const { cfg, weights, extras } = saeLensForm(sae, opts);
  const tensorFiles: Record<string, Record<string, Tensor>> = { [WEIGHTS_FILE]: weights };
  if (Object.keys(extras).length) tensorFiles[EXTRAS_FILE] = extras;
  if (opts.logFeatureSparsity) {
    const sparsity = opts.logFeatureSparsity;
    if (sparsity.length !== sae.cfg.d_sae) throw new RangeError(`feature sparsity has ${sparsity.length} entries, d_sae is ${sae.cfg.d_sae}`);
    tensorFiles[SPARSITY_FILE] = { sparsity: new Tensor([sparsity.length], sparsity) };
  }
  return { cfg, tensorFiles };
}

/**
 * An SAE folder read through two accessors (null: no such file): `text` for cfg.json and
 * `tensors` for the safetensors files, from disk (loadSae) or from a web page's Files.
 * `where` names the folder in errors.
 */
export function saeFromFolder(where: string, text: (name: string) => string | null,
  tensors: (name: string) => SafetensorsReader | null): LoadedSae {
  const cfgText = text(CFG_FILE);
  if (cfgText === null) throw new Error(`${where}: no ${CFG_FILE}; expected an SAE folder in SAELens format (cfg.json + sae_weights.safetensors)`);
  const cfgPath = `${where}/${CFG_FILE}`;
  const raw = parseJson(cfgText, cfgPath);
  const open = (name: string) => tensors(name) ?? (() => { throw new Error(`${where}: no ${name}`); })();
  const loaded = saeFromSaeLens(raw, cfgPath, open(WEIGHTS_FILE), () => open(EXTRAS_FILE));
  // A SAELens training checkpoint's weights take inputs scaled by its activation scaler;
  // folding the scale in makes an SAE of the raw activations (saekit folds it at save).
  const scaler = raw.saekit ? null : text(SCALER_FILE);
  if (scaler !== null) {
    let factor: unknown;
    try {
      factor = (JSON.parse(scaler) as { scaling_factor?: unknown }).scaling_factor;
    } catch (err) {
      throw new Error(`${where}/${SCALER_FILE}: not valid JSON (${(err as Error).message})`);
    }
    if (factor !== null && factor !== undefined) {
      if (typeof factor !== "number" || !(factor > 0) || !Number.isFinite(factor)) {
        throw new Error(`${where}/${SCALER_FILE}: scaling_factor must be a positive number, got ${JSON.stringify(factor)}`);
      }
      loaded.sae = withInputScaleFolded(loaded.sae, factor);
    }
  }
  const sparsity = tensors(SPARSITY_FILE);
  if (sparsity) {
    if (!sparsity.has("sparsity")) throw new Error(`${sparsity.path}: missing tensor "sparsity"`);
    loaded.logFeatureSparsity = sparsity.read("sparsity").expectShape([loaded.sae.cfg.d_sae], `${sparsity.path}: tensor "sparsity"`).data;
  }
  return loaded;
}

/** An SAE folder from its files' bytes by name (a web page's Files): saeFromFolder over a map. */
export function saeFromFileMap(files: ReadonlyMap<string, Uint8Array>, where = "<files>"): LoadedSae {
  const bytes = (name: string) => files.get(name) ?? null;
  return saeFromFolder(where, (name) => { const b = bytes(name); return b && new TextDecoder().decode(b); },
    (name) => { const b = bytes(name); return b && SafetensorsReader.fromBytes(b, `${where}/${name}`); });
}

/** saeLensFolder's files as bytes by name, ready to download. */
export function saeLensFolderBytes(sae: Sae, opts: SaveOptions = {}): Map<string, Uint8Array> {
  const { cfg, tensorFiles } = saeLensFolder(sae, opts);
  const out = new Map<string, Uint8Array>();
  for (const [name, tensors] of Object.entries(tensorFiles)) out.set(name, concatBytes(encodeSafetensors(tensors, { format: "pt" })));
  out.set(CFG_FILE, new TextEncoder().encode(JSON.stringify(cfg, null, 2) + "\n"));
  return out;
}

export interface LoadedSae {
  sae: Sae;
  metadata: SaeMetadata;
  /** The raw cfg.json. */
  raw: Record<string, unknown>;
  /** SAELens' sparsity.safetensors when the folder has one: log10 firing frequency per latent. */
  logFeatureSparsity?: Float32Array;
}

/**
 * An SAE from a parsed cfg.json (`cfgPath` names it in errors) and its weights, written by
 * saekit or by SAELens (standard, topk, jumprelu, gated; v6 and pre-6.0 configs;
 * F32/F16/BF16 weights). `extras` opens saekit_extras.safetensors when the SAE needs it.
 * Every missing or mis-shaped tensor is named.
 */
export function saeFromSaeLens(raw: Record<string, unknown>, cfgPath: string, file: SafetensorsReader,
  extras: () => SafetensorsReader): LoadedSae {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${cfgPath}: not a JSON object`);
  const cfg = saekitConfigOf(raw, cfgPath);
  const read = (name: string, shape: number[], from: SafetensorsReader = file): Tensor => {
    if (!from.has(name)) throw new Error(`${from.path}: missing tensor "${name}" for a ${cfg.architecture} SAE`);
    return from.read(name).expectShape(shape, `${from.path}: tensor "${name}"`);
  };
  const { d_in: d, d_sae: m } = cfg;
  const params: ParamSet = new Map();
  const buffers: ParamSet = new Map();
  if (cfg.architecture === "vaease") {
    const template = createSae(cfg);
    for (const [n, t] of template.params) params.set(n, read(n, [...t.shape]));
  } else if (cfg.architecture === "mp") {
    params.set("W_dec", read("W_dec", [m, d]));
    params.set("b_dec", read("b_dec", [d]));
  } else {
    params.set("W_enc", read("W_enc", [d, m]).transpose());
    const gated = isGated(cfg);
    params.set("b_enc", read(gated ? "b_gate" : "b_enc", [m]));
    if (gated) for (const n of ["r_mag", "b_mag"]) params.set(n, read(n, [m]));
    params.set("W_dec", read("W_dec", [m, d]));
    params.set("b_dec", read("b_dec", [d]));
    if (cfg.skip_connection) params.set("W_skip", read("W_skip", [d, d]));
    if (cfg.architecture === "jumprelu") {
      // Inference files hold the threshold; SAELens training checkpoints its log.
      params.set("log_threshold", file.has("threshold") || !file.has("log_threshold")
        ? new Tensor([m], Float32Array.from(read("threshold", [m]).data, Math.log)) : read("log_threshold", [m]));
    }
    if (cfg.architecture === "batchtopk" || cfg.architecture === "matryoshka") {
      // Inference files hold it per latent (as a JumpReLU); training checkpoints one scalar.
      buffers.set("threshold", file.has("threshold") || !file.has("topk_threshold") ? read("threshold", [m])
        : new Tensor([m], new Float32Array(m).fill(file.read("topk_threshold").data[0]!)));
    }
    // SAELens TopK-family SAEs saved mid-training scale pre-activations by the decoder norms
    // (and divide them out to decode); folding the norms gives the same codes and reconstructions.
    if (raw.rescale_acts_by_decoder_norm === true && !raw.saekit && ["topk", "batchtopk", "matryoshka"].includes(cfg.architecture)) {
      foldDecoderNorms(params, ["b_enc"]);
    }
    if (cfg.architecture === "vsae" && cfg.variance === "learned") {
      const extra = extras();
      params.set("W_logvar", read("W_logvar", [m, d], extra));
      params.set("b_logvar", read("b_logvar", [m], extra));
    }
  }
  const metadata = { ...(typeof raw.metadata === "object" && raw.metadata !== null ? raw.metadata : legacyMetadata(raw)) } as SaeMetadata;
  if (typeof raw.hook_name_out === "string" && raw.hook_name_out) metadata.hook_name_out ??= raw.hook_name_out;
  return { sae: createSae(cfg, params, buffers), metadata, raw };
}

/**
 * The saekit config of a cfg.json: saekit's own block, or one derived from SAELens fields;
 * every error names the file.
 */
function saekitConfigOf(raw: Record<string, unknown>, path: string): SaeConfig {
  try {
    return configOfCfgJson(raw, path);
  } catch (err) {
    const message = (err as Error).message;
    throw message.startsWith(path) ? err : new Error(`${path}: ${message}`, { cause: err });
  }
}

function configOfCfgJson(raw: Record<string, unknown>, path: string): SaeConfig {
  const own = (raw.saekit as { config?: Record<string, unknown> } | undefined)?.config;
  if (own) {
    // The SAELens fields saekit wrote beside its own block must still agree with it: a k or a
    // width edited in one place (as SAELens users change k for inference) is not silently
    // overruled by the other.
    for (const key of ["d_in", "d_sae", "k", "apply_b_dec_to_input"] as const) {
      if (raw[key] !== undefined && own[key] !== undefined && raw[key] !== own[key]) {
        throw new Error(`${path}: "${key}" is ${JSON.stringify(raw[key])} but the "saekit" block says ${JSON.stringify(own[key])}; ` +
          `change both (or delete the "saekit" block to read the file as SAELens writes it)`);
      }
    }
    // Settings added since the file was written take their defaults; ones of other
    // architectures, which earlier versions stored when given, are dropped.
    const known = (ARCHITECTURES as readonly string[]).includes(own.architecture as string) ? new Set(settingsOf(own.architecture as Architecture)) : null;
    const settings = known ? Object.fromEntries(Object.entries(own).filter(([key]) => known.has(key))) : own;
    return defaultConfig(settings as unknown as SaeConfigInput);
  }
  const int = (key: string): number => {
    const v = raw[key];
    if (!Number.isSafeInteger(v) || (v as number) < 1) throw new Error(`${path}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const d_in = int("d_in");
  const d_sae = int("d_sae");
  // Pre-6.0 SAELens configs carry the activation in activation_fn_str / activation_fn_kwargs.
  const fnKwargs = (raw.activation_fn_kwargs ?? {}) as Record<string, unknown>;
  let arch = String(raw.architecture ?? "standard");
  if (arch === "standard" && raw.activation_fn_str === "topk") arch = "topk";
  // SAELens transcoders: the same encoders, reading one hook and writing another (the skip
  // transcoders adding W_skip x).
  const transcoder = /^(jumprelu_)?(skip_)?transcoder$/.exec(arch);
  if (transcoder) {
    if (raw.d_out !== undefined && raw.d_out !== d_in) {
      throw new Error(`${path}: a transcoder from ${d_in} to ${JSON.stringify(raw.d_out)} dimensions; saekit's transcoders map a width to itself`);
    }
    arch = transcoder[1] ? "jumprelu" : "standard";
  }
  // SAELens folds the training-time scale ("expected_average_only_in") into the weights it
  // saves and runs such SAEs without normalisation; only the per-token rescalings act at
  // inference, around the SAE (input-norm.ts).
  const norm = raw.normalize_activations;
  if (norm !== undefined && norm !== null && norm !== "none" && norm !== "expected_average_only_in"
    && norm !== "constant_norm_rescale" && norm !== "layer_norm") {
    throw new Error(`${path}: unknown normalize_activations ${JSON.stringify(norm)}`);
  }
  const applyBDec = raw.apply_b_dec_to_input ?? true;
  if (typeof applyBDec !== "boolean") throw new Error(`${path}: "apply_b_dec_to_input" must be true or false, got ${JSON.stringify(applyBDec)}`);
  const common = {
    d_in, d_sae, apply_b_dec_to_input: !transcoder && applyBDec, decoder_norm: "none",
    skip_connection: transcoder?.[2] !== undefined,
    input_normalization: norm === "constant_norm_rescale" || norm === "layer_norm" ? norm : "none",
  };
  switch (arch) {
    case "standard":
      return defaultConfig({ architecture: "relu", ...common });
    case "topk": {
      const k = raw.k ?? fnKwargs.k;
      if (!Number.isSafeInteger(k)) throw new Error(`${path}: a topk SAE needs an integer "k"`);
      return defaultConfig({ architecture: "topk", ...common, k: k as number });
    }
    case "jumprelu":
    case "gated":
      return defaultConfig({ architecture: arch, ...common });
    // Training checkpoints: SAELens saves these as "jumprelu" for inference.
    case "batchtopk":
    case "matryoshka_batchtopk": {
      if (!Number.isSafeInteger(raw.k)) throw new Error(`${path}: a ${arch} SAE needs an integer "k" (saekit selects k x batch), got ${JSON.stringify(raw.k)}`);
      const batch = { ...common, k: raw.k as number, threshold_momentum: (raw.topk_threshold_lr as number | undefined) ?? 0.01 };
      if (arch === "batchtopk") return defaultConfig({ architecture: "batchtopk", ...batch });
      if (!Array.isArray(raw.matryoshka_widths)) throw new Error(`${path}: a matryoshka_batchtopk SAE needs "matryoshka_widths"`);
      return defaultConfig({ architecture: "matryoshka", ...batch, matryoshka_widths: raw.matryoshka_widths });
    }
    case "matching_pursuit": {
      const threshold = raw.residual_threshold ?? 1e-2;
      if (typeof threshold !== "number" || !(threshold >= 0)) throw new Error(`${path}: "residual_threshold" must be a non-negative number, got ${JSON.stringify(threshold)}`);
      return defaultConfig({ architecture: "mp", ...common, residual_threshold: threshold, max_iterations: raw.max_iterations ?? d_in });
    }
    default:
      throw new Error(`${path}: SAELens architecture "${arch}" is not supported (saekit reads standard, topk, batchtopk, matryoshka_batchtopk, jumprelu, gated, matching_pursuit, transcoder, skip_transcoder, jumprelu_transcoder and jumprelu_skip_transcoder)`);
  }
}

function legacyMetadata(raw: Record<string, unknown>): SaeMetadata {
  return {
    model_name: (raw.model_name as string) ?? null,
    hook_name: (raw.hook_name as string) ?? null,
    hook_head_index: (raw.hook_head_index as number) ?? null,
    context_size: (raw.context_size as number) ?? null,
    prepend_bos: raw.prepend_bos !== false,
    dataset_path: (raw.dataset_path as string) ?? null,
  };
}
