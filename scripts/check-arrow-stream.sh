#!/bin/sh
# Writes SAELens activation caches with saekit's Arrow writer (float32 and float16 stores,
# a transcoder's two columns, an --exclude-bos store's ctx - 1 rows) and checks every .arrow
# file as pyarrow's reader would (native/check/arrow_verify.cc): FlatBuffers' verifier on each
# message against Arrow's own schema, aligned bodies and buffers, the end marker. Python's
# pyarrow is not installable here; this is the same check of the metadata without it.
# Needs Debian's flatbuffers-compiler and libflatbuffers-dev, a checkout (or copy) of Apache
# Arrow's format/ folder (Message.fbs, Schema.fbs, Tensor.fbs, SparseTensor.fbs), and the
# built package (npm ci). Usage: scripts/check-arrow-stream.sh ARROW_FORMAT_DIR
set -eu
format="${1:?usage: scripts/check-arrow-stream.sh ARROW_FORMAT_DIR (Apache Arrow's format/ folder)}"
command -v flatc >/dev/null || { echo "flatc not found: apt-get install -y flatbuffers-compiler libflatbuffers-dev" >&2; exit 2; }
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# --gen-all: one header with the types Message.fbs includes (Schema, Tensor, SparseTensor).
flatc --cpp --gen-all -o "$out" -I "$format" "$format/Message.fbs" 2>/dev/null
g++ -std=c++17 -O1 -I "$out" "$here/native/check/arrow_verify.cc" -o "$out/arrow_verify"
node --input-type=module - "$here" "$out" <<'JS'
const [here, out] = process.argv.slice(2);
const { writeManifest, writeShard, STORE_FORMAT } = await import(`${here}/dist/data/store.js`);
const { exportSaelensCache } = await import(`${here}/dist/data/saelens-cache.js`);
const stores = [
  { name: "f32", dtype: "F32", ctx: 16, rows: 16, target: false },
  { name: "f16-exclude-bos", dtype: "F16", ctx: 16, rows: 15, target: false },
  { name: "transcoder", dtype: "F32", ctx: 8, rows: 8, target: true },
];
let seed = 1;
const random = (n) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 4 - 2);
for (const s of stores) {
  const dir = `${out}/${s.name}`, d = 24, contexts = [7, 5];
  const shards = contexts.map((c, i) => ({ file: writeShard(dir, i, random(c * s.rows * d), d, s.dtype, Int32Array.from({ length: c * s.ctx }, (_, t) => t % 97), s.ctx,
    s.target ? random(c * s.rows * d) : undefined), rows: c * s.rows, contexts: c }));
  writeManifest(dir, {
    format: STORE_FORMAT, model: "check", hook: "blocks.0.hook_resid_post", ...(s.target ? { target_hook: "blocks.1.hook_resid_post" } : {}), d, ctx: s.ctx,
    dtype: s.dtype, prepend_bos: true, exclude_bos: s.rows < s.ctx, rows_per_context: s.rows, contexts_per_shard: 7, target_contexts: 12,
    dataset: { spec: "check", fingerprint: "check" }, shards, tokens: 12 * s.rows, complete: true,
  });
  exportSaelensCache(dir, `${out}/cache-${s.name}`, { batchContexts: 3, progress: false });
}
JS
ls "$out"/cache-*/data-*.arrow | xargs "$out/arrow_verify"
