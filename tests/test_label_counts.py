"""Labels inferred from the data are counted, and a label seen once (a likely typo) is named with its file and
line: a warning by default, an error with --strict-labels, and nothing when the label set is given."""

import warnings

import pytest

import kbert
from conftest import CHECKPOINTS
from kbert.cli import main
from kbert.data.labels import check_label_counts
from kbert.errors import DataError, DataWarning
from kbert.tasks.token_classification.tagged_files import tagged_from_lists

TINY = str(CHECKPOINTS / "tiny-uncased-qa")


def _typo_file(tmp_path):
    rows = ["text\tlabel"] + [f"good film {i}\t1" for i in range(6)] + [f"bad film {i}\t0" for i in range(5)]
    rows.insert(5, "so so film\tpostive")  # line 6 of the file
    path = tmp_path / "train.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_counts_are_sorted_and_a_singleton_is_named():
    rows = [("1", "f.tsv:2"), ("0", "f.tsv:3"), ("postive", "f.tsv:4"), ("0", "f.tsv:5"), ("1", "f.tsv:6")]
    with pytest.warns(DataWarning) as caught:
        counts = check_label_counts(rows)
    assert counts == {"0": 2, "1": 2, "postive": 1}
    assert [str(w.message) for w in caught] == [
        "f.tsv:4: label 'postive' occurs only once in the training data (labels: {'0': 2, '1': 2, 'postive': 1}); "
        "fix the row or give the label set with labels="]


def test_no_report_when_not_asked_or_nothing_is_rare():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_label_counts([("a", "x:1"), ("b", "x:2")], report=False) == {"a": 1, "b": 1}
        assert check_label_counts([("a", "x:1"), ("a", "x:2"), ("b", "x:3"), ("b", "x:4")]) == {"a": 2, "b": 2}


def test_train_warns_with_file_and_line_and_strict_fails_before_writing(tmp_path):
    path = _typo_file(tmp_path)
    options = dict(train=str(path), model=TINY, epochs=1, batch_size=8, max_length=16, verbose=0)
    with pytest.warns(DataWarning, match=rf"{path}:6: label 'postive' occurs only once"):
        kbert.train(output=str(tmp_path / "run"), **options)
    with pytest.raises(DataError, match=rf"{path}:6: label 'postive' occurs only once"):
        kbert.train(output=str(tmp_path / "strict"), strict_labels=True, **options)
    assert not (tmp_path / "strict").exists()


def test_an_explicit_label_set_is_not_second_guessed(tmp_path):
    path = _typo_file(tmp_path)
    with pytest.raises(DataError, match=r"train\.tsv:6: label 'postive' is not one of \['0', '1'\]"):
        kbert.train(train=str(path), output=str(tmp_path / "run"), model=TINY, labels=("0", "1"), strict_labels=True,
                    verbose=0)


def test_rare_tags_are_named_with_their_word():
    from kbert.tasks.token_classification.training_data import tag_occurrences

    sentences = tagged_from_lists([["Ann", "sings"], ["Bob", "runs"], ["Eve", "reads"]],
                                  [["B-PER", "O"], ["B-PRE", "O"], ["B-PER", "O"]])
    with pytest.warns(DataWarning) as caught:
        assert check_label_counts(tag_occurrences(sentences)) == {"B-PER": 2, "B-PRE": 1, "O": 3}
    assert len(caught) == 1 and str(caught[0].message).startswith(
        "list[1]: word 1 'Bob': label 'B-PRE' occurs only once")


def test_cli_summary_counts_rows_per_label_and_warns_in_one_line(tmp_path, capsys):
    path = _typo_file(tmp_path)
    code = main(["train", "--model", TINY, "--train", str(path), "--output", str(tmp_path / "run"), "--epochs", "1",
                 "--batch-size", "8", "--max-length", "16"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "labels: 0 (5), 1 (6), postive (1);" in err and out.startswith("{")  # the summary is not on stdout
    assert f"kbert: warning: {path}:6: label 'postive' occurs only once" in err
    code = main(["train", "--model", TINY, "--train", str(path), "--output", str(tmp_path / "strict"), "--strict-labels"])
    assert code == 2 and f"kbert: error: {path}:6: label 'postive' occurs only once" in capsys.readouterr().err
