"""kbert.tasks.token_classification.aggregation reproduces transformers' token-classification postprocessing (no model needed).

Every call recorded by tests/fixtures/make_token_fixtures.py is replayed from the per-window data HF's
postprocess received (ids, tokens, offsets, special mask, float32 logits) and compared to HF's output.
"""

import dataclasses
import enum
import json

import numpy as np
import pytest

from conftest import EXPECTED
from kbert.errors import InputError
from kbert.tasks.token_classification.aggregation import (
    AGGREGATION_STRATEGIES, TokenWindow, aggregate_overlapping_entities, check_aggregation_strategy, check_stride,
    convert_tokens_to_string, shift_word_offsets, softmax, token_entities, words_to_text)

DATA = json.loads((EXPECTED / "token_pipelines.json").read_text())
ARRAYS = np.load(EXPECTED / "token_pipelines.npz")
CASES = [c for c in DATA["cases"] if "output" in c]
ERRORS = [c for c in DATA["cases"] if "error" in c]


def case_id(case):
    inputs = case["inputs"] if isinstance(case["inputs"], str) else json.dumps(case["inputs"], ensure_ascii=False)
    return f"{case['checkpoint']}-{inputs[:24]!r}-{json.dumps(case['kwargs'])}"


def checkpoint(name):
    info = DATA["checkpoints"][name]
    return {int(k): v for k, v in info["id2label"].items()}, info


def load_windows(key, absolute=False):
    """(text, [TokenWindow], word_starts) of one recorded input item, as HF's postprocess received it.

    For word lists the offsets are inside each word (with word ids), or, with ``absolute``, already shifted.
    """
    entry = DATA["encodings"][key]
    text, word_starts = entry["sentence"], None
    if "words" in entry:
        text, word_starts = words_to_text(entry["words"], entry["delimiter"])
        assert text == entry["sentence"]
        assert [[s, s + len(w)] for s, w in zip(word_starts, entry["words"])] == entry["word_to_chars_map"]
    windows = []
    for i, w in enumerate(entry["windows"]):
        offsets = np.array(w["offsets"], dtype=np.int64).reshape(-1, 2)
        starts, ends, word_ids = offsets[:, 0], offsets[:, 1], w.get("word_ids")
        if absolute and word_ids is not None:
            starts, ends = shift_word_offsets(starts, ends, word_ids, word_starts)
            word_ids = None
        logits = ARRAYS[f"{key}/{i}"]
        assert logits.dtype == np.float32 and logits.shape[0] == len(w["input_ids"])
        windows.append(TokenWindow(token_ids=np.array(w["input_ids"]), tokens=w["tokens"], starts=starts, ends=ends,
                                   special=np.array(w["special_tokens_mask"], dtype=bool), logits=logits,
                                   word_ids=word_ids))
    return text, windows, word_starts


def run_case(case, absolute=False, **overrides):
    """kbert's result for each input item of a recorded call (HF nests one level per item list)."""
    id2label, info = checkpoint(case["checkpoint"])
    kwargs = {k: v for k, v in case["kwargs"].items() if k in ("aggregation_strategy", "ignore_labels")}
    kwargs.update(overrides)
    decoder = info["decoder"]
    results = []
    for key in case["encodings"]:
        text, windows, word_starts = load_windows(key, absolute)
        results.append(token_entities(text, windows, id2label, unk_token_id=info["unk_token_id"],
                                      word_starts=word_starts,
                                      subword_prefix=decoder["prefix"], decoder_cleanup=decoder["cleanup"], **kwargs))
    return results


def expected_items(case):
    return [case["output"]] if isinstance(case["inputs"], str) else case["output"]


def assert_same_entities(got, want, where):
    assert len(got) == len(want), f"{where}: {len(got)} entities, HF {len(want)}\n{got}\n{want}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert list(g) == list(w), f"{where}[{i}]: keys {list(g)} vs HF {list(w)}"
        for key, value in w.items():
            if key == "score":
                assert type(g[key]) is float, f"{where}[{i}]: score is {type(g[key])}"
                assert g[key] == pytest.approx(value, rel=1e-6, abs=0), f"{where}[{i}]: {g} vs HF {w}"
            else:
                assert type(g[key]) is type(value) and g[key] == value, f"{where}[{i}].{key}: {g} vs HF {w}"


# --- parity with the recorded pipeline calls ----------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_transformers_pipeline(case):
    want_items = expected_items(case)
    got_items = run_case(case)
    assert len(got_items) == len(want_items)
    for n, (got, want) in enumerate(zip(got_items, want_items)):
        assert_same_entities(got, want, f"{case_id(case)} item {n}")


def test_word_lists_with_offsets_already_absolute():
    cases = [c for c in CASES if c["kwargs"].get("is_split_into_words")]
    assert len(cases) >= 10
    for case in cases:
        assert run_case(case, absolute=True) == run_case(case), case_id(case)


def test_fixtures_cover_what_they_claim():
    """If a regeneration lost a feature, the parity test above would silently test less."""
    for name in DATA["checkpoints"]:
        id2label, _ = checkpoint(name)
        tags = {label.split("-", 1)[-1] for label in id2label.values()} - {"O"}
        cases = [c for c in CASES if c["checkpoint"] == name]
        for strategy in AGGREGATION_STRATEGIES:
            outs = [e for c in cases if c["kwargs"].get("aggregation_strategy", "none") == strategy
                    for item in expected_items(c) for e in item]
            key = "entity" if strategy == "none" else "entity_group"
            assert len({e[key] for e in outs}) >= min(3, len(tags)), (name, strategy)  # a mix, not all one
        multi = [c for c in cases if any(len(DATA["encodings"][k]["windows"]) > 1 for k in c["encodings"])]
        assert {c["kwargs"].get("aggregation_strategy", "none") for c in multi} == set(AGGREGATION_STRATEGIES), name
        grouped = [e for c in cases if c["kwargs"].get("aggregation_strategy") == "simple"
                   for item in expected_items(c) for e in item]
        assert any(" " in e["word"] or e["end"] - e["start"] > len(e["word"]) for e in grouped)
        assert any(c["kwargs"].get("is_split_into_words") for c in cases)
        assert any(c["kwargs"].get("ignore_labels") == [] for c in cases)
        tokens = [t for enc in DATA["encodings"].values() if enc["checkpoint"] == name
                  for w in enc["windows"] for t in w["tokens"]]
        assert "[UNK]" in tokens and "[PAD]" in tokens and any(t.startswith("##") for t in tokens)


def test_nfd_accent_makes_a_word_a_subword_as_in_hf():
    """Uncased MiniLM: 'Zu\u0308rich' → token 'zurich' (6) over 7 characters, so HF glues it to 'in'."""
    case = next(c for c in CASES if c["checkpoint"] == "minilm-ner-head" and isinstance(c["inputs"], str)
                and c["inputs"].startswith("The cafe\u0301")
                and c["kwargs"] == {"aggregation_strategy": "first"})
    words = [e["word"] for e in case["output"]]
    assert "in zurich" in words
    assert [e["word"] for e in run_case(case)[0]] == words


def test_ignore_labels_none_is_hf_default():
    for case in CASES:
        if "ignore_labels" not in case["kwargs"]:
            assert run_case(case, ignore_labels=None) == run_case(case, ignore_labels=["O"])
            return
    pytest.fail("no case without ignore_labels")


def test_ignore_labels_filters_groups_by_their_tag():
    case = next(c for c in CASES if c["checkpoint"] == "tiny-cased-token-cls"
                and c["kwargs"].get("ignore_labels") == ["O", "PER"])
    assert case["output"] and all(e["entity_group"] != "PER" for e in case["output"])
    assert_same_entities(run_case(case)[0], case["output"], case_id(case))


# --- HF's errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ERRORS, ids=case_id)
def test_hf_errors_are_input_errors(case):
    info = DATA["checkpoints"][case["checkpoint"]]
    kwargs, error = case["kwargs"], case["error"]
    if error["type"] == "KeyError":  # unknown aggregation_strategy
        with pytest.raises(InputError, match="aggregation_strategy 'mean' is not one of"):
            check_aggregation_strategy(kwargs["aggregation_strategy"])
    elif error["type"] == "ValueError":  # HF's _sanitize_parameters
        with pytest.raises(InputError, match="stride"):
            check_stride(kwargs["stride"], kwargs.get("aggregation_strategy"), info["model_max_length"])
    else:  # the fast tokenizer panics when it must make windows with stride >= max_length - 2
        assert error["type"] == "PanicException" and "stride" in error["message"]
        assert check_stride(kwargs["stride"], kwargs["aggregation_strategy"], info["model_max_length"]) == \
            kwargs["stride"]  # not refused up front: HF accepts it for a text that fits in one window
        seed = DATA["cases"][0]["inputs"]  # the seed text: one window, and HF answers
        assert any(c["kwargs"] == kwargs and c["inputs"] == seed for c in CASES)


def test_check_stride():
    assert check_stride(None, "none", 512) is None
    assert check_stride(16, None, 64) == 16  # no strategy given: allowed, HF post-processes with "none"
    assert check_stride(0, "simple", 64) == 0
    with pytest.raises(InputError, match='aggregation_strategy="none"'):
        check_stride(16, "NONE", 64)
    with pytest.raises(InputError, match="model_max_length"):
        check_stride(64, "first", 64)
    for bad in (-1, 1.5, "16", True):
        with pytest.raises(InputError, match="stride"):
            check_stride(bad, "first", 64)


def test_check_aggregation_strategy_accepts_what_hf_accepts():
    class Strategy(str, enum.Enum):  # like transformers' AggregationStrategy (an ExplicitEnum)
        MAX = "max"

    @dataclasses.dataclass
    class ValueOnly:
        value: str

    assert [check_aggregation_strategy(s.upper()) for s in AGGREGATION_STRATEGIES] == list(AGGREGATION_STRATEGIES)
    assert check_aggregation_strategy(Strategy.MAX) == "max"
    assert check_aggregation_strategy(ValueOnly("Average")) == "average"
    assert check_aggregation_strategy("\u017fimple") == "simple"  # 'ſ'.upper() == 'S': HF's name lookup accepts it
    for bad in ("mean", "", " simple", 3, ValueOnly("mean"), ["simple"]):
        with pytest.raises(InputError, match="aggregation_strategy"):
            check_aggregation_strategy(bad)
    window = TokenWindow(np.array([7]), ["x"], np.array([0]), np.array([1]), np.array([False]), np.zeros((1, 2)))
    with pytest.raises(InputError, match="'grouped' is not one of"):
        token_entities("x", [window], {0: "O", 1: "B-X"}, aggregation_strategy="grouped", unk_token_id=1)


# --- edge cases --------------------------------------------------------------------------------
ID2LABEL = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def window(tokens, spans, logits, ids=None, special=None):
    n = len(tokens)
    return TokenWindow(token_ids=np.array(ids if ids is not None else range(10, 10 + n)), tokens=tokens,
                       starts=np.array([s for s, _ in spans]), ends=np.array([e for _, e in spans]),
                       special=np.array(special if special is not None else [0] * n, dtype=bool),
                       logits=np.array(logits, dtype=np.float32))


def test_no_windows_and_only_special_tokens_give_nothing():
    only_special = window(["[CLS]", "[SEP]", "[PAD]"], [(0, 0)] * 3, np.eye(3, 5) * 9, special=[1, 1, 1])
    for strategy in AGGREGATION_STRATEGIES:
        assert token_entities("", [], ID2LABEL, aggregation_strategy=strategy, unk_token_id=1) == []
        assert token_entities("", [only_special], ID2LABEL, aggregation_strategy=strategy, unk_token_id=1) == []
        assert token_entities("", [only_special] * 2, ID2LABEL, aggregation_strategy=strategy, unk_token_id=1) == []


def test_unk_takes_the_original_span_and_is_never_a_subword():
    text = "Sinan 😀👍 Ünal"
    logits = [[0, 9, 0, 0, 0], [0, 0, 9, 0, 0], [0, 0, 0, 9, 0]]
    win = window(["Sinan", "[UNK]", "Ünal"], [(0, 5), (6, 8), (9, 13)], logits, ids=[20, 1, 21])
    got = token_entities(text, [win], ID2LABEL, aggregation_strategy="none", unk_token_id=1)
    assert [e["word"] for e in got] == ["Sinan", "😀👍", "Ünal"]
    got = token_entities(text, [win], ID2LABEL, aggregation_strategy="first", unk_token_id=1)
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in got] == [
        ("PER", "Sinan 😀👍", 0, 8), ("LOC", "Ünal", 9, 13)]
    # the same token string with another id is a subword of "Sinan" (5 characters vs 2)
    win = window(["Sinan", "[UNK]", "Ünal"], [(0, 5), (6, 8), (9, 13)], logits, ids=[20, 2, 21])
    got = token_entities(text, [win], ID2LABEL, aggregation_strategy="first", unk_token_id=1)
    assert [e["word"] for e in got] == ["Sinan [UNK]", "Ünal"]


def test_word_strategies_pick_labels_as_hf():
    text = "Istanbul"
    # first token says B-LOC weakly; the subword says I-PER strongly
    logits = [[0, 0, 0, 1.0, 0], [0, 0, 4.0, 0, 0]]
    win = window(["Istan", "##bul"], [(0, 5), (5, 8)], logits)

    def run(strategy):
        (entity,) = token_entities(text, [win], ID2LABEL, aggregation_strategy=strategy, unk_token_id=1)
        return entity["entity_group"], entity["word"], round(entity["score"], 6)

    scores = softmax(np.array(logits, dtype=np.float32))
    mean = scores.mean(0)
    assert run("first") == ("LOC", "Istanbul", round(float(scores[0, 3]), 6))
    assert run("max") == ("PER", "Istanbul", round(float(scores[1, 2]), 6))
    assert run("average") == ("PER", "Istanbul", round(float(mean[2]), 6))
    simple = token_entities(text, [win], ID2LABEL, aggregation_strategy="simple", unk_token_id=1)
    assert [(e["entity_group"], e["word"]) for e in simple] == [("LOC", "Istan"), ("PER", "##bul")]


def test_grouping_b_starts_a_group_and_plain_labels_continue():
    labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "MISC"}
    text = "a b c d e f"
    spans = [(i, i + 1) for i in range(0, 11, 2)]
    picks = [1, 2, 1, 1, 3, 3]  # B I | B | B | MISC MISC
    logits = np.eye(4, dtype=np.float32)[picks] * 5
    got = token_entities(text, [window(list("abcdef"), spans, logits)], labels, aggregation_strategy="simple",
                         unk_token_id=1)
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in got] == [
        ("PER", "a b", 0, 3), ("PER", "c", 4, 5), ("PER", "d", 6, 7), ("MISC", "e f", 8, 11)]


def test_overlapping_windows_keep_the_longer_then_the_better_entity():
    spans = [(9, 10, 0.9), (3, 9, 0.2), (3, 9, 0.2), (3, 9, 0.1), (0, 5, 0.5)]
    ents = [{"start": s, "end": e, "score": p, "id": i} for i, (s, e, p) in enumerate(spans)]
    # sorted by start (stable): (0,5) is replaced by the longer (3,9); of the equal (3,9) the first best stays
    assert [e["id"] for e in aggregate_overlapping_entities(ents)] == [1, 0]
    assert aggregate_overlapping_entities([]) == []


def test_decoder_matches_tokenizers_wordpiece():
    # Values from tokenizers 0.22 decoders.WordPiece(prefix="##", cleanup=True).decode(...)
    assert convert_tokens_to_string(["x do not"]) == "x don't"
    assert convert_tokens_to_string(["a", "do not"]) == "a don't"
    assert convert_tokens_to_string(["a", "' "]) == "a'"
    assert convert_tokens_to_string(["a", "##b", ".", "?", "!", ",", "'s", "'ve", "'re", "n't"]) == \
        "ab.?!,'s've'ren't"
    assert convert_tokens_to_string(["##a", "##b"]) == "##ab"
    assert convert_tokens_to_string(["Sinan", ".", "##is", "a", ",", "##b", "'", "s", "!"]) == "Sinan.is a,b ' s!"
    assert convert_tokens_to_string(["a", "##b", "."], cleanup=False) == "ab ."


def test_split_words_offsets():
    text, word_starts = words_to_text(["New", "York", "City"], delimiter="__")
    assert text == "New__York__City" and word_starts == [0, 5, 11]
    starts, ends = shift_word_offsets([0, 0, 0, 2, 0, 0], [0, 3, 2, 4, 4, 0], [None, 0, 1, 1, 2, None], word_starts)
    assert starts.tolist() == [0, 0, 5, 7, 11, 0] and ends.tolist() == [0, 3, 7, 9, 15, 0]
    assert words_to_text([]) == ("", [])


def test_half_precision_logits_are_upcast_like_hf():
    logits = np.array([[0.1, 3.3, 0.2, 0.0, -1.0]], dtype=np.float16)
    got = token_entities("x", [window(["x"], [(0, 1)], logits)], ID2LABEL, unk_token_id=1)
    assert got[0]["score"] == float(softmax(logits.astype(np.float32))[0, 1])


def test_window_shapes_are_checked():
    with pytest.raises(InputError, match="TokenWindow: 2 tokens"):
        TokenWindow(np.array([1, 2]), ["a", "b"], np.array([0, 1]), np.array([1]), np.array([0, 0]), np.zeros((2, 3)))
    with pytest.raises(InputError, match="logits"):
        TokenWindow(np.array([1]), ["a"], np.array([0]), np.array([1]), np.array([0]), np.zeros((2, 3)))
    with pytest.raises(InputError, match="word_ids"):
        TokenWindow(np.array([1]), ["a"], np.array([0]), np.array([1]), np.array([0]), np.zeros((1, 3)), [0, 1])
