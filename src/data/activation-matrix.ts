/**
 * Activation matrices [N, d] from bytes already in hand (a file read from disk, a File a
 * user dropped on a web page): a .safetensors float tensor, a NumPy .npy array, or an Arrow
 * file's column of float vectors (one data-*.arrow file of a SAELens activation cache).
 * Every malformed or mismatched input is refused with an error naming it and the problem,
 * and non-finite values are refused before they can poison a training run.
 */
import { ArrowIpcFile } from "../core/arrow-ipc.js";
import { bytesSource } from "../core/byte-source.js";
import { parseNpy } from "../core/npy.js";
import { SafetensorsReader } from "../core/safetensors-format.js";
import type { Decompress } from "../core/parquet-pages.js";
import { ArrowArrayColumn, chooseFloatColumn } from "./arrow-column.js";
import { ParquetArrayColumn, chooseParquetFloatColumn, readParquetFooter } from "./parquet-column.js";
import { checkFinite } from "./source.js";

export interface ActivationMatrix {
  data: Float32Array;
  rows: number;
  d: number;
}

/** `name` picks the format by its extension and names the input in errors. */
export function activationsFromBytes(name: string, bytes: Uint8Array, tensor?: string): ActivationMatrix {
  let m: ActivationMatrix;
  if (name.endsWith(".safetensors")) m = matrixOfSafetensors(SafetensorsReader.fromBytes(bytes, name), tensor);
  else if (name.endsWith(".npy")) m = matrixOfNpy(bytes, name);
  else if (name.endsWith(".arrow") || name.endsWith(".feather")) m = matrixOfArrow(bytes, name, tensor);
  else if (name.endsWith(".parquet")) throw new Error(`${name}: a Parquet file is read by activationsFromParquetBytes (it loads its decoders first)`);
  else throw new Error(`${name}: unknown activation file type; use .safetensors, .npy, .arrow or .parquet`);
  checkFinite(m.data, name);
  return m;
}

/**
 * The named tensor of a safetensors file; else "activations" (a saekit store's shard),
 * else its only 2-D float tensor.
 */
export function matrixOfSafetensors(file: SafetensorsReader, name?: string): ActivationMatrix {
  const picked = chooseMatrix([...file.tensors.values()], name, file.path);
  const t = file.read(picked);
  return { data: t.data, rows: t.shape[0]!, d: t.shape[1]! };
}

/**
 * Which tensor of a file holds the activations: the one named (which must be there), else
 * "activations" (a saekit store's shard), else the file's only 2-D float tensor; it must be
 * [rows, d].
 */
export function chooseMatrix(tensors: ReadonlyArray<{ name: string; dtype: string; shape: readonly number[] }>, name: string | undefined,
  where: string): string {
  let pick = tensors.find((t) => t.name === (name ?? "activations"));
  if (name !== undefined && !pick) {
    const names = tensors.map((t) => t.name);
    throw new Error(`${where}: no tensor named "${name}" (has: ${names.slice(0, 20).join(", ")}${names.length > 20 ? ", ..." : ""})`);
  }
  if (!pick) {
    const matrices = tensors.filter((t) => ["F32", "F16", "BF16", "F64"].includes(t.dtype) && t.shape.length === 2);
    if (matrices.length !== 1) {
      throw new Error(`${where}: expected exactly one 2-D float tensor, found ${matrices.length} (${matrices.map((t) => t.name).join(", ") || "none"}); choose one with --tensor`);
    }
    pick = matrices[0]!;
  }
  if (pick.shape.length !== 2) throw new Error(`${where}: tensor "${pick.name}" has shape [${pick.shape.join(", ")}], expected [rows, d]`);
  return pick.name;
}

/** A 2-D float array in NumPy's format (core/npy.ts). */
export function matrixOfNpy(bytes: Uint8Array, where: string): ActivationMatrix {
  const { shape, data } = parseNpy(bytes, where);
  return { data, ...npyMatrixShape(shape, where) };
}

/** An .npy array's shape as [rows, d]; an error naming `where` for any other rank. */
export function npyMatrixShape(shape: readonly number[], where: string): { rows: number; d: number } {
  if (shape.length !== 2) throw new Error(`${where}: not a usable .npy file: shape (${shape.join(", ")}) is not [rows, d]`);
  return { rows: shape[0]!, d: shape[1]! };
}

/** Every vector of an Arrow file's float-vector column (the one named, else the only one), [vectors, d]. */
export function matrixOfArrow(bytes: Uint8Array, where: string, column?: string): ActivationMatrix {
  const file = ArrowIpcFile.open(bytesSource(bytes), where);
  const col = new ArrowArrayColumn(chooseFloatColumn(file.fields, column, where), "float", [file], [where]);
  const d = col.dims[col.dims.length - 1]!;
  const data = new Float32Array(file.rows * col.perRow);
  let at = 0;
  file.batches.forEach((b, batch) => {
    if (b.rows === 0) return;
    col.readFloats({ file: 0, batch, firstRow: 0, rows: b.rows }, data, at);
    at += b.rows * col.perRow;
  });
  return { data, rows: data.length / d, d };
}

/**
 * The activation vectors of a Parquet file in hand, such as a data file of a SAELens cache on
 * the hub: the column's vectors [rows, d] (`column`: default the only column of float
 * vectors), every row group in order. Asynchronous because hyparquet (its footer parser and
 * snappy) loads on first use. Uncompressed and snappy pages (what saekit's export and
 * pyarrow's defaults write) are read; `codecs` adds others (hyparquet-compressors' table has
 * gzip, zstd, brotli and lz4, which the Node reader uses; the explorer page leaves them out
 * to stay small).
 */
export async function activationsFromParquetBytes(name: string, bytes: Uint8Array, column?: string,
  codecs: Record<string, Decompress> = {}): Promise<ActivationMatrix> {
  const { parquetMetadata, snappyUncompress } = await import("hyparquet");
  const snappy: Decompress = (input, length) => {
    const out = new Uint8Array(length);
    snappyUncompress(input, out);
    return out;
  };
  const file = readParquetFooter(name, bytesSource(bytes), parquetMetadata);
  const values = new ParquetArrayColumn(chooseParquetFloatColumn(file, column, name), "float", [file], { SNAPPY: snappy, ...codecs });
  if (values.dims.length === 0) throw new Error(`${name}: column "${values.name}" holds single numbers, not vectors`);
  const d = values.dims[values.dims.length - 1]!;
  const rows = (Number(file.meta.num_rows) * values.perRow) / d;
  const data = new Float32Array(rows * d);
  let at = 0;
  for (const chunk of values.chunks()) {
    values.read(chunk, data, at);
    at += chunk.rows * values.perRow;
  }
  checkFinite(data, name);
  return { data, rows, d };
}
