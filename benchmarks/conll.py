"""The CoNLL reader of the token-classification references (hf_train_token.py, hf_inference_token.py).

Pure Python, no torch or TensorFlow, so either interpreter can import it (the kbert side may use it to
build exactly the texts the reference sees).
"""

from __future__ import annotations

import os
import pathlib
import sys


def default_data_dir() -> pathlib.Path:
    """$KBERT_DATA/wnut17, else ../shared/data/wnut17 next to the repository."""
    root = os.environ.get("KBERT_DATA") or pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    return pathlib.Path(root) / "wnut17"


def read_conll(path: pathlib.Path, limit=None) -> list[tuple[list[str], list[str]]]:
    """(words, tags) per sentence of a `token<TAB>tag` file, the first `limit` sentences if given.

    A sentence ends at a line that is empty or whitespace only (WNUT-17's train file uses tab-only
    lines). Lines are split on "\\n" only: str.splitlines() would also split at U+2028, U+0085...
    """
    sentences, words, tags = [], [], []
    for number, line in enumerate(pathlib.Path(path).read_text(encoding="utf-8").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            continue
        if "\t" not in line:
            sys.exit(f"{path}:{number}: expected 'token<TAB>tag', got {line!r}")
        word, tag = line.rsplit("\t", 1)
        words.append(word)
        tags.append(tag.strip())
    if words:
        sentences.append((words, tags))
    return sentences[:limit] if limit is not None else sentences
