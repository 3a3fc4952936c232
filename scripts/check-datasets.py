#!/usr/bin/env python3
"""Checks saekit's files against the Python libraries that read and write them for SAELens users.

Each way across:
- What saekit writes, read by Python: an activation store's shards by `safetensors`; the
  SAELens caches `saekit export-cache` writes by `datasets.load_from_disk` (Arrow) and
  `datasets.load_dataset("parquet")` (--format parquet, as pushed to the hub), features
  and values; a pretokenized dataset (`saekit pretokenize`) by pyarrow. Stores of float32
  and float16 activations, one harvested with --exclude-bos, and a transcoder's.
- What Python writes, read by saekit: activation caches saved by `datasets`
  (Dataset.save_to_disk) and Parquet files written by pyarrow with every codec it offers
  (none, snappy, gzip, brotli, zstd, lz4), V1 and V2 data pages, dictionary and
  BYTE_STREAM_SPLIT encodings; text datasets as Parquet (dictionary-encoded strings,
  nulls) and Arrow; pretokenized datasets (input_ids, int64 or int32); activation matrices
  saved by numpy (.npy), safetensors and torch.save (float16, bfloat16, float64 too), and a
  big-endian .npy refused by name.
- An SAE `saekit train` writes, read by `safetensors` in SAELens' layout.
Every value is compared exactly; the script fails on any difference or on any file one
side cannot read.

Needs a Python with datasets, pyarrow, safetensors, numpy and torch (python3 -m venv /tmp/hf &&
/tmp/hf/bin/pip install datasets pyarrow safetensors numpy torch), a built checkout (npm ci) and
../shared/data (stories260K and the TinyStories text):
  /tmp/hf/bin/python scripts/check-datasets.py [SHARED_DATA_DIR]
Not part of `npm test`, which must not need Python.
"""
import json
import os
import subprocess
import sys
import tempfile

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from safetensors.numpy import load_file

from saekit_node import ROOT, run_js, saekit

HOOK = "blocks.2.hook_resid_post"
TARGET_HOOK = "blocks.3.hook_resid_post"
CTX = 32

# The activations and token ids saekit reads from a Parquet or Arrow cache, in file order, as .npy files.
READ_CACHE_JS = """
const [root, path, column, out] = process.argv.slice(1);
const { existsSync, writeFileSync } = await import("node:fs");
const parquet = path.endsWith(".parquet") || !existsSync(path + "/state.json");
const { ParquetActivations } = await import(root + "/dist/data/parquet-activations.js");
const { ArrowActivations } = await import(root + "/dist/data/arrow-activations.js");
const acts = parquet ? await ParquetActivations.open(path, column || undefined) : ArrowActivations.open(path, column || undefined);
const chunks = parquet ? acts.chunks() : acts.chunks(1 << 30);
const values = new Float32Array(acts.vectors * acts.d);
const tokens = [];
let at = 0;
for (const chunk of chunks) {
  acts.read(chunk, values, at);
  at += chunk.rows * acts.vectorsPerRow * acts.d;
  if (acts.hasTokens) tokens.push(...acts.readTokens(chunk));
}
writeFileSync(out + ".f32", Buffer.from(values.buffer));
writeFileSync(out + ".json", JSON.stringify({ d: acts.d, dims: acts.dims, tokens: acts.hasTokens ? tokens : null }));
"""

# The documents (text, or token ids) saekit reads from a dataset file, as JSON.
READ_TEXT_JS = """
const [root, path, field] = process.argv.slice(1);
const { readItems } = await import(root + "/dist/data/text.js");
const out = [];
for await (const item of readItems(path, { textField: field })) out.push(typeof item === "string" ? item : Array.from(item));
process.stdout.write(JSON.stringify(out));
"""

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def store_arrays(store):
    """A store's activations [rows, d], targets and tokens [contexts, ctx], read by `safetensors`."""
    manifest = json.load(open(os.path.join(store, "manifest.json")))
    shards = [load_file(os.path.join(store, s["file"])) for s in manifest["shards"]]
    cat = lambda name: np.concatenate([s[name] for s in shards]) if name in shards[0] else None
    return manifest, cat("activations"), cat("targets"), cat("tokens")


def harvest(data, out, *extra):
    saekit("harvest", "--model", f"{data}/stories260K/stories260K.bin", "--tokenizer", f"{data}/stories260K/tok512.bin",
        "--dataset", f"{data}/tinystories/tinystories_train_first2MiB.txt", "--hook", HOOK, "--tokens", "3000",
        "--ctx", str(CTX), "--out", out, *extra)
    return out


def saekit_reads(path, column=None):
    """The vectors [n, d] and tokens saekit reads from a cache."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "read")
        run_js(READ_CACHE_JS, path, column or "", out)
        meta = json.load(open(out + ".json"))
        values = np.fromfile(out + ".f32", dtype=np.float32).reshape(-1, meta["d"])
    return values, (np.array(meta["tokens"], dtype=np.int64) if meta["tokens"] is not None else None), meta["dims"]


def exported_rows(manifest, acts, tokens):
    """What a SAELens cache of the store holds per context: its rows and the tokens they stand at."""
    per = manifest["rows_per_context"]
    rows = acts.reshape(-1, per, manifest["d"])
    toks = tokens[:, tokens.shape[1] - per:]
    return rows, toks


def check_exports(name, store, tmp):
    manifest, acts, targets, tokens = store_arrays(store)
    dtype = {"F32": np.float32, "F16": np.float16}[manifest["dtype"]]
    check(f"{name}: shards read by safetensors", acts.dtype == dtype and acts.shape == (manifest["tokens"], manifest["d"]) and
          tokens.shape[1] == CTX, f"activations {acts.dtype} {list(acts.shape)}, tokens {list(tokens.shape)}")
    rows, toks = exported_rows(manifest, acts, tokens)
    per = manifest["rows_per_context"]
    for fmt in ("arrow", "parquet"):
        out = os.path.join(tmp, f"{name}-{fmt}")
        saekit("export-cache", "--store", store, "--out", out, "--format", fmt, "--batch-contexts", "16")
        if fmt == "arrow":
            ds = datasets.load_from_disk(out)
        else:
            ds = datasets.load_dataset("parquet", data_files=os.path.join(out, "data", "*.parquet"), split="train")
        feature = ds.features[manifest["hook"]]
        ok = isinstance(feature, datasets.Array2D) and tuple(feature.shape) == (per, manifest["d"]) and feature.dtype == np.dtype(dtype).name
        table = ds.with_format("numpy")
        # (datasets hands float16 arrays out as float32, its own as well as these: the feature says float16.)
        got = np.stack(table[manifest["hook"]])
        ok = ok and np.array_equal(got.astype(np.float32), rows.astype(np.float32))
        ok = ok and np.array_equal(np.stack(table["token_ids"]), toks)
        if targets is not None:
            ok = ok and np.array_equal(np.stack(table[manifest["target_hook"]]), targets.reshape(rows.shape))
        reader = "datasets.load_from_disk" if fmt == "arrow" else 'datasets.load_dataset("parquet")'
        check(f"{name}: export-cache --format {fmt} read by {reader}", ok,
              f"{len(ds)} contexts, {feature.__class__.__name__}{tuple(feature.shape)} {feature.dtype}, columns {ds.column_names}")


def check_pretokenize(data, tmp):
    common = ["--model", f"{data}/stories260K/stories260K.bin", "--tokenizer", f"{data}/stories260K/tok512.bin",
              "--dataset", f"{data}/tinystories/tinystories_train_first2MiB.txt", "--tokens", "4096", "--ctx", str(CTX)]
    pq_out, jsonl_out = os.path.join(tmp, "pretok.parquet"), os.path.join(tmp, "pretok.jsonl")
    saekit("pretokenize", *common, "--out", pq_out)
    saekit("pretokenize", *common, "--out", jsonl_out)
    table = pq.read_table(pq_out)
    from_jsonl = [json.loads(line)["input_ids"] for line in open(jsonl_out)]
    ok = table.column_names == ["input_ids"] and table.column("input_ids").to_pylist() == from_jsonl
    check("pretokenize .parquet read by pyarrow", ok, f"{table.num_rows} contexts of {len(from_jsonl[0])} tokens, {table.schema.field('input_ids').type}")


def check_python_caches(tmp):
    """Caches Python writes, read back by saekit exactly."""
    rng = np.random.default_rng(0)
    contexts, per, d = 200, 8, 12
    acts = rng.standard_normal((contexts, per, d)).astype(np.float32)
    tokens = rng.integers(0, 500, (contexts, per)).astype(np.int32)
    # A dataset saved to disk, as SAELens' CacheActivationsRunner saves one.
    features = datasets.Features({HOOK: datasets.Array2D((per, d), "float32"), "token_ids": datasets.Sequence(datasets.Value("int32"), length=per)})
    saved = os.path.join(tmp, "py-saved")
    datasets.Dataset.from_dict({HOOK: acts, "token_ids": tokens}, features=features).save_to_disk(saved, num_shards=3)
    got, got_tokens, dims = saekit_reads(saved)
    check("datasets.save_to_disk cache read by saekit", np.array_equal(got, acts.reshape(-1, d)) and np.array_equal(got_tokens, tokens.reshape(-1)),
          f"{sum(f.endswith('.arrow') for f in os.listdir(saved))} .arrow files, {dims}")
    # Parquet files written by pyarrow, every codec and page layout it offers.
    table = pa.table({HOOK: pa.array(list(acts.tolist()), type=pa.list_(pa.list_(pa.float32()))), "token_ids": pa.array(tokens.tolist(), type=pa.list_(pa.int32()))})
    half = pa.table({HOOK: pa.array([[np.float16(v) for v in row] for row in acts.reshape(-1, d)[:per * 4].astype(np.float16).tolist()], type=pa.list_(pa.float16()))})
    for codec in ("none", "snappy", "gzip", "brotli", "zstd", "lz4"):
        for version in ("1.0", "2.0"):
            for layout, kwargs in (("plain", dict(use_dictionary=False)), ("dictionary", dict(use_dictionary=True)),
                                   ("byte_stream_split", dict(use_dictionary=False, use_byte_stream_split=[HOOK + ".list.element.list.element"]))):
                path = os.path.join(tmp, f"py-{codec}-{version}-{layout}.parquet")
                pq.write_table(table, path, compression=codec, data_page_version=version, row_group_size=13, **kwargs)
                try:
                    got, got_tokens, _ = saekit_reads(path)
                    ok = np.array_equal(got, acts.reshape(-1, d)) and np.array_equal(got_tokens, tokens.reshape(-1))
                    detail = ""
                except subprocess.CalledProcessError as e:
                    ok, detail = False, e.stderr.strip().splitlines()[-1]
                check(f"pyarrow Parquet ({codec}, data page V{version[0]}, {layout}) read by saekit", ok, detail)
    path = os.path.join(tmp, "py-float16.parquet")
    pq.write_table(half, path, compression="zstd")
    got, _, _ = saekit_reads(path)
    check("pyarrow Parquet float16 vectors read by saekit", np.array_equal(got, acts.reshape(-1, d)[:per * 4].astype(np.float16).astype(np.float32)))


# An activation file as saekit loads it ([rows, d] float32), as a raw .f32 file and its shape.
READ_MATRIX_JS = """
const [root, path, tensor, out] = process.argv.slice(1);
const { writeFileSync } = await import("node:fs");
const { loadActivations } = await import(root + "/dist/data/activation-files.js");
const m = loadActivations(path, { tensor: tensor || undefined });
writeFileSync(out, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
process.stdout.write(JSON.stringify({ rows: m.rows, d: m.d }));
"""


def saekit_matrix(path, tmp, tensor=None):
    out = os.path.join(tmp, "matrix.f32")
    shape = json.loads(run_js(READ_MATRIX_JS, path, tensor or "", out))
    return np.fromfile(out, dtype=np.float32).reshape(shape["rows"], shape["d"])


def check_tensor_files(tmp):
    """Activation matrices saved by numpy, safetensors and torch, read by saekit exactly; an
    SAE saekit trains, read by safetensors as SAELens lays it out."""
    import torch
    from safetensors.numpy import save_file as save_numpy
    from safetensors.torch import save_file as save_torch
    x = np.random.default_rng(1).standard_normal((37, 24)).astype(np.float32)
    cases = []
    for dtype in (np.float32, np.float16, np.float64):
        path = os.path.join(tmp, f"acts-{np.dtype(dtype).name}.npy")
        np.save(path, x.astype(dtype))
        cases.append((f"numpy .npy {np.dtype(dtype).name}", path, None, x.astype(dtype)))
    path = os.path.join(tmp, "acts-fortran.npy")
    np.save(path, np.asfortranarray(x))
    cases.append(("numpy .npy float32, Fortran order", path, None, x))
    path = os.path.join(tmp, "acts-numpy.safetensors")
    save_numpy({"acts": x.astype(np.float16), "tokens": np.arange(37, dtype=np.int64)}, path, metadata={"hook": HOOK})
    cases.append(("safetensors (numpy) F16 beside I64, with metadata", path, "acts", x.astype(np.float16)))
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        name = str(dtype).split(".")[1]
        t = torch.from_numpy(x).to(dtype)
        path = os.path.join(tmp, f"acts-{name}.safetensors")
        save_torch({"activations": t}, path)
        cases.append((f"safetensors (torch) {name}", path, None, t.float().numpy()))
        path = os.path.join(tmp, f"acts-{name}.pt")
        torch.save({"activations": t, "step": 3}, path)
        cases.append((f"torch.save dict {name} (torch {torch.__version__})", path, "activations", t.float().numpy()))
    path = os.path.join(tmp, "acts-view.pt")
    torch.save(torch.from_numpy(x).t().contiguous().t(), path)  # a transposed (column-major) tensor
    cases.append(("torch.save of a column-major tensor", path, None, x))
    for name, path, tensor, want in cases:
        try:
            got = saekit_matrix(path, tmp, tensor)
            ok, detail = np.array_equal(got, want.astype(np.float32)), f"{list(got.shape)}"
        except subprocess.CalledProcessError as e:
            ok, detail = False, e.stderr.strip().splitlines()[-1]
        check(f"{name} read by saekit", ok, detail)
    # Big-endian arrays (which numpy writes only when asked) are refused, by name, not misread.
    path = os.path.join(tmp, "acts-bigendian.npy")
    np.save(path, x.astype(">f4"))
    try:
        saekit_matrix(path, tmp)
        ok, detail = False, "read without complaint"
    except subprocess.CalledProcessError as e:
        detail = next((line for line in e.stderr.splitlines() if line.startswith("Error:")), e.stderr.strip().splitlines()[0])
        ok = "dtype >f4 is not little-endian" in detail
    check("numpy .npy big-endian float32 refused by saekit, by name", ok, detail)
    # An SAE saekit trains, as SAELens lays it out: cfg.json and sae_weights.safetensors.
    run_dir = os.path.join(tmp, "sae-run")
    saekit("train", "--data", "synthetic:superposition", "--arch", "topk", "--k", "4", "--d-sae", "96",
        "--steps", "20", "--batch", "256", "--out", run_dir)
    cfg = json.load(open(os.path.join(run_dir, "cfg.json")))
    weights = load_file(os.path.join(run_dir, "sae_weights.safetensors"))
    d, m = cfg["d_in"], cfg["d_sae"]
    shapes = {k: list(v.shape) for k, v in weights.items()}
    ok = cfg["architecture"] == "topk" and shapes.get("W_enc") == [d, m] and shapes.get("W_dec") == [m, d] and \
        shapes.get("b_enc") == [m] and shapes.get("b_dec") == [d] and all(v.dtype == np.float32 for v in weights.values())
    check("an SAE saekit trained, read by safetensors in SAELens' layout", ok, f"{cfg['architecture']}, {shapes}")
    # The training checkpoint beside it (weights, Adam's moments, counters, RNG state) is a safetensors file too.
    from safetensors import safe_open
    with safe_open(os.path.join(run_dir, "checkpoint.safetensors"), framework="np") as f:
        names = list(f.keys())
        meta = f.metadata() or {}
        tensors = {name: f.get_tensor(name) for name in names}
    ok = len(names) > 4 and all(np.isfinite(t).all() for t in tensors.values() if t.dtype.kind == "f") and \
        all(isinstance(v, str) for v in meta.values())
    check("saekit's training checkpoint opened by safetensors", ok, f"{len(names)} tensors ({', '.join(sorted({str(t.dtype) for t in tensors.values()}))}), {len(meta)} metadata keys")


def check_python_text(data, tmp):
    """Text datasets Python writes (TinyStories' own layout: a "text" column), read by saekit document for document."""
    with open(f"{data}/tinystories/tinystories_train_first2MiB.txt", encoding="utf-8") as f:
        docs = [line.rstrip("\n") for line in f if line.strip()][:3000]
    docs_with_gaps = docs[:50] + [None, "", "   "] + docs[50:]
    table = pa.table({"text": pa.array(docs_with_gaps, type=pa.string()), "id": pa.array(range(len(docs_with_gaps)))})
    for codec, dictionary in (("snappy", True), ("zstd", False), ("gzip", True)):
        path = os.path.join(tmp, f"text-{codec}.parquet")
        pq.write_table(table, path, compression=codec, use_dictionary=dictionary, row_group_size=700)
        got = json.loads(run_js(READ_TEXT_JS, path, "text"))
        check(f"pyarrow Parquet text ({codec}{', dictionary' if dictionary else ''}, a null and blank rows) read by saekit", got == docs,
              f"{len(got)} documents of {len(docs)}")
    # Pretokenized datasets (SAELens' pretokenize runner: an input_ids column of whole contexts), int64 or int32.
    ids = np.random.default_rng(2).integers(0, 50000, (300, 33))
    want = ids.tolist()
    for dtype in (pa.int64(), pa.int32()):
        path = os.path.join(tmp, f"pretokenized-{dtype}.parquet")
        pq.write_table(pa.table({"input_ids": pa.array(want, type=pa.list_(dtype))}), path, row_group_size=128)
        got = json.loads(run_js(READ_TEXT_JS, path, "text"))
        check(f"pyarrow Parquet pretokenized input_ids ({dtype}) read by saekit", got == want, f"{len(got)} contexts of {len(got[0]) if got else 0} tokens")
    pretok_saved = os.path.join(tmp, "pretokenized-saved")
    datasets.Dataset.from_dict({"input_ids": want}).save_to_disk(pretok_saved, num_shards=2)
    got = []
    for f in sorted(f for f in os.listdir(pretok_saved) if f.endswith(".arrow")):
        got += json.loads(run_js(READ_TEXT_JS, os.path.join(pretok_saved, f), "text"))
    check("datasets.save_to_disk pretokenized input_ids (.arrow files) read by saekit", got == want, f"{len(got)} contexts")
    saved = os.path.join(tmp, "text-saved")
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(saved, num_shards=3)
    arrow_files = sorted(f for f in os.listdir(saved) if f.endswith(".arrow"))
    got = []
    for f in arrow_files:
        got += json.loads(run_js(READ_TEXT_JS, os.path.join(saved, f), "text"))
    check("datasets.save_to_disk text (.arrow files) read by saekit", got == docs, f"{len(arrow_files)} files, {len(got)} documents")


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")
    print(f"datasets {datasets.__version__}, pyarrow {pa.__version__}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        check_exports("float32 store", harvest(data, os.path.join(tmp, "f32")), tmp)
        check_exports("float16 store, --exclude-bos", harvest(data, os.path.join(tmp, "f16"), "--dtype", "f16", "--exclude-bos"), tmp)
        check_exports("transcoder store", harvest(data, os.path.join(tmp, "pairs"), "--target-hook", TARGET_HOOK), tmp)
        check_pretokenize(data, tmp)
        check_python_caches(tmp)
        check_tensor_files(tmp)
        check_python_text(data, tmp)
    print(f"{sum(results)} of {len(results)} checks passed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
