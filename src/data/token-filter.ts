/**
 * Leaving chosen tokens' activations out of training, as SAELens' exclude_special_tokens and
 * sparsify's exclude_tokens do: activations exist (stored, or computed) for every position,
 * and a source drops the rows whose token is excluded as it fills its mixing buffer. BOS
 * (at the start of every context, and between documents where it separates them) is the
 * usual one: its residual norm is often many times the others'.
 */

/**
 * The rows [n, width] whose token (rowTokens[r]) is not excluded, moved up in place: a view
 * of the first kept rows of `rows`.
 */
export function keepRows(rows: Float32Array, width: number, rowTokens: Int32Array, excluded: ReadonlySet<number>): Float32Array {
  if (excluded.size === 0) return rows;
  let kept = 0;
  for (let r = 0; r < rowTokens.length; r++) {
    if (excluded.has(rowTokens[r]!)) continue;
    if (kept !== r) rows.copyWithin(kept * width, r * width, (r + 1) * width);
    kept++;
  }
  return rows.subarray(0, kept * width);
}

/** How many of these tokens are not excluded. */
export function countKept(tokens: ArrayLike<number>, excluded: ReadonlySet<number>): number {
  let kept = 0;
  for (let i = 0; i < tokens.length; i++) if (!excluded.has(tokens[i]!)) kept++;
  return kept;
}

/**
 * The positions of a batch of n contexts of T tokens that are kept: every one from `first`
 * on (1 leaves each context's BOS out) whose token is not excluded, as flat indices
 * b * T + t in order, each with its context's index in the batch. What a splice replaces
 * and a dashboard reads.
 */
export function keptPositions(tokens: Int32Array, n: number, T: number, first: number, excluded: ReadonlySet<number>):
  { rows: Int32Array; promptOf: Int32Array } {
  const rows: number[] = [];
  const promptOf: number[] = [];
  for (let b = 0; b < n; b++) {
    for (let t = first; t < T; t++) {
      if (excluded.has(tokens[b * T + t]!)) continue;
      rows.push(b * T + t);
      promptOf.push(b);
    }
  }
  return { rows: Int32Array.from(rows), promptOf: Int32Array.from(promptOf) };
}

/** Refuses an exclusion that leaves nothing to train on, naming the source. */
export function checkSomethingKept(kept: number, excluded: ReadonlySet<number>, where: string): void {
  if (kept === 0) throw new Error(`${where}: every position holds an excluded token (${[...excluded].join(", ")}); nothing is left to train on`);
}
