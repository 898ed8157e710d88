"""Progress bars: shown by tqdm on a terminal while a command runs a long loop, absent when piped."""

import io
import sys

from kbert.progress import progress, progress_bars


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal_with_the_description_and_count(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bars("evaluating"):
        assert list(progress(range(5), total=5)) == [0, 1, 2, 3, 4]
    shown = terminal.getvalue()
    assert shown.startswith("\revaluating:") and "/5 [" in shown  # description and total; cleared when done


def test_no_bar_when_piped_or_when_no_command_asked_for_one(monkeypatch):
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    items = [1, 2]
    with progress_bars("evaluating"):
        assert progress(items) is items
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress(items) is items
    assert piped.getvalue() == ""


def test_a_pipeline_run_inside_a_command_shows_its_batches(monkeypatch):
    import kbert
    from conftest import CHECKPOINTS

    pipe = kbert.pipeline("text-classification", model=CHECKPOINTS / "tiny-uncased-cls", batch_size=2)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bars("predicting"):
        results = pipe(["a b", "c", "d e f", "g", "h"])
    assert len(results) == 5
    assert "predicting" in terminal.getvalue() and "/3 [" in terminal.getvalue()  # 5 texts in batches of 2
