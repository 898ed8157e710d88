"""The DistilBERT, ELECTRA and MPNet checkpoints' tokenizers give their fast tokenizers' ids, token types, offsets
and special-token masks (fixtures from transformers: tests/fixtures/make_family_fixtures.py).

DistilBERT and MPNet return no token type ids (only ids are compared there); MPNet has mpnet-base's vocabulary
layout, pairs ``<s> A </s></s> B </s>`` and a ``<mask>`` that takes the space before it (lstrip).
"""

import json

import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS, EXPECTED
from kbert.errors import TokenizerError
from kbert.tokenizer.subword import SPECIAL

EXPECTED_TOKENS = json.loads((EXPECTED / "families_tokenizers.json").read_text())
STRINGS = EXPECTED_TOKENS["strings"]
FAMILIES = list(EXPECTED_TOKENS["families"])


@pytest.fixture(scope="module")
def tokenizers():
    cache = {}

    def get(family):
        if family not in cache:
            folder = CHECKPOINTS / EXPECTED_TOKENS["families"][family]["checkpoint"]
            cache[family] = kbert.load_checkpoint(folder).tokenizer
        return cache[family]

    return get


def rows(encoding, with_types: bool) -> list[dict]:
    """Each row of an encoding as the fixture stores it."""
    ids, segments, sequences = (t.to_list() for t in (encoding.token_ids, encoding.segment_ids, encoding.sequence_ids))
    starts, ends = encoding.starts.to_list(), encoding.ends.to_list()
    out = []
    for i in range(len(ids)):
        row = {"input_ids": ids[i]}
        if with_types:
            row["token_type_ids"] = segments[i]
        row["offsets"] = [x for pair in zip(starts[i], ends[i]) for x in pair]
        row["special_tokens_mask"] = [int(s == SPECIAL) for s in sequences[i]]
        out.append(row)
    return out


def test_the_fixture_holds_the_surprises():
    families = EXPECTED_TOKENS["families"]
    assert {f: families[f]["returns_token_type_ids"] for f in FAMILIES} == \
        {"distilbert": False, "electra": True, "mpnet": False}
    pair = families["mpnet"]["pairs"][0]
    assert pair["input_ids"][0] == 0 and pair["input_ids"][-1] == 2 and [2, 2] == pair["input_ids"][
        pair["input_ids"].index(2):pair["input_ids"].index(2) + 2]  # <s> A </s></s> B </s>
    mask = STRINGS.index("Hello <mask>!")
    assert families["mpnet"]["single"][mask]["offsets"][4:6] == [5, 12]  # <mask> took the space before it


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_tokenizer_basics(family, tokenizers):
    tok = tokenizers(family)
    assert tok.model_max_length == 256


@pytest.mark.parametrize("family", FAMILIES)
def test_single_texts(family, tokenizers):
    expected = EXPECTED_TOKENS["families"][family]
    got = rows(tokenizers(family).encode(tf.constant(STRINGS), max_length=100_000), expected["returns_token_type_ids"])
    mismatches = [i for i, (ours, theirs) in enumerate(zip(got, expected["single"])) if ours != theirs]
    assert len(got) == len(STRINGS) and not mismatches, \
        f"{family}: {len(mismatches)} of {len(STRINGS)} differ, e.g. {[STRINGS[i] for i in mismatches[:5]]}"


@pytest.mark.parametrize("family", FAMILIES)
def test_pairs_and_truncation(family, tokenizers):
    expected = EXPECTED_TOKENS["families"][family]
    tok = tokenizers(family)
    for case in expected["pairs"]:
        def call():
            return tok.encode(tf.constant([case["text"]]), tf.constant([case["text_pair"]]),
                              max_length=case["max_length"], truncation=case["truncation"])
        if "error" in case:
            with pytest.raises(TokenizerError, match="cannot make it fit"):
                call()
            continue
        [got] = rows(call(), expected["returns_token_type_ids"])
        assert got == {k: case[k] for k in got}, case


@pytest.mark.parametrize("family", FAMILIES)
def test_overflow_windows(family, tokenizers):
    expected = EXPECTED_TOKENS["families"][family]
    tok = tokenizers(family)
    for case in expected["windows"]:
        if case["kind"] == "single":
            encoding = tok.encode(tf.constant(case["texts"]), max_length=case["max_length"], stride=case["stride"])
        else:
            encoding = tok.encode(tf.constant(case["texts"]), tf.constant(case["text_pairs"]),
                                  max_length=case["max_length"], stride=case["stride"], truncation=case["truncation"])
        assert rows(encoding, expected["returns_token_type_ids"]) == case["rows"], case
        assert encoding.sample_index.numpy().tolist() == case["overflow_to_sample_mapping"]
