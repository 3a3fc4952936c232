/**
 * Batches for end-to-end SAE training (sparsify's loss_fn "ce" / "kl"): whole contexts, in
 * a seeded order reshuffled each pass, their activations at the hook from a clean forward
 * pass. It is also the training core's Downstream: once the SAE has reconstructed the batch
 * last served, the model's loss with that reconstruction spliced in, and the loss's gradient
 * in it (lm/splice-backward.ts). Rows are never mixed across contexts, unlike the shuffled
 * sources': the model needs each context whole.
 *
 * A position is (pass, contexts served in it), so a resumed run reads the batches an
 * uninterrupted one would have.
 */
import { Rng } from "../core/rng.js";
import type { LanguageModel } from "../lm/model.js";
import { type CleanPass, SpliceBackward, type SpliceLoss, type SpliceLossKind } from "../lm/splice-backward.js";
import type { Downstream } from "../train/core.js";
import type { ActivationSource } from "./source.js";

export interface SpliceSourceOptions {
  hook: string;
  loss: SpliceLossKind;
  /** Weight of the e2e+ds term (lm/splice-backward.ts; 0, the default: none). */
  downstream?: number;
  seed?: number;
  /** What describe() reports beside the hook: model, dataset, ... */
  info?: Record<string, unknown>;
}

interface Served {
  tokens: Int32Array;
  contexts: number;
  clean: CleanPass;
}

export class SpliceSource implements ActivationSource, Downstream {
  readonly d: number;
  readonly totalRows: number;
  readonly settings: Record<string, unknown>;
  private readonly ctx: number;
  private readonly backward: SpliceBackward;
  private readonly seed: number;
  private pass = 0;
  private position = 0;
  private order: number[] = [];
  private last: Served | null = null;

  constructor(readonly model: LanguageModel, private readonly contexts: Int32Array[], private readonly o: SpliceSourceOptions) {
    if (contexts.length === 0) throw new Error("no contexts to train on");
    this.ctx = contexts[0]!.length;
    for (const c of contexts) if (c.length !== this.ctx) throw new Error(`contexts must all have ${this.ctx} tokens; one has ${c.length}`);
    if (this.ctx < 2) throw new Error("end-to-end training needs contexts of at least two tokens (one to predict from, one to predict)");
    this.backward = new SpliceBackward(model, o.hook, o.loss, o.downstream ?? 0);
    this.d = model.hookWidth(o.hook);
    this.totalRows = contexts.length * this.ctx;
    this.seed = o.seed ?? 0;
    this.settings = { loss_fn: o.loss, hook: o.hook, downstream_mse: o.downstream ?? 0 };
    this.shuffle();
  }

  /**
   * The next contexts' activations at the hook [batch, d]: batch / ctx whole contexts. A
   * batch that is not a multiple of ctx (the trainer's peek at its first rows, to initialise
   * the SAE) gets the first rows of the contexts that cover it; training on one is refused
   * by lossAndGrad.
   */
  next(out: Float32Array, batch: number): void {
    const n = Math.ceil(batch / this.ctx);
    const tokens = new Int32Array(n * this.ctx);
    for (let b = 0; b < n; b++) {
      if (this.position === this.order.length) {
        this.pass++;
        this.position = 0;
        this.shuffle();
      }
      tokens.set(this.contexts[this.order[this.position++]!]!, b * this.ctx);
    }
    const clean = this.backward.clean(tokens, n, this.ctx);
    out.set(clean.x.subarray(0, batch * this.d));
    this.last = { tokens, contexts: n, clean };
  }

  /** The model's loss with xHat [batch, d] spliced in for the batch last served, and d loss / d xHat. */
  lossAndGrad(_x: Float32Array, xHat: Float32Array, batch: number): SpliceLoss {
    const last = this.last;
    if (batch % this.ctx !== 0) throw new RangeError(`end-to-end training takes whole contexts: a batch of ${batch} rows is not a multiple of the ${this.ctx}-token context`);
    if (!last || last.contexts * this.ctx !== batch) throw new Error("end-to-end loss asked for a batch the source did not serve last");
    return this.backward.lossAndGrad(last.tokens, last.contexts, this.ctx, last.clean, xHat);
  }

  state(): unknown {
    return { pass: this.pass, position: this.position };
  }

  restore(state: unknown): void {
    const s = state as { pass?: unknown; position?: unknown } | null;
    const ok = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    if (!s || !ok(s.pass) || !ok(s.position) || (s.position as number) > this.contexts.length) {
      throw new Error(`cannot resume the end-to-end batches at ${JSON.stringify(state)} (a checkpoint of another run?)`);
    }
    this.pass = s.pass as number;
    this.shuffle();
    this.position = s.position as number;
    this.last = null;
  }

  describe(): Record<string, unknown> {
    return {
      kind: "model", ...(this.o.info ?? {}), hook: this.o.hook, loss_fn: this.o.loss, ...(this.o.downstream ? { downstream_mse: this.o.downstream } : {}),
      ctx: this.ctx, contexts: this.contexts.length, tokens: this.totalRows,
    };
  }

  /** This pass's order of the contexts. */
  private shuffle(): void {
    this.order = new Rng(this.seed * 7919 + this.pass).shuffle(Array.from({ length: this.contexts.length }, (_, i) => i));
  }
}
