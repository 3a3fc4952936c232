/**
 * A shuffled stream of activation rows from a store, for training: its shards mixed in a
 * buffer and exactly resumable (mixed-source.ts). A store harvested with a target hook
 * serves each row with its target, [x | y]. Rows of excluded tokens (token-filter.ts) are
 * left out, found through the token contexts each shard keeps.
 */
import { MixedSource } from "./mixed-source.js";
import { type StoreManifest, readManifest, readShardActivations, readShardRowTokens, readShardTargets } from "./store.js";

export class StoreSource extends MixedSource {
  readonly d: number;
  readonly dTarget?: number;
  readonly manifest: StoreManifest;
  readonly totalRows: number;

  /**
   * bufferRows: about how many rows are mixed at a time (whole shards); excludeTokens: token
   * ids whose rows are left out.
   */
  constructor(readonly dir: string, seed = 0, bufferRows = 1 << 18, excludeTokens: readonly number[] = []) {
    const manifest = readManifest(dir);
    if (manifest.shards.length === 0) throw new Error(`${dir}: the activation store has no shards yet`);
    const shardRows = Math.max(1, manifest.shards[0]!.rows);
    super(seed, manifest.shards.length, Math.max(1, Math.min(manifest.shards.length, Math.round(bufferRows / shardRows))));
    this.manifest = manifest;
    this.excluded = new Set(excludeTokens);
    this.totalRows = this.rowsKept(manifest.shards.reduce((a, s) => a + s.rows, 0));
    this.d = manifest.d;
    if (manifest.target_hook) this.dTarget = manifest.d;
    this.begin();
  }

  protected loadRows(shards: number[], reuse: Float32Array): Float32Array {
    const d = this.d;
    const width = d + (this.dTarget ?? 0);
    const n = shards.reduce((a, s) => a + this.manifest.shards[s]!.rows, 0);
    const out = MixedSource.rowsBuffer(reuse, n * width);
    let at = 0;
    for (const s of shards) {
      const rows = this.manifest.shards[s]!.rows;
      if (!this.dTarget) {
        // Straight from the file into the buffer.
        readShardActivations(this.dir, this.manifest, s, out.subarray(at * d, (at + rows) * d));
        at += rows;
        continue;
      }
      const acts = readShardActivations(this.dir, this.manifest, s);
      const targets = readShardTargets(this.dir, this.manifest, s);
      for (let r = 0; r < rows; r++) {
        out.set(acts.subarray(r * d, (r + 1) * d), (at + r) * width);
        out.set(targets.subarray(r * d, (r + 1) * d), (at + r) * width + d);
      }
      at += rows;
    }
    return out;
  }

  /** The token at each of a shard's rows: its contexts' positions, less those the harvest left out. */
  protected override unitTokens(shard: number): Int32Array {
    return readShardRowTokens(this.dir, this.manifest, shard);
  }

  protected where(): string {
    return this.dir;
  }

  describe(): Record<string, unknown> {
    const m = this.manifest;
    return {
      kind: "store", path: this.dir, model: m.model, hook: m.hook, ...(m.target_hook ? { target_hook: m.target_hook } : {}),
      ctx: m.ctx, tokens: m.tokens, dataset: m.dataset.spec, ...(this.excluded.size > 0 ? { exclude_tokens: [...this.excluded], rows: this.totalRows } : {}),
    };
  }
}
