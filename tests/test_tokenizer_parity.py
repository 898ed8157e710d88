"""The in-graph tokenizer gives Hugging Face's fast-tokenizer ids and offsets (fixtures from transformers)."""

import hashlib
import json

import pytest
import tensorflow as tf

from conftest import EXPECTED, ROOT
from kbert.errors import TokenizerError
from kbert.tokenizer import BertTokenizer

EXPECTED_TOKENS = json.loads((EXPECTED / "tokenizer.json").read_text())
STRINGS = EXPECTED_TOKENS["strings"]
NAMES = list(EXPECTED_TOKENS["tokenizers"])


@pytest.fixture(scope="module")
def tokenizers(minilm_path):
    out = {}
    for name, spec in EXPECTED_TOKENS["tokenizers"].items():
        folder = minilm_path if name == "minilm" else ROOT / spec["source"]
        out[name] = BertTokenizer.from_pretrained(folder)
    return out


def rows(encoding):
    ids, segments = encoding.token_ids.to_list(), encoding.segment_ids.to_list()
    offsets = [[[s, e] for s, e in zip(a, b)] for a, b in zip(encoding.starts.to_list(), encoding.ends.to_list())]
    return ids, segments, offsets


@pytest.mark.parametrize("name", NAMES)
def test_single_texts(name, tokenizers):
    ids, segments, offsets = rows(tokenizers[name].encode(tf.constant(STRINGS), max_length=100_000))
    for i, want in enumerate(EXPECTED_TOKENS["tokenizers"][name]["single"]):
        got = {"input_ids": ids[i], "token_type_ids": segments[i], "offsets": offsets[i]}
        assert got == {k: want[k] for k in got}, f"{name}: string {i} {STRINGS[i]!r}"


@pytest.mark.parametrize("name", NAMES)
def test_pairs_and_truncation(name, tokenizers):
    tok = tokenizers[name]
    for case in EXPECTED_TOKENS["tokenizers"][name]["pairs"]:
        call = lambda: tok.encode(tf.constant([case["text"]]), tf.constant([case["text_pair"]]),  # noqa: E731
                                  max_length=case["max_length"], truncation=case["truncation"])
        if "error" in case:
            with pytest.raises(TokenizerError, match="cannot make it fit"):
                call()
            continue
        ids, segments, offsets = rows(call())
        assert (ids[0], segments[0], offsets[0]) == (case["input_ids"], case["token_type_ids"], case["offsets"]), case


@pytest.mark.parametrize("name", NAMES)
def test_overflow_windows(name, tokenizers):
    tok = tokenizers[name]
    for case in EXPECTED_TOKENS["tokenizers"][name]["windows"]:
        if case["kind"] == "single":
            enc = tok.encode(tf.constant(case["texts"]), max_length=case["max_length"], stride=case["stride"])
        else:
            enc = tok.encode(tf.constant(case["questions"]), tf.constant(case["contexts"]),
                             max_length=case["max_length"], stride=case["stride"], truncation=case["truncation"])
        ids, segments, offsets = rows(enc)
        assert ids == case["input_ids"] and segments == case["token_type_ids"] and offsets == case["offsets"]
        assert enc.sample_index.numpy().tolist() == case["overflow_to_sample_mapping"]


@pytest.mark.parametrize("name", NAMES)
def test_batch_padding(name, tokenizers):
    case = EXPECTED_TOKENS["tokenizers"][name]["batch_padding"]
    padded = tokenizers[name].encode(tf.constant(case["texts"])).padded()
    assert padded["token_ids"].numpy().tolist() == case["input_ids"]
    assert padded["padding_mask"].numpy().tolist() == case["attention_mask"]


def _real_texts(data):
    sst2 = (data / "sst2" / "train.tsv").read_text(encoding="utf-8").split("\n")[1:1001]
    texts = {("sst2/train.tsv", i): line.split("\t")[0] for i, line in enumerate(sst2)}
    blocks = (data / "wnut17" / "emerging.dev.conll").read_text(encoding="utf-8").split("\n\n")
    sentences = [" ".join(l.split("\t")[0] for l in b.split("\n") if l.strip()) for b in blocks if b.strip()]
    texts.update({("wnut17/emerging.dev.conll", i): s for i, s in enumerate(sentences)})
    return texts


def test_real_sst2_and_wnut17_texts(shared_data, tokenizers):
    items = json.loads((EXPECTED / "tokenizer_real_data.json").read_text())["items"]
    texts = _real_texts(shared_data)
    batch = [texts[(item["src"], item["i"])] for item in items]
    for item, text in zip(items, batch):
        assert hashlib.sha256(text.encode()).hexdigest() == item["sha256"], f"data changed: {item['src']}:{item['i']}"
    ids, _, offsets = rows(tokenizers["minilm"].encode(tf.constant(batch), max_length=100_000))
    mismatches = [(it["src"], it["i"]) for k, it in enumerate(items)
                  if ids[k] != it["input_ids"] or offsets[k] != it["offsets"]]
    assert not mismatches, f"{len(mismatches)} of {len(items)} differ, e.g. {mismatches[:5]}"
