/**
 * Training activations computed on the fly from a language model, as SAELens trains by
 * default: no store on disk. The tokenized contexts are held in memory; each group of
 * them (about bufferRows rows) runs through the model up to the hook, and its rows are
 * served mixed, exactly as a store's shards would be (mixed-source.ts). A resumed run
 * recomputes its group, so it reads the rows an uninterrupted run would have. With a
 * target hook it serves a transcoder's [input | target] pairs from the same pass; with
 * several hooks, their activations side by side, for one SAE per hook (trainSaes).
 */
import type { LanguageModel } from "../lm/model.js";
import { MixedSource } from "./mixed-source.js";

export interface LmSourceOptions {
  /**
   * The hook, or several: then each row holds every hook's activation side by side, in the
   * order given (`parts`), from one forward pass, for training one SAE per hook at once.
   * `*` stands for one part of a name: `blocks.*.hook_resid_post` is every block's output.
   */
  hook: string | string[];
  /** A transcoder's output hook, later in the forward pass (with a single hook). */
  targetHook?: string;
  /** Leave out each context's first position (the BOS token), as harvest --exclude-bos does. */
  excludeBos?: boolean;
  seed?: number;
  /** About how many rows are mixed at a time (whole contexts). Default 65536. */
  bufferRows?: number;
  /** Contexts per forward pass. Default 16. */
  batch?: number;
  /** What describe() reports beside the hooks: model, dataset, ... */
  info?: Record<string, unknown>;
}

export class LmSource extends MixedSource {
  readonly d: number;
  readonly dTarget?: number;
  /** Where each hook's activation sits in a row. */
  readonly parts: ReadonlyArray<{ hook: string; offset: number; d: number }>;
  private readonly hooks: string[];
  /** The inputs' parts and the target's: where each hook's activation goes in a row. */
  private readonly placed: ReadonlyArray<{ hook: string; offset: number; d: number }>;
  private readonly lastHook: string;
  private readonly ctx: number;
  private readonly first: number;

  constructor(private readonly model: LanguageModel, private readonly contexts: Int32Array[], private readonly o: LmSourceOptions) {
    if (contexts.length === 0) throw new Error("no contexts to compute activations from");
    const ctx = contexts[0]!.length;
    const first = o.excludeBos ? 1 : 0;
    if (ctx - first < 1) throw new Error(`contexts of ${ctx} tokens leave no positions to train on`);
    super(o.seed ?? 0, contexts.length, Math.max(1, Math.min(contexts.length, Math.round((o.bufferRows ?? 65536) / (ctx - first)))));
    for (const c of contexts) if (c.length !== ctx) throw new Error(`contexts must all have ${ctx} tokens; one has ${c.length}`);
    const names = model.hookNames();
    this.hooks = (typeof o.hook === "string" ? [o.hook] : o.hook).flatMap((h) => expandHookPattern(h, names));
    if (this.hooks.length === 0) throw new Error("no hook to compute activations at");
    if (new Set(this.hooks).size !== this.hooks.length) throw new Error(`a hook is named twice: ${this.hooks.join(", ")}`);
    let offset = 0;
    this.parts = this.hooks.map((hook) => {
      const part = { hook, offset, d: model.hookWidth(hook) };
      offset += part.d;
      return part;
    });
    this.d = offset;
    if (o.targetHook !== undefined) {
      if (this.hooks.length > 1) throw new Error("a target hook goes with a single input hook (one transcoder)");
      this.dTarget = model.transcoderWidth(this.hooks[0]!, o.targetHook);
    }
    // Every hook's activation lands in its columns of a row: the inputs side by side, then
    // the target; the forward pass stops after the last of them.
    this.placed = [...this.parts, ...(o.targetHook ? [{ hook: o.targetHook, offset: this.d, d: this.d }] : [])];
    this.lastHook = this.placed.reduce((a, p) => (names.indexOf(p.hook) > names.indexOf(a) ? p.hook : a), this.placed[0]!.hook);
    this.ctx = ctx;
    this.first = first;
    this.begin();
  }

  protected loadRows(units: number[]): Float32Array {
    const { ctx: T, first, d } = this;
    const per = T - first;
    const width = d + (this.dTarget ?? 0);
    const out = new Float32Array(units.length * per * width);
    const B = this.o.batch ?? 16;
    for (let u0 = 0; u0 < units.length; u0 += B) {
      const n = Math.min(B, units.length - u0);
      const tokens = new Int32Array(n * T);
      for (let b = 0; b < n; b++) tokens.set(this.contexts[units[u0 + b]!]!, b * T);
      const store = (offset: number, w: number) => (a: Float32Array) => {
        for (let b = 0; b < n; b++) {
          for (let t = first; t < T; t++) {
            const row = (u0 + b) * per + t - first;
            out.set(a.subarray((b * T + t) * w, (b * T + t + 1) * w), row * width + offset);
          }
        }
      };
      const hooks = Object.fromEntries(this.placed.map((p) => [p.hook, store(p.offset, p.d)]));
      this.model.forward(tokens, n, T, { output: "none", stopAt: this.lastHook, hooks });
    }
    return out;
  }

  protected where(): string {
    return `${this.model.name} at ${this.hooks.join(", ")}`;
  }

  describe(): Record<string, unknown> {
    return {
      kind: "model", ...(this.o.info ?? {}), hook: this.hooks.length === 1 ? this.hooks[0] : this.hooks,
      ...(this.o.targetHook ? { target_hook: this.o.targetHook } : {}),
      ctx: this.ctx, contexts: this.contexts.length, tokens: this.contexts.length * (this.ctx - this.first),
    };
  }
}

/**
 * The hook names a pattern stands for, in the forward pass's order: `*` matches one name
 * part (`blocks.*.hook_resid_post`: every block's output); a name without `*` is itself.
 */
export function expandHookPattern(pattern: string, names: readonly string[]): string[] {
  if (!pattern.includes("*")) return [pattern];
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]+")}$`);
  const hits = names.filter((n) => re.test(n));
  if (hits.length === 0) throw new Error(`no hook point matches "${pattern}"`);
  return hits;
}
