/**
 * Dense twins of the code kernels (sparseDecode, sparseReconstruct, sparseRowDots,
 * sparseScatterRows) for codes so dense that GEMMs beat them: a ReLU or JumpReLU SAE fires
 * about half its latents per token when training starts, and the sparse kernels, which
 * gather one W_dec row per entry at memory speed, then run ~3.5x slower than the four
 * GEMMs a dense step (SAELens') does. Measured on the 2-core machine (d = 512 or 1024,
 * m = 2048 to 16384, batch 4096), a decode with its backward and the encoder's scatter
 * cost the same either way at a density (entries / (batch * m)) of 14-16%; sparse wins
 * below, 7x at 2%, and TopK codes are far below.
 *
 * Each twin works through the batch in blocks of rows, so its dense [rows, m] scratch
 * stays at 2^24 floats (64 MB) whatever the batch: the code is scattered into a dense
 * block F and the products run on it (x_hat = F W + bias, dL/dval = gathered from
 * G W^T, grad W += F^T G). Results equal the sparse kernels' up to float rounding, and
 * denseDecode and denseReconstruct make bit-identical x_hat, as their sparse pair does.
 */
import type { Kernels } from "../core/kernel-api.js";
import type { Workspace } from "../core/workspace.js";
import { nnz, type SparseCode } from "./sparse-code.js";

let denseFrom = 0.15;

/**
 * The density from which LinearSae's steps use these twins (default 0.15; 0: always,
 * Infinity: never, as the tests compare both ways). Returns the previous setting.
 */
export function setDenseCodeDensity(density: number): number {
  if (!(density >= 0)) throw new RangeError(`dense code density must be >= 0, got ${density}`);
  const previous = denseFrom;
  denseFrom = density;
  return previous;
}

/** Whether a code is dense enough for the GEMM twins. */
export function codeIsDense(code: SparseCode): boolean {
  return code.batch > 0 && nnz(code) >= denseFrom * code.batch * code.m;
}

/** Rows [b0, b0 + rows) of a code, re-based to start at entry 0 (e0 in the whole code). */
interface RowBlock {
  b0: number;
  rows: number;
  e0: number;
  rowPtr: Int32Array;
  idx: Int32Array;
  val: Float32Array;
}

const BLOCK_FLOATS = 1 << 24;

function* rowBlocks(ws: Workspace, code: SparseCode, blockFloats: number): Generator<RowBlock> {
  const step = Math.max(1, Math.floor(blockFloats / code.m));
  for (let b0 = 0; b0 < code.batch; b0 += step) {
    const rows = Math.min(step, code.batch - b0);
    const e0 = code.rowPtr[b0]!;
    const e1 = code.rowPtr[b0 + rows]!;
    const rowPtr = ws.int("dense_row_ptr", rows + 1);
    for (let r = 0; r <= rows; r++) rowPtr[r] = code.rowPtr[b0 + r]! - e0;
    yield { b0, rows, e0, rowPtr, idx: code.idx.subarray(e0, e1), val: code.val.subarray(e0, e1) };
  }
}

/** W [code.m, d], as every twin reads it (and writes its gradient). */
function checkRows(code: SparseCode, W: Float32Array, d: number): void {
  if (W.length !== code.m * d) throw new RangeError(`W holds ${W.length} values; a code over ${code.m} latents of width ${d} needs ${code.m * d}`);
}

/** F, the block's code as a dense [rows, m] matrix (in the workspace buffer "dense_f"). */
function denseBlock(k: Kernels, ws: Workspace, blk: RowBlock, m: number, val: Float32Array = blk.val): Float32Array {
  const F = ws.float("dense_f", blk.rows * m);
  k.scatterEntries(blk.rows, m, blk.rowPtr, blk.idx, val, F);
  return F;
}

/** out = F W (+ bias): the block's x_hat, the one way both decode and reconstruct form it. */
function decodeBlock(k: Kernels, F: Float32Array, rows: number, m: number, W: Float32Array, d: number,
  bias: Float32Array | null, out: Float32Array): void {
  k.sgemm(false, false, rows, d, m, 1, F, m, W, d, 0, out, d);
  if (bias) k.addRowVector(out, rows, d, bias);
}

/** sparseDecode's twin: out[b] = bias + sum_e val[e] W[idx[e]]. */
export function denseDecode(k: Kernels, ws: Workspace, code: SparseCode, W: Float32Array, d: number,
  bias: Float32Array | null, out: Float32Array, blockFloats = BLOCK_FLOATS): void {
  checkRows(code, W, d);
  for (const blk of rowBlocks(ws, code, blockFloats)) {
    const F = denseBlock(k, ws, blk, code.m);
    decodeBlock(k, F, blk.rows, code.m, W, d, bias, out.subarray(blk.b0 * d, (blk.b0 + blk.rows) * d));
  }
}

/**
 * sparseReconstruct's twin: x_hat, g = scale (x_hat - x), gVal[e] = g[b(e)] . W[idx[e]],
 * and gW (+)= sum val[e] g[b(e)] into W's rows (every row written when not accumulating).
 * Returns sum (x_hat - x)^2.
 */
export function denseReconstruct(k: Kernels, ws: Workspace, code: SparseCode, W: Float32Array, d: number,
  bias: Float32Array | null, x: Float32Array, scale: number, xHat: Float32Array, g: Float32Array,
  gVal: Float32Array, gW: Float32Array | null, accumulate: boolean, blockFloats = BLOCK_FLOATS): number {
  checkRows(code, W, d);
  const m = code.m;
  let sumSq = 0;
  let first = true;
  for (const blk of rowBlocks(ws, code, blockFloats)) {
    const rowsAt = (a: Float32Array) => a.subarray(blk.b0 * d, (blk.b0 + blk.rows) * d);
    const F = denseBlock(k, ws, blk, m);
    const xHatBlk = rowsAt(xHat);
    const gBlk = rowsAt(g);
    decodeBlock(k, F, blk.rows, m, W, d, bias, xHatBlk);
    sumSq += k.diffScaled(xHatBlk, rowsAt(x), gBlk, scale);
    if (gW) k.sgemm(true, false, m, d, blk.rows, 1, F, m, gBlk, d, first && !accumulate ? 0 : 1, gW, d);
    first = false;
    const G = ws.float("dense_g", blk.rows * m);
    k.sgemm(false, true, blk.rows, m, d, 1, gBlk, d, W, d, 0, G, m);
    k.gatherEntries(G, blk.rows, m, blk.rowPtr, blk.idx, gVal.subarray(blk.e0));
  }
  if (gW && first && !accumulate) gW.fill(0);
  return sumSq;
}

/** sparseRowDots' twin: out[e] = G[b(e)] . W[idx[e]]. */
export function denseRowDots(k: Kernels, ws: Workspace, code: SparseCode, G: Float32Array, W: Float32Array,
  d: number, out: Float32Array, blockFloats = BLOCK_FLOATS): void {
  checkRows(code, W, d);
  const m = code.m;
  for (const blk of rowBlocks(ws, code, blockFloats)) {
    const dots = ws.float("dense_g", blk.rows * m);
    k.sgemm(false, true, blk.rows, m, d, 1, G.subarray(blk.b0 * d), d, W, d, 0, dots, m);
    k.gatherEntries(dots, blk.rows, m, blk.rowPtr, blk.idx, out.subarray(blk.e0));
  }
}

/**
 * sparseScatterRows' twin, taking the code itself instead of its transpose: out[r] (+)=
 * sum over latent r's entries of coef[e] X[b(e)] (X [batch, d], out [m, d]) and outBias[r]
 * (+)= sum coef[e] (when outBias is given).
 */
export function denseScatterRows(k: Kernels, ws: Workspace, code: SparseCode, coef: Float32Array, X: Float32Array,
  d: number, accumulate: boolean, out: Float32Array, outBias: Float32Array | null,
  blockFloats = BLOCK_FLOATS): void {
  checkRows(code, out, d);
  const m = code.m;
  let first = true;
  for (const blk of rowBlocks(ws, code, blockFloats)) {
    const F = denseBlock(k, ws, blk, m, coef.subarray(blk.e0));
    const add = !first || accumulate;
    k.sgemm(true, false, m, d, blk.rows, 1, F, m, X.subarray(blk.b0 * d), d, add ? 1 : 0, out, d);
    if (outBias) k.colSums(F, blk.rows, m, outBias, add);
    first = false;
  }
  if (first && !accumulate) {
    out.fill(0);
    outBias?.fill(0);
  }
}
