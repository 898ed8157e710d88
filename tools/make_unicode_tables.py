"""Regenerate ``kbert/tokenizer/unicode_tables.json`` from Hugging Face's Rust tokenizer.

kbert's in-graph tokenizer must split and normalise text exactly as ``BertTokenizerFast`` does.
The fast tokenizer's notion of "control", "whitespace", "punctuation", "accent" and "lower case"
comes from the Unicode tables compiled into its Rust crates, which are NOT the tables of
Python's ``unicodedata`` (e.g. it keeps unassigned code points, and punctuation added after
Unicode 9 is not punctuation to it). So instead of re-deriving those rules we *probe* the real
implementation once per code point and store the answers as compact range tables.

Run (needs the ``tokenizers`` package, which keras-hub already depends on):

    .venv/bin/python tools/make_unicode_tables.py

The output is package data; ``tests/test_unicode_tables.py`` re-probes a sample against the
installed ``tokenizers`` to catch drift.
"""

from __future__ import annotations

import json
import pathlib
import sys

import tokenizers
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

OUT = pathlib.Path(__file__).resolve().parents[1] / "kbert" / "tokenizer" / "unicode_tables.json"

# Classes of a raw code point, as BertNormalizer(clean_text=True) treats it.
KEEP, REMOVE, SPACE = 0, 1, 2
# Classes of a normalised code point, as the pre-tokenizer (+ handle_chinese_chars) treats it.
WORD, ISOLATE, SEPARATOR = 0, 1, 2

SURROGATES = range(0xD800, 0xE000)  # cannot occur in a Python str that encodes to UTF-8


def _runs(classes: list[int]) -> list[list[int]]:
    """Compress a per-code-point class list into ``[[first_code_point, class], ...]`` runs."""
    runs = []
    for cp, cls in enumerate(classes):
        if not runs or runs[-1][1] != cls:
            runs.append([cp, cls])
    return runs


def clean_text_classes() -> list[int]:
    norm = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    classes = []
    for cp in range(0x110000):
        if cp in SURROGATES:
            classes.append(REMOVE)
            continue
        out = norm.normalize_str("a" + chr(cp) + "b")
        if out == "ab":
            classes.append(REMOVE)
        elif out == "a b":
            classes.append(SPACE)
        elif out == "a" + chr(cp) + "b":
            classes.append(KEEP)
        else:  # pragma: no cover - would mean the Rust rules changed shape
            sys.exit(f"unexpected clean_text result for U+{cp:04X}: {out!r}")
    return classes


def split_classes() -> list[int]:
    pre = BertPreTokenizer()
    chinese = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    classes = []
    for cp in range(0x110000):
        if cp in SURROGATES:
            classes.append(SEPARATOR)
            continue
        c = chr(cp)
        if chinese.normalize_str(c) == f" {c} ":
            classes.append(ISOLATE)
            continue
        pieces = [p for p, _ in pre.pre_tokenize_str("a" + c + "b")]
        if pieces == ["a", c, "b"]:
            classes.append(ISOLATE)
        elif pieces == ["a", "b"]:
            classes.append(SEPARATOR)
        elif pieces == ["a" + c + "b"]:
            classes.append(WORD)
        else:  # pragma: no cover
            sys.exit(f"unexpected pre-tokenization for U+{cp:04X}: {pieces!r}")
    return classes


def mapping(strip_accents: bool, lowercase: bool) -> dict[str, list[int]]:
    """Code points that strip_accents / lowercase change, with what they become (maybe nothing)."""
    norm = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=strip_accents, lowercase=lowercase)
    table = {}
    for cp in range(0x110000):
        if cp in SURROGATES:
            continue
        c = chr(cp)
        out = norm.normalize_str(c)
        if out != c:
            table[str(cp)] = [ord(x) for x in out]
    return table


def main() -> None:
    tables = {
        "generated_by": f"tools/make_unicode_tables.py with tokenizers {tokenizers.__version__}",
        "clean_text_runs": _runs(clean_text_classes()),
        "split_runs": _runs(split_classes()),
        "mappings": {
            "strip_accents+lowercase": mapping(True, True),
            "lowercase": mapping(False, True),
            "strip_accents": mapping(True, False),
        },
    }
    OUT.write_text(json.dumps(tables, separators=(",", ":")) + "\n", encoding="utf-8")
    sizes = {k: len(v) for k, v in tables["mappings"].items()}
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB): "
          f"{len(tables['clean_text_runs'])} clean runs, {len(tables['split_runs'])} split runs, mappings {sizes}")


if __name__ == "__main__":
    main()
