"""Entity-level sequence-labelling metrics against seqeval 1.2.2 (default mode) and scikit-learn.

seqeval computes kbert's entity numbers; these tests call seqeval directly on the same tags and
require kbert's chunks and scores to equal its own to 1e-12, so they guard kbert's glue: input
checks, joining sentences, the counts, the layout of the result and its plain float/int values.
The property tests draw many random tag sequences (valid IOB1/IOB2/IOE/IOBES, malformed ones,
types with hyphens, tags without a prefix); the real-data tests use WNUT-17 (entities) and UD EWT
(POS tags).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import sklearn.metrics

from kbert.errors import InputError
from kbert.tasks.token_classification.entity_metrics import entity_scores, get_entities, tagging_metrics, token_accuracy

TOL = 1e-12
TYPES = ["PER", "LOC", "creative-work", "a-b-c"]
# Odd tags seqeval still chunks: no prefix, bare prefixes, "." (never ends a chunk by type), "O-X".
ODD_TAGS = ["PER", "X", "B", "I", "E", "S", ".", "O-X", "Bcreative-work", "I-", "B-_"]


def _random_tag(rng: np.random.Generator, types: list[str], odd: float, suffix: bool = False) -> str:
    if rng.random() < odd:
        return str(rng.choice(ODD_TAGS))
    prefix = str(rng.choice(["B", "I", "E", "S", "O", "O", "O"]))
    if prefix == "O":
        return "O"
    type_ = str(rng.choice(types))
    return f"{type_}-{prefix}" if suffix else f"{prefix}-{type_}"


def _random_corpus(rng, *, odd: float, suffix: bool = False, types=TYPES):
    lengths = rng.integers(0, 12, size=int(rng.integers(1, 8)))
    return [[_random_tag(rng, types, odd, suffix) for _ in range(n)] for n in lengths]


def _perturb(rng, corpus, rate: float, *, odd: float = 0.0, suffix: bool = False):
    return [[_random_tag(rng, TYPES, odd, suffix) if rng.random() < rate else tag for tag in sentence]
            for sentence in corpus]


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL


def _seqeval_reference(y_true, y_pred, suffix=False) -> dict:
    """seqeval's default-mode numbers in the layout of :func:`entity_scores`."""
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # UndefinedMetricWarning, "seems not to be NE tag", empty mean
        report = classification_report(y_true, y_pred, output_dict=True, suffix=suffix)
        ref = {
            "precision": float(precision_score(y_true, y_pred, suffix=suffix)),
            "recall": float(recall_score(y_true, y_pred, suffix=suffix)),
            "f1": float(f1_score(y_true, y_pred, suffix=suffix)),
            "accuracy": accuracy_score(y_true, y_pred) if sum(map(len, y_true)) else None,
        }
    averages = {"micro avg": "", "macro avg": "macro_", "weighted avg": "weighted_"}
    ref["per_type"] = {}
    for row, values in report.items():
        if row in averages:
            for metric in ("precision", "recall"):
                ref[averages[row] + metric] = float(values[metric])
            ref[averages[row] + "f1"] = float(values["f1-score"])
            if row == "micro avg":
                ref["true_entities"] = int(values["support"])
        else:
            ref["per_type"][row] = {"precision": float(values["precision"]), "recall": float(values["recall"]),
                                    "f1": float(values["f1-score"]), "support": int(values["support"])}
    return ref


def _assert_matches_seqeval(y_true, y_pred, suffix=False):
    from seqeval.metrics.sequence_labeling import get_entities as seqeval_entities

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for corpus in (y_true, y_pred):
            assert get_entities(corpus, suffix=suffix) == seqeval_entities(corpus, suffix=suffix)
            for sentence in corpus:
                assert get_entities(sentence, suffix=suffix) == seqeval_entities(list(sentence), suffix=suffix)
        n_pred = len(set(seqeval_entities(y_pred, suffix=suffix)))
    ref = _seqeval_reference(y_true, y_pred, suffix)
    ours = entity_scores(y_true, y_pred, suffix=suffix)
    context = f"y_true={y_true} y_pred={y_pred}"
    for key in ("precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1",
                "weighted_precision", "weighted_recall", "weighted_f1"):
        assert _close(ours[key], ref[key]), (key, ours[key], ref[key], context)
    assert ours["true_entities"] == ref["true_entities"], context
    assert ours["predicted_entities"] == n_pred, context
    assert list(ours["per_type"]) == list(ref["per_type"]), context
    for name, row in ref["per_type"].items():
        mine = ours["per_type"][name]
        assert mine["support"] == row["support"], (name, context)
        for key in ("precision", "recall", "f1"):
            assert _close(mine[key], row[key]), (name, key, mine[key], row[key], context)
    if ref["accuracy"] is not None:
        assert token_accuracy(y_true, y_pred) == pytest.approx(ref["accuracy"], abs=TOL)
    return ours


# --- property tests against seqeval ---------------------------------------------------------------
@pytest.mark.parametrize("odd", [0.0, 0.15])
def test_random_sequences_match_seqeval(odd):
    rng = np.random.default_rng(1234 + int(odd * 100))
    nonzero = 0
    for _ in range(400):
        y_true = _random_corpus(rng, odd=odd)
        # Half the cases: a perturbed copy of y_true (many correct entities); else independent tags.
        y_pred = _perturb(rng, y_true, 0.25, odd=odd) if rng.random() < 0.5 else \
            [[_random_tag(rng, TYPES, odd) for _ in sentence] for sentence in y_true]
        ours = _assert_matches_seqeval(y_true, y_pred)
        nonzero += ours["correct_entities"] > 0 and ours["f1"] < 1.0
    assert nonzero > 50    # the draws exercise partial matches, not only all-or-nothing cases


def test_random_suffix_tags_match_seqeval():
    rng = np.random.default_rng(77)
    for _ in range(200):
        y_true = _random_corpus(rng, odd=0.0, suffix=True)
        y_pred = _perturb(rng, y_true, 0.3, suffix=True)
        _assert_matches_seqeval(y_true, y_pred, suffix=True)


def test_malformed_chunks_match_seqeval():
    """Stale chunk starts (after ".", bare tags) and a chunk running across the sentence separator."""
    cases = [
        (["PER", "PER", "B", "O-X", ".", "E-_", "Bcreative-work"], ["O"] * 7),
        (["B-PER", ".", "I-PER", "E-PER", "S-LOC", "I-LOC", "E-LOC", "E-LOC"], ["I-PER"] * 8),
        (["I-PER", "I-LOC", "I-LOC", "O", "E-PER", "E-PER", "S-PER", "I-PER"], ["B-PER"] * 8),
    ]
    for y_true, y_pred in cases:
        _assert_matches_seqeval([y_true], [y_pred])
    _assert_matches_seqeval([["X"], [".", "E-_"]], [["O"], ["O", "O"]])
    assert get_entities([["X"], [".", "E-_"]]) == [("_", 0, 3)]     # spans the joining "O", as in seqeval


def test_no_entities_and_empty_sentences_match_seqeval():
    _assert_matches_seqeval([["O", "O"], []], [["O", "O"], []])         # macro is nan, like seqeval
    _assert_matches_seqeval([["O", "O"]], [["B-PER", "O"]])             # no true entity: weighted 0
    _assert_matches_seqeval([["B-PER", "O"]], [["O", "O"]])             # no prediction: precision 0


# --- hand-computed cases --------------------------------------------------------------------------
def test_hand_case_iob2():
    y_true = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-creative-work"],
              ["B-ORG", "O", "B-PER"]]
    y_pred = [["B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-creative-work"],
              ["I-ORG", "O", "B-LOC"]]
    scores = entity_scores(y_true, y_pred)
    # True: PER(0,1) LOC(3,4) creative-work(6,6) ORG(8,8) PER(10,10). Pred: PER(0,1) LOC(3,3)
    # creative-work(6,6) ORG(8,8) (an I- after the sentence start opens a chunk) LOC(10,10).
    assert scores["true_entities"] == 5 and scores["predicted_entities"] == 5
    assert scores["correct_entities"] == 3
    assert scores["precision"] == scores["recall"] == scores["f1"] == 0.6
    assert scores["per_type"]["PER"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["per_type"]["creative-work"]["f1"] == 1.0
    assert list(scores["per_type"]) == ["LOC", "ORG", "PER", "creative-work"]
    assert scores["macro_f1"] == pytest.approx((0 + 1 + 2 / 3 + 1) / 4, abs=TOL)
    assert scores["weighted_f1"] == pytest.approx((0 * 1 + 1 * 1 + 2 / 3 * 2 + 1 * 1) / 5, abs=TOL)
    assert token_accuracy(y_true, y_pred) == 7 / 10


def test_get_entities_schemes():
    assert get_entities(["B-PER", "I-PER", "E-PER", "S-LOC", "O"]) == [("PER", 0, 2), ("LOC", 3, 3)]  # IOBES
    assert get_entities(["I-PER", "I-PER", "B-PER", "O"]) == [("PER", 0, 1), ("PER", 2, 2)]           # IOB1
    assert get_entities(["I-PER", "E-PER", "E-PER"]) == [("PER", 0, 1), ("PER", 2, 2)]                # IOE
    assert get_entities(["B-PER", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1)]                         # type switch
    assert get_entities(["B-a-b", "I-a-b"]) == [("a-b", 0, 1)]
    assert get_entities([]) == []


def test_all_o_scores_zero():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert math.isnan(scores["macro_f1"]) and scores["per_type"] == {}
    assert scores["weighted_f1"] == 0.0


def test_no_sentences():
    scores = entity_scores([], [])
    assert (scores["f1"], scores["true_entities"], scores["predicted_entities"], scores["per_type"]) == (0.0, 0, 0, {})
    assert math.isnan(scores["macro_f1"])
    assert get_entities([]) == [] and get_entities([[], []]) == []


def test_tuples_and_other_sequences_are_accepted():
    # seqeval itself needs lists of lists; kbert accepts any sequence of sequences
    y_true = [["B-PER", "I-PER", "O"], ["B-LOC"]]
    y_pred = [["B-PER", "O", "O"], ["B-LOC"]]
    as_tuples = entity_scores(tuple(map(tuple, y_true)), (tuple(s) for s in y_pred))
    assert as_tuples == entity_scores(y_true, y_pred)
    assert get_entities(tuple(map(tuple, y_true))) == get_entities(y_true) == [("PER", 0, 1), ("LOC", 4, 4)]
    assert get_entities(("B-PER", "I-PER")) == [("PER", 0, 1)]
    assert token_accuracy(tuple(map(tuple, y_true)), y_pred) == 0.75


def test_silent_and_json_safe():
    y_true = [["PER", "B-LOC", "X"], ["O"]]            # tags seqeval warns about ("seems not to be NE tag")
    y_pred = [["O", "O", "O"], ["O"]]                  # no prediction: undefined precision
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = entity_scores(y_true, y_pred)
        out = tagging_metrics(y_true, y_pred)
        entity_scores([["O"]], [["O"]])                 # no type at all: macro is a mean of nothing
        get_entities(y_true)
    for key, value in scores.items():
        assert type(value) is (dict if key == "per_type" else int if key.endswith("_entities") else float), key
    assert all(type(row[k]) is float for row in scores["per_type"].values() for k in ("precision", "recall", "f1"))
    assert all(type(row["support"]) is int for row in scores["per_type"].values())
    assert type(out["token_accuracy"]) is float
    json.dumps(out)


# --- tagging_metrics -------------------------------------------------------------------------------
def test_tagging_metrics_entities():
    y_true = [["B-PER", "I-PER", "O"], ["B-LOC"]]
    y_pred = [["B-PER", "I-PER", "O"], ["O"]]
    out = tagging_metrics(y_true, y_pred)
    assert set(out) == {"entity_f1", "precision", "recall", "token_accuracy", "per_type"}
    assert (out["precision"], out["recall"], out["token_accuracy"]) == (1.0, 0.5, 0.75)
    assert out["entity_f1"] == pytest.approx(2 / 3, abs=TOL)
    assert out["per_type"]["LOC"]["support"] == 1


def test_tagging_metrics_tags_match_sklearn():
    metrics = sklearn.metrics
    rng = np.random.default_rng(5)
    tags = ["NOUN", "VERB", "ADJ", "DET", "PUNCT", "X"]
    for _ in range(50):
        y_true = [list(rng.choice(tags[:4], size=int(rng.integers(1, 10)))) for _ in range(4)]
        y_pred = [[t if rng.random() < 0.6 else str(rng.choice(tags)) for t in s] for s in y_true]
        out = tagging_metrics(y_true, y_pred, kind="tags")
        flat_t, flat_p = sum(y_true, []), sum(y_pred, [])
        assert out["accuracy"] == pytest.approx(metrics.accuracy_score(flat_t, flat_p), abs=TOL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = metrics.f1_score(flat_t, flat_p, average="macro")
        assert out["macro_f1"] == pytest.approx(ref, abs=TOL)


# --- validation ----------------------------------------------------------------------------------
def test_mismatched_inputs_raise():
    with pytest.raises(InputError, match="y_true has 2 sentences but y_pred has 1"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 1: y_true has 2 tags but y_pred has 3"):
        entity_scores([["O"], ["O", "B-PER"]], [["O"], ["O", "O", "O"]])
    with pytest.raises(InputError, match=r"y_pred\[0\]: expected a sequence of tag strings"):
        token_accuracy([["O"]], ["O"])
    with pytest.raises(InputError, match=r"y_true\[0\]\[1\]: a tag must be a non-empty string"):
        entity_scores([["O", ""]], [["O", "O"]])
    with pytest.raises(InputError, match="no tokens"):
        token_accuracy([[]], [[]])
    with pytest.raises(InputError, match="kind must be one of entities, tags"):
        tagging_metrics([["O"]], [["O"]], kind="pos")


# --- real data -----------------------------------------------------------------------------------
def _read_wnut(path) -> list[list[str]]:
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        current.append(line.split("\t")[1])
    if current:
        sentences.append(current)
    return sentences


def test_wnut17_dev_matches_seqeval(shared_data):
    path = shared_data / "wnut17" / "emerging.dev.conll"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    gold = _read_wnut(path)
    assert len(gold) == 1009
    rng = np.random.default_rng(17)
    types = sorted({tag[2:] for sentence in gold for tag in sentence if tag != "O"})
    pred = []
    for sentence in gold:
        out = list(sentence)
        for i, tag in enumerate(out):
            r = rng.random()
            if tag != "O" and r < 0.15:
                out[i] = "O"                                          # drop
            elif tag.startswith("B-") and r < 0.25:
                out[i] = "I-" + tag[2:]                               # B- → I-
            elif tag.startswith("I-") and r < 0.25:
                out[i] = "B-" + tag[2:]                               # I- → B- (splits the entity)
            elif tag != "O" and r < 0.30:
                out[i] = tag[:2] + str(rng.choice(types))             # wrong type
            elif tag == "O" and r < 0.02:
                out[i] = "B-" + str(rng.choice(types))                # spurious entity
        if len(out) > 2 and rng.random() < 0.1:
            out = out[1:] + out[:1]                                   # shift the whole sentence
        pred.append(out)
    ours = _assert_matches_seqeval(gold, pred)
    assert ours["true_entities"] == 836 == sum(t.startswith("B-") for s in gold for t in s)
    assert 0.3 < ours["f1"] < 0.9
    perfect = entity_scores(gold, gold)
    assert perfect["f1"] == 1.0 and perfect["true_entities"] == 836


def _read_upos(path) -> list[list[str]]:
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            if current:
                sentences.append(current)
            current = []
        elif not line.startswith("#"):
            cols = line.split("\t")
            if cols[0].isdigit():                                     # skip multiword ranges and empty nodes
                current.append(cols[3])
    if current:
        sentences.append(current)
    return sentences


def test_ud_ewt_pos_tags_match_sklearn(shared_data):
    metrics = sklearn.metrics
    path = shared_data / "ud_en_ewt" / "en_ewt-ud-dev.conllu"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    gold = _read_upos(path)
    assert len(gold) == 2001
    rng = np.random.default_rng(3)
    upos = sorted({t for s in gold for t in s})
    pred = [[str(rng.choice(upos)) if rng.random() < 0.1 else t for t in s] for s in gold]
    out = tagging_metrics(gold, pred, kind="tags")
    flat_t, flat_p = sum(gold, []), sum(pred, [])
    assert out["accuracy"] == pytest.approx(metrics.accuracy_score(flat_t, flat_p), abs=TOL)
    assert out["macro_f1"] == pytest.approx(metrics.f1_score(flat_t, flat_p, average="macro"), abs=TOL)
    assert 0.85 < out["accuracy"] < 0.95
