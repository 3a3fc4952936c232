/**
 * Training activations computed on the fly from a language model, as SAELens trains by
 * default: no store on disk. The tokenized contexts are held in memory; each group of
 * them (about bufferRows rows) runs through the model up to the hook, and its rows are
 * served mixed, exactly as a store's shards would be (mixed-source.ts). A resumed run
 * recomputes its group, so it reads the rows an uninterrupted run would have. With a
 * target hook it serves a transcoder's [input | target] pairs from the same pass; with
 * several hooks, their activations side by side (then their targets), for one SAE or
 * transcoder per hook (trainSaes).
 */
import { type LanguageModel, fanOutHooks } from "../lm/model.js";
import { MixedSource } from "./mixed-source.js";

export interface LmSourceOptions {
  /**
   * The hook, or several: then each row holds every hook's activation side by side, in the
   * order given (`parts`), from one forward pass, for training one SAE per hook at once.
   * `*` stands for one part of a name: `blocks.*.hook_resid_post` is every block's output.
   */
  hook: string | string[];
  /**
   * Transcoders' output hooks, each later in the forward pass than its input: one per hook,
   * paired in order (`blocks.*.hook_mlp_out` beside `blocks.*.ln2.hook_normalized`).
   */
  targetHook?: string | string[];
  /** Leave out each context's first position (the BOS token), as harvest --exclude-bos does. */
  excludeBos?: boolean;
  /** Token ids whose positions are left out wherever they are (token-filter.ts). */
  excludeTokens?: readonly number[];
  seed?: number;
  /** About how many rows are mixed at a time (whole contexts). Default 65536. */
  bufferRows?: number;
  /** Contexts per forward pass. Default 16. */
  batch?: number;
  /** What describe() reports beside the hooks: model, dataset, ... */
  info?: Record<string, unknown>;
}

/** Where one hook's activation (and its target's, for a transcoder) sits in a row. */
export interface LmSourcePart {
  hook: string;
  offset: number;
  d: number;
  targetHook?: string;
  targetOffset?: number;
}

export class LmSource extends MixedSource {
  readonly d: number;
  readonly dTarget?: number;
  /** Positions in the contexts held (each context's, less BOS and excluded tokens when they are left out). */
  readonly totalRows: number;
  /** Where each hook's activation sits in a row: the inputs side by side, then the targets. */
  readonly parts: readonly LmSourcePart[];
  private readonly hooks: string[];
  private readonly targets: string[] | undefined;
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
    const list = (h: string | string[]) => (typeof h === "string" ? [h] : h);
    const pairs = model.hookPairs(list(o.hook), o.targetHook !== undefined ? list(o.targetHook) : undefined);
    this.hooks = pairs.map((p) => p.hook);
    this.targets = o.targetHook !== undefined ? pairs.map((p) => p.target!) : undefined;
    this.d = pairs.reduce((a, p) => a + p.d, 0);
    if (this.targets) this.dTarget = this.d;
    let offset = 0;
    this.parts = pairs.map(({ hook, target, d }) => {
      const part: LmSourcePart = { hook, offset, d, ...(target ? { targetHook: target, targetOffset: this.d + offset } : {}) };
      offset += d;
      return part;
    });
    // The forward pass stops after the last hook any part reads.
    this.lastHook = model.lastHook([...this.hooks, ...(this.targets ?? [])]);
    this.ctx = ctx;
    this.first = first;
    this.excluded = new Set(o.excludeTokens ?? []);
    this.totalRows = this.rowsKept(contexts.length * (ctx - first));
    this.begin();
  }

  protected loadRows(units: number[], reuse: Float32Array): Float32Array {
    const { ctx: T, first, d } = this;
    const per = T - first;
    const width = d + (this.dTarget ?? 0);
    const n = units.length * per * width;
    const out = MixedSource.rowsBuffer(reuse, n);
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
      // A hook may be one part's input and another's target: it then lands in both places.
      const hooks = fanOutHooks(this.parts.flatMap((p) => [
        [p.hook, store(p.offset, p.d)] as const,
        ...(p.targetHook ? [[p.targetHook, store(p.targetOffset!, p.d)] as const] : []),
      ]));
      this.model.forward(tokens, n, T, { output: "none", stopAt: this.lastHook, hooks });
    }
    return out;
  }

  /** A context's tokens at the positions it serves. */
  protected override unitTokens(unit: number): Int32Array {
    return this.contexts[unit]!.subarray(this.first);
  }

  protected where(): string {
    return `${this.model.name} at ${this.hooks.join(", ")}`;
  }

  describe(): Record<string, unknown> {
    return {
      kind: "model", ...(this.o.info ?? {}), hook: this.hooks.length === 1 ? this.hooks[0] : this.hooks,
      ...(this.targets ? { target_hook: this.targets.length === 1 ? this.targets[0] : this.targets } : {}),
      ctx: this.ctx, contexts: this.contexts.length, tokens: this.totalRows,
      ...(this.excluded.size > 0 ? { exclude_tokens: [...this.excluded] } : {}),
    };
  }
}
