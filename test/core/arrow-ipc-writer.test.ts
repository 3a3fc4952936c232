/**
 * saekit's Arrow IPC stream writer, read back by Apache Arrow's own JavaScript library (an
 * independent reader: types, metadata, values) and by saekit's reader; and the FlatBuffers
 * under it laid out as FlatBuffers' verifier demands (every scalar aligned, every offset
 * forward and inside the buffer).
 */
import { tableFromIPC } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { type ArrowField, ArrowIpcFile } from "../../src/core/arrow-ipc.js";
import { arrowStream, type DenseColumn } from "../../src/core/arrow-ipc-writer.js";
import { bytesSource } from "../../src/core/byte-source.js";
import { concatBytes } from "../../src/core/bytes.js";
import { buildFlatBuffer, flat } from "../../src/core/flatbuffer-builder.js";
import { FlatTable } from "../../src/core/flatbuffer.js";

function field(name: string, type: ArrowField["type"], children: ArrowField[] = [], metadata: Record<string, string> = {}): ArrowField {
  return { name, type, nullable: true, children, metadata, dictionary: false };
}

const float32 = (): ArrowField => field("item", { name: "FloatingPoint", bitWidth: 32 });
const listOf = (child: ArrowField): ArrowField => field("item", { name: "List" }, [child]);

/** A [rows, ctx, d] float32 column as datasets stores Array2D, and a [rows, ctx] int32 FixedSizeList. */
function columns(ctx: number, d: number) {
  const acts = field("blocks.0.hook_resid_post", { name: "List" }, [listOf(float32())], {
    "ARROW:extension:name": "datasets.features.features.Array2DExtensionType",
    "ARROW:extension:metadata": `[[${ctx}, ${d}], "float32"]`,
  });
  const tokens = field("token_ids", { name: "FixedSizeList", listSize: ctx }, [field("item", { name: "Int", bitWidth: 32, signed: true })]);
  return { acts, tokens };
}

function batch(acts: ArrowField, tokens: ArrowField, first: number, rows: number, ctx: number, d: number): { rows: number; columns: DenseColumn[]; values: Float32Array; ids: Int32Array } {
  const values = Float32Array.from({ length: rows * ctx * d }, (_, i) => (first * ctx * d + i) * 0.5 - 3);
  const ids = Int32Array.from({ length: rows * ctx }, (_, i) => first * ctx + i);
  return {
    rows, values, ids,
    columns: [
      { field: acts, dims: [ctx, d], values: new Uint8Array(values.buffer) },
      { field: tokens, dims: [ctx], values: new Uint8Array(ids.buffer) },
    ],
  };
}

describe("Arrow IPC stream writer", () => {
  it("writes a stream Apache Arrow's library reads back: schema, metadata, nested values, several batches", () => {
    const ctx = 3;
    const d = 5;
    const { acts, tokens } = columns(ctx, d);
    const batches = [batch(acts, tokens, 0, 4, ctx, d), batch(acts, tokens, 4, 3, ctx, d)];
    const bytes = concatBytes([...arrowStream([acts, tokens], { huggingface: "{\"info\": {}}" }, batches)]);
    const table = tableFromIPC(bytes);
    expect(table.numRows).toBe(7);
    expect(table.batches.map((b) => b.numRows)).toEqual([4, 3]);
    expect(table.schema.metadata.get("huggingface")).toBe("{\"info\": {}}");
    const a = table.schema.fields[0]!;
    expect(a.name).toBe("blocks.0.hook_resid_post");
    expect(a.metadata.get("ARROW:extension:metadata")).toBe("[[3, 5], \"float32\"]");
    expect(String(a.type)).toBe("List<List<Float32>>");
    expect(String(table.schema.fields[1]!.type)).toBe("FixedSizeList[3]<Int32>");
    // Row 5 (the second batch's second row), context position 2, component 4.
    const row = table.getChild("blocks.0.hook_resid_post")!.get(5)!;
    expect(row.get(2).get(4)).toBe(batches[1]!.values[(1 * ctx + 2) * d + 4]);
    const allValues = table.batches.flatMap((b) => [...b.getChildAt(0)!.data[0]!.children[0]!.children[0]!.values as Float32Array]);
    expect(allValues).toEqual([...batches[0]!.values, ...batches[1]!.values]);
    expect([...table.getChild("token_ids")!.get(6)!]).toEqual([18, 19, 20]);
  });

  it("writes what saekit's reader reads: fields, metadata and each buffer where the format puts it", () => {
    const { acts, tokens } = columns(2, 3);
    const b = batch(acts, tokens, 0, 5, 2, 3);
    const file = ArrowIpcFile.open(bytesSource(concatBytes([...arrowStream([acts, tokens], {}, [b])])), "mem");
    expect(file.fields.map((f) => [f.name, f.type, f.metadata])).toEqual([[acts.name, acts.type, acts.metadata], [tokens.name, tokens.type, {}]]);
    expect(file.rows).toBe(5);
    const rb = file.batches[0]!;
    // outer list, inner list, floats; fixed list, ints.
    expect(rb.nodes).toEqual([{ length: 5, nullCount: 0 }, { length: 10, nullCount: 0 }, { length: 30, nullCount: 0 }, { length: 5, nullCount: 0 }, { length: 10, nullCount: 0 }]);
    expect(rb.buffers.map((x) => x.length)).toEqual([0, 24, 0, 44, 0, 120, 0, 0, 40]);
    for (const x of rb.buffers) expect(x.offset % 8).toBe(0);
    expect(new Int32Array(file.readBuffer(rb, 3, 0, 44).slice().buffer)).toEqual(Int32Array.from({ length: 11 }, (_, i) => i * 3));
    expect(new Float32Array(file.readBuffer(rb, 5, 0, 120).slice().buffer)).toEqual(b.values);
    expect(new Int32Array(file.readBuffer(rb, 8, 0, 40).slice().buffer)).toEqual(b.ids);
  });

  it("refuses columns that do not match their field", () => {
    const { acts, tokens } = columns(2, 3);
    const b = batch(acts, tokens, 0, 2, 2, 3);
    const short = { rows: 2, columns: [{ ...b.columns[0]!, values: b.columns[0]!.values.subarray(4) }, b.columns[1]!] };
    expect(() => [...arrowStream([acts, tokens], {}, [short])]).toThrow(/blocks\.0\.hook_resid_post: 44 bytes of values, 2 rows of \[2, 3\] need 48/);
    const wrongFixed = { rows: 2, columns: [b.columns[0]!, { ...b.columns[1]!, dims: [3] }] };
    expect(() => [...arrowStream([acts, tokens], {}, [wrongFixed])]).toThrow(/token_ids: fixed lists of 2, rows of 3/);
    expect(() => [...arrowStream([acts, tokens], {}, [{ rows: 2, columns: [b.columns[1]!, b.columns[0]!] }])]).toThrow(/schema's fields, in order/);
  });
});

describe("FlatBuffers builder", () => {
  it("lays out tables, strings and vectors aligned, with forward offsets, as the reader follows them", () => {
    const bytes = buildFlatBuffer(flat.table(
      flat.u8(7),
      flat.i64(-5_000_000_000),
      flat.string("héllo"),
      undefined,
      flat.tables([flat.table(flat.i16(-3), flat.bool(true)), flat.table()]),
      flat.int64Structs([[1, 2], [3, 2 ** 40]], 2),
      flat.i32(123456),
    ));
    const root = FlatTable.root(bytes, (why) => { throw new Error(why); });
    expect(root.uint8(0)).toBe(7);
    expect(root.int64(1)).toBe(-5_000_000_000);
    expect(root.string(2)).toBe("héllo");
    expect(root.table(3)).toBeNull();
    const [a, b] = root.tables(4);
    expect([a!.int16(0), a!.bool(1), b!.int16(0, 9), b!.bool(1)]).toEqual([-3, true, 9, false]);
    expect(root.structs(5, 16, (i64) => [i64(0), i64(8)])).toEqual([[1, 2], [3, 2 ** 40]]);
    expect(root.int32(6)).toBe(123456);
    // The verifier's alignment: the root table's int64 and the struct vector's elements on multiples of 8.
    const view = new DataView(bytes.buffer);
    const rootAt = view.getUint32(0, true);
    const vtable = rootAt - view.getInt32(rootAt, true);
    expect((rootAt + view.getUint16(vtable + 4 + 2 * 1, true)) % 8).toBe(0);
    const slot = rootAt + view.getUint16(vtable + 4 + 2 * 5, true);
    const vector = slot + view.getUint32(slot, true);
    expect(vector > slot && (vector + 4) % 8 === 0).toBe(true);
  });
});
