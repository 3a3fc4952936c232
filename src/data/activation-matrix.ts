/**
 * Activation matrices [N, d] from bytes already in hand (a file read from disk, a File a
 * user dropped on a web page): a .safetensors float tensor or a NumPy .npy array. Every
 * malformed or mismatched input is refused with an error naming it and the problem, and
 * non-finite values are refused before they can poison a training run.
 */
import { parseNpy } from "../core/npy.js";
import { SafetensorsReader } from "../core/safetensors-format.js";
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
  else throw new Error(`${name}: unknown activation file type; use .safetensors or .npy`);
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
