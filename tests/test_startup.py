"""What a command's start-up and exit skip: the packages Keras imports for unused features, the last collection."""

import pathlib
import subprocess
import sys

import pytest

from kbert.lean_imports import hidden

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = "tests/fixtures/checkpoints/tiny-uncased-cls"


def test_hidden_packages_fail_to_import_inside_the_block_and_import_after_it():
    for name in ("json.tool", "wsgiref", "wsgiref.util"):
        sys.modules.pop(name, None)
    with hidden(("json", "wsgiref")):  # json is imported already: it stays, submodules included
        import json.tool
        with pytest.raises(ModuleNotFoundError, match="wsgiref is not imported by a kbert command"):
            import wsgiref.util  # noqa: F401
    assert json.tool.main
    import wsgiref.util
    assert wsgiref.util.guess_scheme


@pytest.mark.parametrize("argv, frozen", [
    ("None", True),  # the process's own command line: python -m kbert predict ...
    (f"['predict', '--model', '{TINY}', 'hi']", False),  # called from Python: the caller's exit is its own
])
def test_predict_skips_the_last_collection_only_as_the_process_command(argv, frozen):
    code = (f"import atexit, gc, sys\nsys.argv = ['kbert', 'predict', '--model', '{TINY}', 'hi']\n"
            f"from kbert.cli import main\nassert main({argv}) == 0\natexit._run_exitfuncs()\n"
            f"print('frozen', gc.get_freeze_count() > 0, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"frozen {frozen}" in done.stderr


# Packages no `kbert predict` uses: what Keras imports at start-up for its scikit-learn wrappers and plots,
# TensorFlow's legacy tf.keras for scipy.sparse inputs, Keras's image utilities (PIL), keras-hub for Kaggle
# presets; and kbert's own optional features (Keras Tuner, TFDS, FAISS, seqeval) that predict must not pull in.
NOT_FOR_PREDICT = ("sklearn", "matplotlib", "scipy", "PIL", "kagglehub", "keras_tuner", "tensorflow_datasets", "faiss",
                   "seqeval")


def test_predict_imports_none_of_the_packages_it_does_not_use():
    code = (f"import sys\nfrom kbert.cli import main\nassert main(['predict', '--model', '{TINY}', 'hi']) == 0\n"
            f"print('loaded', sorted({{m.partition('.')[0] for m in sys.modules}} & set({NOT_FOR_PREDICT!r})), "
            f"file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"label"' in done.stdout
    assert "loaded []" in done.stderr, done.stderr[-500:]
