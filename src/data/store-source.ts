/**
 * A shuffled stream of activation rows from a store, for training. Like SAELens' mixing
 * buffer it mixes rows from many contexts, but it is also exactly resumable: every epoch
 * visits the shards in a seeded random order, in groups of shards whose rows fill the
 * buffer, and serves each group's rows in a seeded random permutation. A position is then
 * (epoch, group, row), which a checkpoint saves and a restore re-creates by reloading one
 * group. A store harvested with a target hook serves each row with its target, [x | y].
 */
import { Rng } from "../core/rng.js";
import type { ActivationSource } from "./source.js";
import { type StoreManifest, readManifest, readShardActivations, readShardTargets } from "./store.js";

interface StoreSourceState {
  epoch: number;
  group: number;
  row: number;
}

export class StoreSource implements ActivationSource {
  readonly d: number;
  readonly dTarget?: number;
  /** Floats per served row: the input, then its target in a paired store. */
  private readonly width: number;
  readonly manifest: StoreManifest;
  private readonly shardsPerGroup: number;
  private epoch = 0;
  private group = 0;
  private row = 0;
  private order: number[] = [];
  private rows: Float32Array = new Float32Array(0);
  private perm: Uint32Array = new Uint32Array(0);

  /** bufferRows: about how many rows are mixed at a time (whole shards). */
  constructor(readonly dir: string, private readonly seed = 0, bufferRows = 1 << 18) {
    this.manifest = readManifest(dir);
    if (this.manifest.shards.length === 0) throw new Error(`${dir}: the activation store has no shards yet`);
    this.d = this.manifest.d;
    if (this.manifest.target_hook) this.dTarget = this.manifest.d;
    this.width = this.d + (this.dTarget ?? 0);
    const shardRows = Math.max(1, this.manifest.shards[0]!.rows);
    this.shardsPerGroup = Math.max(1, Math.min(this.manifest.shards.length, Math.round(bufferRows / shardRows)));
    this.startEpoch(0);
    this.loadGroup(0);
  }

  private get groups(): number {
    return Math.ceil(this.manifest.shards.length / this.shardsPerGroup);
  }

  private startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.order = new Rng(this.seed * 7919 + epoch).shuffle(this.manifest.shards.map((_, i) => i));
  }

  private loadGroup(group: number): void {
    this.group = group;
    this.row = 0;
    const shards = this.order.slice(group * this.shardsPerGroup, (group + 1) * this.shardsPerGroup);
    const d = this.d;
    const n = shards.reduce((a, s) => a + this.manifest.shards[s]!.rows, 0);
    this.rows = new Float32Array(n * this.width);
    let at = 0;
    for (const s of shards) {
      const acts = readShardActivations(this.dir, this.manifest, s);
      const targets = this.dTarget ? readShardTargets(this.dir, this.manifest, s) : null;
      const rows = acts.length / d;
      if (!targets) this.rows.set(acts, at * d);
      else for (let r = 0; r < rows; r++) {
        this.rows.set(acts.subarray(r * d, (r + 1) * d), (at + r) * this.width);
        this.rows.set(targets.subarray(r * d, (r + 1) * d), (at + r) * this.width + d);
      }
      at += rows;
    }
    this.perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.perm[i] = i;
    new Rng(this.seed * 104729 + this.epoch * 65537 + group).shuffle(this.perm);
  }

  next(out: Float32Array, batch: number): void {
    const d = this.width;
    for (let r = 0; r < batch; r++) {
      while (this.row >= this.perm.length) {
        if (this.group + 1 < this.groups) this.loadGroup(this.group + 1);
        else {
          this.startEpoch(this.epoch + 1);
          this.loadGroup(0);
        }
      }
      const src = this.perm[this.row++]! * d;
      out.set(this.rows.subarray(src, src + d), r * d);
    }
  }

  state(): StoreSourceState {
    return { epoch: this.epoch, group: this.group, row: this.row };
  }

  restore(state: unknown): void {
    const s = state as StoreSourceState;
    if (!s || !Number.isSafeInteger(s.epoch) || !Number.isSafeInteger(s.group) || !Number.isSafeInteger(s.row) || s.group >= this.groups) {
      throw new Error(`cannot restore the activation stream of ${this.dir} from ${JSON.stringify(state)}`);
    }
    this.startEpoch(s.epoch);
    this.loadGroup(s.group);
    this.row = s.row;
  }

  describe(): Record<string, unknown> {
    const m = this.manifest;
    return {
      kind: "store", path: this.dir, model: m.model, hook: m.hook, ...(m.target_hook ? { target_hook: m.target_hook } : {}),
      ctx: m.ctx, tokens: m.tokens, dataset: m.dataset.spec,
    };
  }
}
