/**
 * Arrow files for the tests, written by Apache Arrow's own JavaScript library (a writer
 * independent of saekit's reader): activation columns laid out as Hugging Face `datasets`
 * stores an Array2D feature (list<list<float>> with its extension metadata), beside the
 * columns a SAELens cache has (token_ids), and saved as `Dataset.save_to_disk` does.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Data, type DataType, Field, FixedSizeList, Float16, Float32, Float64, Int32, LargeList, List, makeData, RecordBatch, Schema, Struct,
  Table, tableToIPC, Utf8, vectorFromArray,
} from "apache-arrow";
import { f32ToF16Bits } from "../../src/core/dtype.js";

export interface ActivationTableSpec {
  /** Column name (SAELens: the hook name). */
  name: string;
  /** Row-major values [rows, ...dims]. */
  values: Float32Array;
  rows: number;
  /** One dataset row's shape: [ctx, d] (Array2D), or [d]. */
  dims: number[];
  float?: 16 | 32 | 64;
  /** How each dimension is stored: variable lists (as datasets does), 64-bit-offset lists, or fixed-size lists. */
  storage?: "list" | "large" | "fixed";
  /** Dataset rows per record batch. */
  batchRows?: number;
  /** Add SAELens' token_ids column (after the activations) and a text column (before them). */
  otherColumns?: boolean;
}

export function activationTable(spec: ActivationTableSpec): Table {
  const perRow = spec.dims.reduce((a, b) => a * b, 1);
  const batchRows = spec.batchRows ?? spec.rows;
  let schema: Schema | null = null;
  const batches: RecordBatch[] = [];
  for (let first = 0; first < spec.rows; first += batchRows) {
    const rows = Math.min(batchRows, spec.rows - first);
    const data = nestedFloats(spec, spec.values.subarray(first * perRow, (first + rows) * perRow), rows);
    const fields: Field[] = [new Field(spec.name, data.type, true, new Map([
      ["ARROW:extension:name", `datasets.features.features.Array${spec.dims.length}DExtensionType`],
      ["ARROW:extension:metadata", JSON.stringify([spec.dims, floatName(spec.float ?? 32)])],
    ]))];
    const children: Data[] = [data];
    if (spec.otherColumns) {
      const ctx = spec.dims.length > 1 ? spec.dims[0]! : 1;
      const tokens = makeData({ type: new Int32(), length: rows * ctx, data: Int32Array.from({ length: rows * ctx }, (_, i) => first * ctx + i) });
      const tokenType = new FixedSizeList(ctx, new Field("item", new Int32(), true));
      fields.unshift(new Field("text", new Utf8(), true));
      children.unshift(vectorFromArray(Array.from({ length: rows }, (_, i) => `context ${first + i}`), new Utf8()).data[0]! as Data);
      fields.push(new Field("token_ids", tokenType, true));
      children.push(makeData({ type: tokenType, length: rows, child: tokens }));
    }
    schema ??= new Schema(fields, new Map([["huggingface", JSON.stringify({ info: { features: {} } })]]));
    batches.push(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children })));
  }
  return new Table(batches);
}

/** The values as the column's nested lists, innermost (the vectors) first. */
function nestedFloats(spec: ActivationTableSpec, values: Float32Array, rows: number): Data {
  const float = spec.float ?? 32;
  let data: Data = float === 16
    ? makeData({ type: new Float16(), length: values.length, data: Uint16Array.from(values, f32ToF16Bits) })
    : float === 64
      ? makeData({ type: new Float64(), length: values.length, data: Float64Array.from(values) })
      : makeData({ type: new Float32(), length: values.length, data: values });
  let count = values.length;
  for (let level = spec.dims.length - 1; level >= 0; level--) {
    const size = spec.dims[level]!;
    count /= size;
    const child = new Field("item", data.type as DataType, true);
    const storage = spec.storage ?? "list";
    if (storage === "fixed") data = makeData({ type: new FixedSizeList(size, child), length: count, child: data });
    else if (storage === "large") {
      data = makeData({ type: new LargeList(child), length: count, valueOffsets: BigInt64Array.from({ length: count + 1 }, (_, i) => BigInt(i * size)), child: data });
    } else data = makeData({ type: new List(child), length: count, valueOffsets: Int32Array.from({ length: count + 1 }, (_, i) => i * size), child: data });
  }
  if (count !== rows) throw new Error("dims do not match the values");
  return data;
}

function floatName(bits: 16 | 32 | 64): string {
  return `float${bits}`;
}

/**
 * A table saved as `Dataset.save_to_disk` saves one: its record batches spread over `files`
 * data-NNNNN-of-NNNNN.arrow files (IPC streams), a state.json listing them and a
 * dataset_info.json describing the features.
 */
export function writeHfDataset(dir: string, table: Table, files = 1, features: Record<string, unknown> = {}): string[] {
  const names: string[] = [];
  const perFile = Math.ceil(table.batches.length / files);
  for (let f = 0; f < files; f++) {
    const name = `data-${String(f).padStart(5, "0")}-of-${String(files).padStart(5, "0")}.arrow`;
    writeFileSync(join(dir, name), tableToIPC(new Table(table.batches.slice(f * perFile, (f + 1) * perFile)), "stream"));
    names.push(name);
  }
  writeFileSync(join(dir, "state.json"), JSON.stringify({
    _data_files: names.map((filename) => ({ filename })), _fingerprint: "0123456789abcdef", _format_columns: null,
    _format_kwargs: {}, _format_type: null, _output_all_columns: false, _split: null,
  }, null, 2));
  writeFileSync(join(dir, "dataset_info.json"), JSON.stringify({ citation: "", description: "", features, homepage: "", license: "" }, null, 2));
  return names.map((n) => join(dir, n));
}
