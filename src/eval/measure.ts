/**
 * An SAE's reconstruction and sparsity on stored activations, without a model: SAEBench's
 * core metrics short of the CE loss and KL (which need the model, eval/splice.ts). On a
 * source that pairs inputs with targets (a transcoder's store) the reconstruction is
 * measured against the targets.
 */
import { type ActivationSource, checkFinite, rowWidth, splitPairs } from "../data/source.js";
import { type Sae, workingBytes } from "../sae/sae.js";
import { loadInGroups } from "../util/load-groups.js";
import { ReconstructionMetrics, SparsityMetrics } from "./metrics.js";

export interface MeasureResult {
  rows: number;
  reconstruction: ReturnType<ReconstructionMetrics["result"]>;
  sparsity: ReturnType<SparsityMetrics["result"]>;
}

/**
 * Reads `rows` rows from `source` (moving it), `batch` at a time, and measures the SAE on
 * them: at most one pass over a source of fixed rows, so none is counted twice.
 */
export function measureSae(sae: Sae, source: ActivationSource, asked: number, batch = 4096): MeasureResult {
  return measureSaes([sae], source, asked, batch)[0]!;
}

/**
 * measureSae for several SAEs of one input width on the same rows, each batch read once:
 * the snapshots of one run (saveSteps), say, or a sweep's SAEs.
 */
export function measureSaes(saes: Sae[], source: ActivationSource, asked: number, batch = 4096): MeasureResult[] {
  if (saes.length === 0) throw new RangeError("no SAEs to measure");
  const d = saes[0]!.cfg.d_in;
  for (const sae of saes) {
    if (sae.cfg.d_in !== d) throw new RangeError(`SAEs measured together read activations of one width: ${d} and ${sae.cfg.d_in}`);
  }
  if (source.d !== d) throw new RangeError(`the SAE reads ${d}-dim activations, the data has ${source.d}`);
  if (source.dTarget !== undefined && source.dTarget !== d) throw new RangeError(`the targets are ${source.dTarget}-dim, the SAE predicts ${d}`);
  if (!Number.isSafeInteger(asked) || asked < 1) throw new RangeError(`rows must be a positive integer, got ${asked}`);
  const rows = Math.min(asked, source.totalRows ?? asked);
  const metrics = saes.map((sae) => ({ rec: new ReconstructionMetrics(d), sparsity: new SparsityMetrics(sae.cfg.d_sae) }));
  const B = Math.min(batch, rows);
  const buf = new Float32Array(B * rowWidth(source));
  const x = source.dTarget ? new Float32Array(B * d) : buf;
  const y = source.dTarget ? new Float32Array(B * d) : buf;
  for (let done = 0; done < rows; done += B) {
    const n = Math.min(B, rows - done);
    source.next(buf, n);
    if (source.dTarget) splitPairs(buf, n, d, d, x, y);
    checkFinite(x.subarray(0, n * d), "the activations");
    if (source.dTarget) checkFinite(y.subarray(0, n * d), "the targets");
    saes.forEach((sae, i) => {
      const code = sae.encode(x, n);
      metrics[i]!.sparsity.add(code);
      metrics[i]!.rec.add(y, sae.decode(code, x), n);
    });
  }
  return metrics.map((m) => ({ rows, reconstruction: m.rec.result(), sparsity: m.sparsity.result() }));
}

/**
 * measureSaes for more SAEs than memory holds at once (a folder of snapshots, a sweep of
 * wide SAEs): `load` gives them one at a time, and they are measured in groups that fit
 * `memory` bytes (workingBytes), each group on rows read afresh from `openSource()`, which
 * must give the same rows every time (a store at a fixed seed, a file). Results in index order.
 */
export async function measureSaesWithin(count: number, load: (index: number) => Promise<Sae>,
  openSource: () => Promise<ActivationSource>, asked: number, memory: number, batch = 4096): Promise<MeasureResult[]> {
  const results: MeasureResult[] = [];
  const groups = loadInGroups(count, load, (sae) => workingBytes(sae, Math.min(batch, asked)), memory);
  for await (const group of groups) results.push(...measureSaes(group, await openSource(), asked, batch));
  return results;
}
