/**
 * The per-row TopK of the TypeScript kernels: the same selection and order as the reference
 * twin (key descending, ties to the lower index, NaN last; kernel-api.ts), without sorting
 * whole rows. A bounded heap holds the best k seen so far with its worst entry on top; since
 * a row is scanned by ascending index, a later entry displaces the worst only with a
 * strictly larger key, so most entries cost one comparison. The k survivors are then put in
 * rank order.
 */
import { SelectMode } from "./kernel-api.js";
import { selectKey, selectOutput } from "./reference.js";

export function topkRowsHeap(x: Float32Array, batch: number, m: number, k: number, mode: SelectMode,
  bias: Float32Array | null, vals: Float32Array, idx: Int32Array): void {
  if (k > m) throw new RangeError("topk: k must be <= m");
  if (x.length < batch * m) throw new RangeError(`x has ${x.length} elements, needs ${batch * m}`);
  const heapKey = new Float64Array(k);
  const heapIdx = new Int32Array(k);
  const value = new Float32Array(1); // rounds x + bias to float32, as the reference's row buffer does
  const order = Array.from({ length: k }, (_, i) => i);
  // a is worse than b: smaller key, or the same key at a higher index.
  const worse = (ka: number, ia: number, kb: number, ib: number) => ka < kb || (ka === kb && ia > ib);

  for (let b = 0; b < batch; b++) {
    const row = b * m;
    let size = 0;
    for (let j = 0; j < m; j++) {
      value[0] = x[row + j]! + (bias ? bias[j]! : 0);
      const key = selectKey(value[0]!, mode);
      if (size < k) {
        // Sift up: the worst entry rises to the top.
        let i = size++;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (!worse(key, j, heapKey[parent]!, heapIdx[parent]!)) break;
          heapKey[i] = heapKey[parent]!;
          heapIdx[i] = heapIdx[parent]!;
          i = parent;
        }
        heapKey[i] = key;
        heapIdx[i] = j;
      } else if (key > heapKey[0]!) {
        // Replace the worst and sift it down.
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= k) break;
          const r = l + 1;
          const child = r < k && worse(heapKey[r]!, heapIdx[r]!, heapKey[l]!, heapIdx[l]!) ? r : l;
          if (!worse(heapKey[child]!, heapIdx[child]!, key, j)) break;
          heapKey[i] = heapKey[child]!;
          heapIdx[i] = heapIdx[child]!;
          i = child;
        }
        heapKey[i] = key;
        heapIdx[i] = j;
      }
    }
    for (let i = 0; i < k; i++) order[i] = i;
    order.sort((p, q) => (heapKey[q]! - heapKey[p]!) || (heapIdx[p]! - heapIdx[q]!));
    for (let i = 0; i < k; i++) {
      const j = heapIdx[order[i]!]!;
      idx[b * k + i] = j;
      value[0] = x[row + j]! + (bias ? bias[j]! : 0);
      vals[b * k + i] = selectOutput(value[0]!, mode);
    }
  }
}
