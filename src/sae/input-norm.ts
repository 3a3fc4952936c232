/**
 * Per-token input normalisation around an SAE, as SAELens runs it for SAEs whose cfg.json
 * says normalize_activations "constant_norm_rescale" (Anthropic's February update) or
 * "layer_norm" (OpenAI's GPT-2 SAEs): the SAE encodes a normalised token and its output is
 * mapped back to the token's own scale and offset.
 *
 *   constant_norm_rescale:  in  x' = x * sqrt(d) / ||x||       out  y = y' * ||x|| / sqrt(d)
 *   layer_norm:             in  x' = (x - mu) / (std + 1e-5)   out  y = y' * std + mu
 *
 * where mu and std are the token's mean and standard deviation over its d values, std with
 * Bessel's correction (torch's x.std). The way out multiplies by std, not std + 1e-5, as
 * SAELens does. Unlike SAELens, which keeps the last encode's statistics on the module,
 * decode recomputes them from the input it is given, so an encode and a decode need not
 * follow each other.
 */

export const INPUT_NORMALIZATIONS = ["none", "constant_norm_rescale", "layer_norm"] as const;
export type InputNormalization = (typeof INPUT_NORMALIZATIONS)[number];

const LAYER_NORM_EPS = 1e-5;

/** Each row's output scale and shift: y = y' * scale + shift. */
export interface RowStats {
  scale: Float32Array;
  shift: Float32Array;
}

/** The statistics of each of `rows` rows of x [rows, d] for a normalisation (not "none"). */
export function rowStats(mode: InputNormalization, x: Float32Array, rows: number, d: number): RowStats {
  const scale = new Float32Array(rows);
  const shift = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    if (mode === "constant_norm_rescale") {
      let ss = 0;
      for (let c = 0; c < d; c++) ss += x[o + c]! * x[o + c]!;
      scale[r] = Math.sqrt(ss) / Math.sqrt(d);
    } else {
      let sum = 0;
      for (let c = 0; c < d; c++) sum += x[o + c]!;
      const mu = Math.fround(sum / d);
      let ss = 0;
      for (let c = 0; c < d; c++) {
        const v = Math.fround(x[o + c]! - mu);
        ss += v * v;
      }
      shift[r] = mu;
      scale[r] = Math.sqrt(ss / Math.max(1, d - 1));
    }
  }
  return { scale, shift };
}

/** x' [rows, d] into `out`: the rows normalised with their statistics. */
export function normalizeRows(mode: InputNormalization, x: Float32Array, rows: number, d: number, stats: RowStats,
  out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d, mu = stats.shift[r]!;
    // A zero row stays zero rather than becoming 0 / 0.
    const s = stats.scale[r]!;
    const inv = mode === "layer_norm" ? 1 / (s + LAYER_NORM_EPS) : s > 0 ? 1 / s : 0;
    for (let c = 0; c < d; c++) out[o + c] = (x[o + c]! - mu) * inv;
  }
}

/** y = y' * scale + shift, in place, row by row. */
export function denormalizeRows(y: Float32Array, rows: number, d: number, stats: RowStats): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d, s = stats.scale[r]!, mu = stats.shift[r]!;
    for (let c = 0; c < d; c++) y[o + c] = y[o + c]! * s + mu;
  }
}
