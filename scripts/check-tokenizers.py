#!/usr/bin/env python3
"""Checks saekit's tokenizers against Hugging Face's Rust `tokenizers` on a lot of real and odd text.

The tests pin saekit's encodings to the expected ids that come with the shared tokenizers;
this script compares every encoding with the library those ids come from, on far more
text: every line of the shared TinyStories files, the shared test strings, and seeded
random strings drawn from whitespace runs, digits, punctuation, contractions, accented,
CJK and emoji characters, control characters and the tokenizers' special tokens. For the
GPT-NeoX tokenizer (20B_tokenizer.json, Pythia's), GPT-2's (vocab.json + merges.txt,
which saekit turns into a tokenizer.json), GPT-2's vocabulary behind Llama 3's
pre-tokenizer (a Split regex, as Llama 3's and Qwen2's tokenizer.json have) and two Llama
2-style SentencePiece BPE tokenizers trained here on TinyStories (byte fallback; the legacy
normalizer layout and the Metaspace one) and a Gemma-style one (spaces replaced, nothing
prepended) it reports how many of the texts encode to
different ids, and how many decode to other text than the library decodes the same ids
to (all of them, and their first half, which may cut a character's bytes apart), and
fails on any.

Needs a Python with `tokenizers` (python3 -m venv /tmp/hf && /tmp/hf/bin/pip install
tokenizers), a built checkout (npm ci) and ../shared/data:
  /tmp/hf/bin/python scripts/check-tokenizers.py [SHARED_DATA_DIR]
Not part of `npm test`, which must not need Python.
"""
import json
import os
import random
import shutil
import sys
import tempfile

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE

from saekit_node import ROOT, run_js

ENCODE_JS = """
const [root, tokenizerPath, textsPath] = process.argv.slice(1);
const { readFileSync } = await import("node:fs");
const { loadTokenizer } = await import(root + "/dist/lm/load.js");
const tok = loadTokenizer(tokenizerPath);
const texts = JSON.parse(readFileSync(textsPath, "utf8"));
// Each text's ids, their decoding, and the decoding of their first half (which may cut a character's bytes apart).
const out = texts.map((t) => {
  const ids = tok.encode(t);
  return { ids, text: tok.decode(ids), half: tok.decode(ids.slice(0, ids.length >> 1)) };
});
process.stdout.write(JSON.stringify(out));
"""

POOL = (
    [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000"]
    + list("0123456789") + ["123", "4567", "3.14", "1,000"]
    + list(".,;:!?'\"()[]{}-_/\\@#$%^&*+=<>|~`")
    + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T"]
    + ["Once", " upon", " a", " time", " the", " The", "cat", "Lily", " ran", "HELLO", "hello", "ing", "tion"]
    + ["café", "naïve", "Ångström", "Straße", "über", "ñ", "e\u0301"]
    + ["日本語", "中文", "한국어", "Привет", "مرحبا", "שלום", "ελληνικά", "हिन्दी"]
    + ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "∑", "→", "€", "£", "©"]
    + ["\x00", "\x07", "\x1b", "\x7f", "\ufeff", "\u200b", "\x85", "\u2028", "\u1680", "\u180e", "\u200a", "\u202f"]
)


def random_texts(n, seed, specials):
    rng = random.Random(seed)
    pool = POOL + specials
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def shared_texts(data):
    texts = []
    for name in ("tinystories/tinystories_train_first2MiB.txt", "tinystories/cs336_tinystories_sample.txt"):
        with open(os.path.join(data, name), encoding="utf-8") as f:
            texts += [line.rstrip("\n") for line in f if line.strip()]
    for name in ("tokenizers/gpt-neox-20b/neox-tokenizer-tests.inp", "tokenizers/gpt2/gpt2-tokenizer-tests.inp"):
        with open(os.path.join(data, name), encoding="utf-8") as f:
            texts += [t.strip("\n") for t in f.read().split("__ggml_vocab_test__")]
    return texts


def saekit_encode(tokenizer_path, texts, tmp):
    path = os.path.join(tmp, "texts.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    return json.loads(run_js(ENCODE_JS, tokenizer_path, path))


def gpt2_reference(folder):
    """GPT-2's tokenizer from its original files, as GPT2TokenizerFast builds it."""
    tok = Tokenizer(BPE.from_file(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


# Llama 3's pre-tokenizer regex (Qwen2's differs in taking digits one at a time).
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def llama3_style(gpt2_tokenizer, path):
    """GPT-2's vocabulary behind Llama 3's pre-tokenizer (a Split regex, then ByteLevel
    without its own regex), as Llama 3's and Qwen2's tokenizer.json files are laid out."""
    tok = Tokenizer.from_str(gpt2_tokenizer.to_str())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.save(path)
    return tok


def sentencepiece_style(texts, tmp):
    """Llama 2-style tokenizer.json files (SentencePiece BPE as transformers converts it: "▁"
    for spaces, byte fallback to <0xNN> tokens), trained here on TinyStories: the legacy
    layout (a Prepend + Replace normalizer, no pre-tokenizer), the newer one (a Metaspace
    pre-tokenizer that prepends "▁" to the first word only), and Gemma's (Replace alone)."""
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    special = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=2000, special_tokens=special, limit_alphabet=300))
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    # The byte tokens are plain vocabulary in Llama 2's files, not added (special) tokens as the trainer makes them.
    layout = json.loads(tok.to_str())
    layout["added_tokens"] = [t for t in layout["added_tokens"] if not t["content"].startswith("<0x")]
    tok = Tokenizer.from_str(json.dumps(layout))
    legacy = Tokenizer.from_str(tok.to_str())
    legacy.pre_tokenizer = None
    legacy.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    metaspace = Tokenizer.from_str(tok.to_str())
    metaspace.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    # Gemma's layout: spaces become "▁" and nothing is prepended.
    gemma = Tokenizer.from_str(tok.to_str())
    gemma.pre_tokenizer = None
    gemma.normalizer = normalizers.Replace(" ", "▁")
    gemma.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    out = []
    for name, t in (("legacy", legacy), ("metaspace", metaspace), ("gemma", gemma)):
        path = os.path.join(tmp, f"sentencepiece-{name}.json")
        t.save(path)
        out.append((path, t))
    return out


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        # saekit reads GPT-2's vocab.json + merges.txt from a folder of that layout.
        gpt2 = os.path.join(tmp, "gpt2")
        os.makedirs(gpt2)
        shutil.copy(os.path.join(data, "tokenizers/gpt2/gpt2_vocab.json"), os.path.join(gpt2, "vocab.json"))
        shutil.copy(os.path.join(data, "tokenizers/gpt2/gpt2_merges.txt"), os.path.join(gpt2, "merges.txt"))
        neox = os.path.join(data, "tokenizers/gpt-neox-20b/20B_tokenizer.json")
        llama3 = os.path.join(tmp, "llama3-style.json")
        cases = [
            ("gpt-neox-20b (Pythia)", neox, Tokenizer.from_file(neox), ["<|endoftext|>", "<|padding|>"]),
            ("gpt2", gpt2, gpt2_reference(gpt2), ["<|endoftext|>"]),
            ("gpt2's vocabulary behind Llama 3's Split regex", llama3, llama3_style(gpt2_reference(gpt2), llama3), ["<|endoftext|>"]),
        ]
        common = shared_texts(data)
        (legacy, legacy_ref), (meta, meta_ref), (gemma, gemma_ref) = sentencepiece_style(common[:20000], tmp)
        cases += [
            ("Gemma-style SentencePiece BPE (Replace normalizer, no prefix space, byte fallback)", gemma, gemma_ref, ["<s>", "</s>", "<unk>"]),
            ("Llama 2-style SentencePiece BPE, legacy (Prepend + Replace normalizer, byte fallback)", legacy, legacy_ref, ["<s>", "</s>", "<unk>"]),
            ("Llama 2-style SentencePiece BPE, Metaspace pre-tokenizer (prepend_scheme first)", meta, meta_ref, ["<s>", "</s>", "<unk>"]),
        ]
        for name, path, reference, specials in cases:
            texts = common + random_texts(20000, 0, specials)
            got = saekit_encode(path, texts, tmp)
            want = [e.ids for e in reference.encode_batch(texts, add_special_tokens=False)]
            wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g["ids"] != w]
            # Decoded as the reference decodes the same ids (not the text itself: GPT-NeoX's tokenizer normalises to NFC).
            lossy = [i for i, g in enumerate(got) if g["text"] != reference.decode(want[i], skip_special_tokens=False)
                     or g["half"] != reference.decode(want[i][:len(want[i]) // 2], skip_special_tokens=False)]
            tokens = sum(len(w) for w in want)
            ok = not wrong and not lossy
            failed |= not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(texts)} texts, {tokens} tokens; "
                  f"{len(wrong)} encoded differently from tokenizers, {len(lossy)} decoded differently")
            for i in wrong[:5]:
                print(f"     {texts[i]!r}: saekit {got[i]['ids']}, tokenizers {want[i]}")
            for i in lossy[:5]:
                half = want[i][:len(want[i]) // 2]
                print(f"     {texts[i]!r} decoded as {got[i]['text']!r}, by tokenizers as {reference.decode(want[i], skip_special_tokens=False)!r}; "
                      f"its first half as {got[i]['half']!r}, by tokenizers as {reference.decode(half, skip_special_tokens=False)!r}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
