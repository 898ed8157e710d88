"""`kbert mine-negatives`: which candidates become hard negatives (positives, copies of the query and anything
within the margin of the positive are skipped), rows left out when too few remain, and the files written."""

import csv
import json

import numpy as np
import pytest

from kbert.cli import main
from kbert.errors import InputError
from kbert.semantic_search.indexing import Embedder
from kbert.semantic_search.negative_mining import mine_hard_negatives, write_mined
from kbert.tasks.retrieval.pairs import RetrievalExample, read_pairs


class TableEmbedder(Embedder):
    """Vectors from a table (unit 2-d vectors at given angles), so every score is known in advance."""

    def __init__(self, angles: dict[str, float]):
        self.angles = angles
        self.name = "table"

    @property
    def dimension(self):
        return 2

    def encode(self, texts, role=None):
        return np.array([[np.cos(self.angles[t]), np.sin(self.angles[t])] for t in texts], np.float32)


def cos(a, b):
    return float(np.cos(a - b))


ANGLES = {"q": 0.0, "pos": 0.30, "near-copy": 0.29, "close": 0.35, "far": 1.2, "farther": 1.5, "other-pos": 0.1,
          "q2": 3.0, "pos2": 3.1}
ROWS = [RetrievalExample("q", "pos"), RetrievalExample("q", "other-pos"), RetrievalExample("q2", "pos2")]
CORPUS = ["near-copy", "close", "far", "farther", "q"]


def test_selection_rules_follow_the_margins():
    embedder = TableEmbedder(ANGLES)
    mined, summary = mine_hard_negatives(embedder, ROWS[:1] + ROWS[1:2], corpus=CORPUS, num_negatives=2,
                                         relative_margin=None, margin=0.0)
    # q's candidates by score: q itself, other-pos, near-copy, pos, close, far, farther. For row (q, pos):
    # q is the query's own text, other-pos another positive of q, near-copy scores above pos (margin 0).
    assert mined[0].negatives == ("close", "far")
    # For row (q, other-pos) every document scores below other-pos except q (its text) and pos (a positive).
    assert mined[1].negatives == ("near-copy", "close")
    assert summary["rows"] == 2 and summary["left_out"] == 0
    assert summary["mean_positive_score"] == pytest.approx((cos(0, 0.3) + cos(0, 0.1)) / 2, rel=1e-5)


def test_an_absolute_margin_skips_near_misses():
    mined, _ = mine_hard_negatives(TableEmbedder(ANGLES), ROWS[:1], corpus=CORPUS, num_negatives=1, margin=0.05,
                                   relative_margin=None)
    # close: cos(0.35) = 0.939 > cos(0.30) - 0.05 = 0.905: skipped; far: 0.362 is kept
    assert mined[0].negatives == ("far",)


def test_a_relative_margin_skips_near_misses():
    limit = cos(0, 0.3) * (1 - 0.5)
    mined, _ = mine_hard_negatives(TableEmbedder(ANGLES), ROWS[:1], corpus=CORPUS, num_negatives=1,
                                   relative_margin=0.5)
    assert cos(0, 1.2) < limit < cos(0, 0.35)
    assert mined[0].negatives == ("far",)


def test_rows_with_too_few_negatives_are_left_out():
    mined, summary = mine_hard_negatives(TableEmbedder(ANGLES), ROWS, corpus=CORPUS, num_negatives=2, range_max=3,
                                         relative_margin=None)
    # k = range_max + 1 = 4 candidates. q's: q, other-pos, near-copy, pos -> one negative (near-copy) per row: left
    # out. q2's: pos2, farther, far, close -> farther and far.
    assert [(r.query, r.negatives) for r in mined] == [("q2", ("farther", "far"))]
    assert summary["rows"] == 1 and summary["left_out"] == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"num_negatives": 0}, "num_negatives must be a positive integer"),
    ({"num_negatives": 5, "range_max": 2}, "range_max .2. must be at least num_negatives .5."),
    ({"margin": -1}, "margin must be a number >= 0"),
    ({"relative_margin": 1.0}, r"relative_margin must be in \[0, 1\)"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        mine_hard_negatives(TableEmbedder(ANGLES), ROWS, **kwargs)


def test_written_files_train_a_bi_encoder_and_a_cross_encoder(tmp_path):
    rows = [RetrievalExample("oil\tprices", "Crude rose.\nA lot.", ("Team won", "Rain")),
            RetrievalExample("goal", "Team won", ("Crude rose.", "Rain"))]
    write_mined(rows, tmp_path / "mined.jsonl", tmp_path / "pairs.tsv")
    assert read_pairs(tmp_path / "mined.jsonl")[0] == RetrievalExample(
        "oil\tprices", "Crude rose.\nA lot.", ("Team won", "Rain"), f"{tmp_path / 'mined.jsonl'}:1")
    with open(tmp_path / "pairs.tsv", newline="") as f:
        table = list(csv.reader(f, delimiter="\t"))
    assert table[0] == ["text", "text_pair", "label"]
    assert table[1:4] == [["oil prices", "Crude rose. A lot.", "relevant"], ["oil prices", "Team won", "irrelevant"],
                          ["oil prices", "Rain", "irrelevant"]]
    assert len(table) == 1 + 2 * 3


def test_cli_mines_with_minilm(tmp_path, capsys, minilm_path):
    data = tmp_path / "news.csv"
    data.write_text("title,description\n"
                    "Oil prices climb,Crude oil rose 2% on supply fears.\n"
                    "Final won late,The team won the final with a late goal.\n"
                    "OPEC cuts output,OPEC agreed to cut crude oil output.\n"
                    "Phone launch,The company unveiled its new smartphone.\n")
    code = main(["mine-negatives", "--data", str(data), "--query-column", "title", "--positive-column",
                 "description", "--output", str(tmp_path / "mined.jsonl"), "--pairs-output", str(tmp_path / "p.tsv"),
                 "--num-negatives", "1", "--relative-margin", "0"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["rows"] == 4 and summary["documents"] == 4
    mined = [json.loads(line) for line in (tmp_path / "mined.jsonl").read_text().splitlines()]
    by_query = {m["query"]: m["negatives"] for m in mined}
    assert by_query["Oil prices climb"] == ["OPEC agreed to cut crude oil output."]
    assert by_query["OPEC cuts output"] == ["Crude oil rose 2% on supply fears."]
    assert all(m["positive"] not in m["negatives"] for m in mined)
