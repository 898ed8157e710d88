"""The in-graph byte-level BPE tokenizer gives RobertaTokenizerFast's ids and offsets (fixtures from transformers)."""

import base64
import hashlib
import json
import re
import shutil
import zlib

import numpy as np
import pytest
import tensorflow as tf

from conftest import EXPECTED, FIXTURES
from kbert.errors import CheckpointNotFoundError, TokenizerError
from kbert.tokenizer import RobertaTokenizer
from kbert.tokenizer.byte_level import AddedToken
from kbert.tokenizer.subword import FIRST, SECOND, SPECIAL

EXPECTED_TOKENS = json.loads((EXPECTED / "roberta_tokenizer.json").read_text())
STRINGS = EXPECTED_TOKENS["strings"]
TINY = FIXTURES / "tokenizers" / "tiny-roberta-bpe"
NO_F0 = FIXTURES / "tokenizers" / "tiny-roberta-bpe-no-f0"
MODES = ["add_prefix_space_false", "add_prefix_space_true"]


def copy_folder(source, dest, files=None, **config_changes):
    """A copy of a tokenizer folder (only ``files`` when given), with tokenizer_config.json changed."""
    dest.mkdir(exist_ok=True)
    for path in source.iterdir():
        if files is None or path.name in files:
            shutil.copy(path, dest / path.name)
    if config_changes:
        config_file = dest / "tokenizer_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        config.update(config_changes)
        config_file.write_text(json.dumps(config))
    return dest


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    prefixed = copy_folder(TINY, tmp_path_factory.mktemp("prefixed"), add_prefix_space=True)
    return {"add_prefix_space_false": RobertaTokenizer.from_pretrained(TINY),
            "add_prefix_space_true": RobertaTokenizer.from_pretrained(prefixed)}


def rows(encoding):
    """ids and flat offsets per row, as the fixtures store them."""
    ids = encoding.token_ids.to_list()
    offsets = [[x for pair in zip(a, b) for x in pair] for a, b in zip(encoding.starts.to_list(), encoding.ends.to_list())]
    return ids, offsets


def check_rows(encoding, expected, texts, what):
    ids, offsets = rows(encoding)
    for i, want in enumerate(expected):
        got = {"input_ids": ids[i], "offsets": offsets[i]}
        assert got == {k: want[k] for k in got}, f"{what}: text {i} {texts[i]!r}"


@pytest.mark.parametrize("mode", MODES)
def test_single_texts(mode, tokenizers):
    encoding = tokenizers[mode].encode(tf.constant(STRINGS), max_length=100_000)
    check_rows(encoding, EXPECTED_TOKENS[mode]["single"], STRINGS, mode)
    assert set(encoding.segment_ids.flat_values.numpy().tolist()) == {0}  # RoBERTa has one token type
    sequence = encoding.sequence_ids.to_list()
    assert all(s[0] == s[-1] == SPECIAL and set(s[1:-1]) <= {FIRST} for s in sequence)


@pytest.mark.parametrize("mode", MODES)
def test_pairs_and_truncation(mode, tokenizers):
    tok = tokenizers[mode]
    for case in EXPECTED_TOKENS[mode]["pairs"]:
        def call():
            return tok.encode(tf.constant([case["text"]]), tf.constant([case["text_pair"]]),
                              max_length=case["max_length"], truncation=case["truncation"])
        if "error" in case:
            with pytest.raises(TokenizerError, match="cannot make it fit"):
                call()
            continue
        encoding = call()
        ids, offsets = rows(encoding)
        assert (ids[0], offsets[0]) == (case["input_ids"], case["offsets"]), case
        sequence = encoding.sequence_ids.to_list()[0]
        first_sep = sequence.index(SPECIAL, 1)
        assert sequence[first_sep:first_sep + 2] == [SPECIAL, SPECIAL] and sequence[-1] == SPECIAL  # </s></s>
        assert set(sequence[first_sep + 2:-1]) <= {SECOND}


@pytest.mark.parametrize("mode", MODES)
def test_overflow_windows(mode, tokenizers):
    tok = tokenizers[mode]
    for case in EXPECTED_TOKENS[mode]["windows"]:
        if case["kind"] == "single":
            encoding = tok.encode(tf.constant(case["texts"]), max_length=case["max_length"], stride=case["stride"])
        else:
            encoding = tok.encode(tf.constant(case["texts"]), tf.constant(case["text_pairs"]),
                                  max_length=case["max_length"], stride=case["stride"], truncation=case["truncation"])
        ids, offsets = rows(encoding)
        assert ids == case["input_ids"], case
        assert offsets == case["offsets"], case
        assert encoding.sample_index.numpy().tolist() == case["overflow_to_sample_mapping"]


@pytest.mark.parametrize("mode", MODES)
def test_batch_padding(mode, tokenizers):
    case = EXPECTED_TOKENS[mode]["batch_padding"]
    tok = tokenizers[mode]
    padded = tok.encode(tf.constant(case["texts"])).padded(pad_id=tok.pad_id)
    assert padded["token_ids"].numpy().tolist() == case["input_ids"]
    assert padded["padding_mask"].numpy().tolist() == case["attention_mask"]


def test_untrimmed_offsets(tmp_path):
    tok = RobertaTokenizer.from_pretrained(copy_folder(TINY, tmp_path, trim_offsets=False))
    texts = EXPECTED_TOKENS["roberta_strings"]
    check_rows(tok.encode(tf.constant(texts)), EXPECTED_TOKENS["trim_offsets_false"]["single"], texts, "untrimmed")


def test_word_starts_follow_hf_word_ids(tokenizers):
    texts = EXPECTED_TOKENS["roberta_strings"]
    starts = tokenizers["add_prefix_space_false"].tokenize(tf.constant(texts)).word_starts.to_list()
    for text, got, word_ids in zip(texts, starts, EXPECTED_TOKENS["word_ids"]):
        words = word_ids[1:-1]  # without <s> and </s>
        assert got == [i == 0 or w != words[i - 1] for i, w in enumerate(words)], text


def test_vocab_lacking_a_byte():
    """tiny-roberta-bpe-no-f0 has no symbol for the byte 0xF0: HF drops it (its BPE has no unk_token), and the
    offsets of what follows shift by the dropped character, as tokenizers counts them; vocab.json + merges.txt only."""
    texts = EXPECTED_TOKENS["emoji_strings"]
    tok = RobertaTokenizer.from_pretrained(NO_F0)
    assert tok.bpe.missing_bytes == (0xF0,)
    check_rows(tok.encode(tf.constant(texts)), EXPECTED_TOKENS["no_f0"]["single"], texts, "no 0xF0")
    plain = RobertaTokenizer.from_pretrained(TINY)
    assert rows(tok.encode(tf.constant(texts)))[0] != rows(plain.encode(tf.constant(texts)))[0]


@pytest.mark.parametrize("fuse_unk", [False, True])
def test_vocab_lacking_a_byte_with_unk_token(fuse_unk):
    texts = EXPECTED_TOKENS["emoji_strings"]
    vocab = json.loads((NO_F0 / "vocab.json").read_text(encoding="utf-8"))
    merges = [tuple(line.split()) for line in (NO_F0 / "merges.txt").read_text(encoding="utf-8").split("\n")[1:] if line]
    tok = RobertaTokenizer(vocab, merges, bpe_unk_token="<unk>", fuse_unk=fuse_unk)
    expected = EXPECTED_TOKENS["no_f0_unk_fused" if fuse_unk else "no_f0_unk"]["single"]
    check_rows(tok.encode(tf.constant(texts)), expected, texts, f"unk, fuse_unk={fuse_unk}")
    assert any(tok.unk_id in e["input_ids"][1:-1] for e in expected)


def test_added_tokens_leftmost_longest_in_two_passes_with_stripping():
    """Overlapping added tokens, normalized ones matched after the others, rstrip/lstrip (ids 2000+)."""
    case = EXPECTED_TOKENS["added_tokens"]
    plain = RobertaTokenizer.from_pretrained(TINY)
    vocab = json.loads((TINY / "vocab.json").read_text(encoding="utf-8"))
    merges = [tuple(line.split()) for line in (TINY / "merges.txt").read_text(encoding="utf-8").split("\n")[1:] if line]
    extra = [AddedToken(t["content"], t["id"], lstrip=t["lstrip"], rstrip=t["rstrip"], normalized=t["normalized"])
             for t in case["added_tokens"]]
    tok = RobertaTokenizer(vocab, merges, added_tokens=list(plain.pre_tokenizer.added_tokens.tokens) + extra)
    check_rows(tok.encode(tf.constant(case["strings"])), case["single"], case["strings"], "added tokens")
    assert tok.convert_ids_to_tokens([2000, 2005]) == ["aa", "x<"]


def _real_texts(data, sources):
    sst2 = (data / "sst2" / "train.tsv").read_text(encoding="utf-8").split("\n")[1:]
    blocks = (data / "wnut17" / "emerging.dev.conll").read_text(encoding="utf-8").split("\n\n")
    wnut = [" ".join(line.split("\t")[0] for line in b.split("\n") if line.strip()) for b in blocks if b.strip()]
    squad = json.loads((data / "squad_v2.0" / "dev-v2.0-part-shared.json").read_text(encoding="utf-8"))["data"]
    squad = [s for a in squad for p in a["paragraphs"] for s in re.split(r"(?<=[.!?])\s+", p["context"]) if s]
    texts = {"sst2/train.tsv": [line.split("\t")[0] for line in sst2], "wnut17/emerging.dev.conll": wnut,
             "squad_v2.0/dev-v2.0-part-shared.json": squad}
    return [(src, i, texts[src][i]) for src, (first, count) in sources.items() for i in range(first, first + count)]


def _unpack(blob, dtype):
    return np.frombuffer(zlib.decompress(base64.b64decode(blob)), np.dtype(dtype).newbyteorder("<")).astype(np.int64)


def test_real_texts(shared_data, tokenizers):
    expected = json.loads((EXPECTED / "roberta_tokenizer_real_data.json").read_text())
    items = _real_texts(shared_data, expected["sources"])
    for (src, i, text), digest in zip(items, expected["sha256"]):
        assert hashlib.sha256(text.encode()).hexdigest()[:16] == digest, f"data changed: {src}:{i}"
    splits = np.cumsum([0] + expected["lengths"])
    ids, starts, ends = (_unpack(expected[k], d) for k, d in (("input_ids", "u2"), ("starts", "i4"), ("ends", "i4")))
    encoding = tokenizers["add_prefix_space_false"].encode(tf.constant([t for _, _, t in items]), max_length=100_000)
    got = (encoding.token_ids.to_list(), encoding.starts.to_list(), encoding.ends.to_list())
    mismatches = [(src, i) for k, (src, i, _) in enumerate(items)
                  if [g[k] for g in got] != [a[splits[k]:splits[k + 1]].tolist() for a in (ids, starts, ends)]]
    assert len(items) == 1000 and not mismatches, f"{len(mismatches)} of {len(items)} differ, e.g. {mismatches[:5]}"


# --- graph modes ---------------------------------------------------------------------------------
GRAPH_TEXTS = STRINGS[:40] + EXPECTED_TOKENS["roberta_strings"][:40]
QUESTION, CONTEXT = "Who won the match and where?", EXPECTED_TOKENS["add_prefix_space_true"]["windows"][2]["text_pairs"][2]


def _outputs(tok, texts):
    """Single texts and windows over question/context pairs, padded so that they compare as arrays."""
    single = tok.encode(texts, max_length=32)
    pairs = tok.encode(tf.fill(tf.shape(texts), QUESTION), tf.fill(tf.shape(texts), CONTEXT), max_length=24,
                       stride=6, truncation="only_second")
    out = {f"single_{k}": v for k, v in single.padded(32, tok.pad_id).items()}
    out.update({f"pair_{k}": v for k, v in pairs.padded(24, tok.pad_id).items()})
    out["pair_sample_index"] = pairs.sample_index
    return out


def _numpy(outputs):
    return {k: v.numpy().tolist() for k, v in outputs.items()}


def test_same_results_in_graphs_tf_data_and_saved_model(tmp_path):
    tok = RobertaTokenizer.from_pretrained(TINY)  # its own: this test spends the eager budget
    texts = tf.constant(GRAPH_TEXTS)
    eager = _numpy(_outputs(tok, texts))
    eager_pieces = tok.tokenize(texts)
    assert eager["single_token_ids"][0][0] == tok.cls_id and len(eager["pair_sample_index"]) > len(GRAPH_TEXTS)
    # Once the eager budget is spent, eager calls run the traced tokenizer: the same pieces.
    runner = tok._runner
    runner.eager_seconds = runner.budget_seconds + 1
    many = tok.tokenize(tf.tile(texts, [4]))
    assert runner.traced
    assert [t.to_list()[:len(GRAPH_TEXTS)] for t in (many.ids, many.starts)] == \
        [t.to_list() for t in (eager_pieces.ids, eager_pieces.starts)]

    traced = tf.function(lambda t: _outputs(tok, t), input_signature=[tf.TensorSpec([None], tf.string)])
    assert _numpy(traced(texts)) == eager

    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(len(GRAPH_TEXTS)).map(lambda t: _outputs(tok, t))
    assert _numpy(next(iter(dataset))) == eager

    class Encoder(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = tok

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
        def __call__(self, t):
            return _outputs(self.tokenizer, t)

    tf.saved_model.save(Encoder(), str(tmp_path / "saved"))
    assert _numpy(tf.saved_model.load(str(tmp_path / "saved"))(texts)) == eager


def test_same_results_in_a_graph_with_add_prefix_space(tokenizers):
    tok = tokenizers["add_prefix_space_true"]
    texts = tf.constant(GRAPH_TEXTS)
    eager = _numpy(_outputs(tok, texts))
    assert _numpy(tf.function(lambda t: _outputs(tok, t), autograph=False)(texts)) == eager


def test_tokenize_counts_pieces_without_special_tokens(tokenizers):
    tok = tokenizers["add_prefix_space_false"]
    pieces = tok.tokenize(tf.constant(STRINGS))
    lengths = [len(e["input_ids"]) - 2 for e in EXPECTED_TOKENS["add_prefix_space_false"]["single"]]
    assert pieces.ids.row_lengths().numpy().tolist() == lengths
    assert tok.tokenize(tf.constant([], tf.string)).ids.nrows().numpy() == 0


def test_batches_of_special_tokens_only_empty_batches_and_invalid_utf8(tokenizers):
    tok = tokenizers["add_prefix_space_false"]
    assert tok.encode(tf.constant(["<s>", "", "<mask>"])).token_ids.to_list() == [[0, 0, 2], [0, 2], [0, 4, 2]]
    traced = tf.function(lambda t: tok.encode(t).padded()["token_ids"], autograph=False)
    assert traced(tf.constant([], tf.string)).shape == (0, 2) and traced(tf.constant(["<s>"])).numpy().tolist() == [[0, 0, 2]]
    # Invalid UTF-8 (which a str cannot hold, but a serving request can) reads as U+FFFD, as the decoder does.
    raw = tf.constant([b"a\xffb c", b"\x80\x80abc", b"caf\xc3", b"ok \xe2\x82 x"])
    replaced = tf.constant([t.decode("utf-8", errors="replace") for t in raw.numpy()])
    assert rows(tok.encode(raw)) == rows(tok.encode(replaced))


# --- construction --------------------------------------------------------------------------------
def test_attributes_and_decoding(tokenizers):
    tok = tokenizers["add_prefix_space_false"]
    assert (tok.cls_id, tok.pad_id, tok.sep_id, tok.unk_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert len(tok.vocabulary) == 2000 and tok.model_max_length == 512 and tok.decoder_cleanup is False
    assert (tok.normalizer.lowercase, tok.normalizer.strip_accents, tok.continuing_subword_prefix) == (False, False, None)
    assert tok.convert_ids_to_tokens([0, 4, 2]) == ["<s>", "<mask>", "</s>"]
    cases = EXPECTED_TOKENS["decode"]
    assert [tok.convert_tokens_to_string(c["tokens"]) for c in cases] == [c["string"] for c in cases]
    ids = [tok.vocabulary.index(t) for c in cases for t in c["tokens"]]
    group = [k for k, c in enumerate(cases) for _ in c["tokens"]]
    joined = tok.join_tokens(tf.constant(ids), tf.constant(group), len(cases))
    assert [s.decode() for s in joined.numpy()] == [c["string"] for c in cases]
    assert any("\ufffd" in c["string"] for c in cases)  # a character cut between tokens


def test_from_tokenizer_json_alone_and_from_vocab_and_merges_alone(tmp_path, tokenizers):
    texts = tf.constant(STRINGS)
    want = rows(tokenizers["add_prefix_space_false"].encode(texts))
    json_only = RobertaTokenizer.from_pretrained(copy_folder(TINY, tmp_path / "json", {"tokenizer.json"}))
    files_only = RobertaTokenizer.from_pretrained(copy_folder(TINY, tmp_path / "files", {"vocab.json", "merges.txt"}))
    assert rows(json_only.encode(texts)) == want and rows(files_only.encode(texts)) == want
    # Without tokenizer_config.json nothing bounds the length (HF: 1e30): the model's positions do.
    assert json_only.model_max_length == 512
    assert RobertaTokenizer.from_pretrained(tmp_path / "json", max_position_embeddings=130).model_max_length == 128


def test_model_max_length_as_hf_decides(tmp_path):
    unbounded = copy_folder(TINY, tmp_path / "unbounded", model_max_length=1000000000000000019884624838656)
    assert RobertaTokenizer.from_pretrained(unbounded, max_position_embeddings=514).model_max_length == 512
    assert RobertaTokenizer.from_pretrained(TINY, max_position_embeddings=66).model_max_length == 64
    assert RobertaTokenizer.from_pretrained(copy_folder(TINY, tmp_path / "short", model_max_length=100),
                                            max_position_embeddings=514).model_max_length == 100


def test_added_tokens_decoder_overrides_tokenizer_json(tmp_path):
    folder = copy_folder(TINY, tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"]["4"]["lstrip"] = False  # <mask> keeps the space before it for the text
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    enc = RobertaTokenizer.from_pretrained(folder).encode(tf.constant(["a <mask>"]))
    default = RobertaTokenizer.from_pretrained(TINY).encode(tf.constant(["a <mask>"]))
    assert enc.token_ids.to_list()[0][-2] == default.token_ids.to_list()[0][-2] == 4
    assert len(enc.token_ids.to_list()[0]) == len(default.token_ids.to_list()[0]) + 1  # the space is a token


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no tokenizer.json, and no vocab.json"):
        RobertaTokenizer.from_pretrained(copy_folder(TINY, tmp_path / "none", {"tokenizer_config.json"}))
    with pytest.raises(CheckpointNotFoundError, match=r"found \['vocab.json'\]"):
        RobertaTokenizer.from_pretrained(copy_folder(TINY, tmp_path / "half", {"vocab.json"}))
    with pytest.raises(CheckpointNotFoundError, match="not a folder"):
        RobertaTokenizer.from_pretrained(tmp_path / "absent")

    broken = copy_folder(TINY, tmp_path / "broken", {"vocab.json", "merges.txt"})
    (broken / "merges.txt").write_text("#version: 0.2\nĠ t\nthree tokens here\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"merges.txt:3: a merge is two tokens"):
        RobertaTokenizer.from_pretrained(broken)
    (broken / "merges.txt").write_text("#version: 0.2\nĠ zzz\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="token 'zzz' is not in the vocabulary"):
        RobertaTokenizer.from_pretrained(broken)
    (broken / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerError, match="vocab.json: not a readable JSON file"):
        RobertaTokenizer.from_pretrained(broken)

    wordpiece = tmp_path / "wordpiece"
    wordpiece.mkdir()
    (wordpiece / "tokenizer.json").write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}}}))
    with pytest.raises(TokenizerError, match="not a BPE tokenizer"):
        RobertaTokenizer.from_pretrained(wordpiece)
    normalized = copy_folder(TINY, tmp_path / "normalized", {"tokenizer.json"})
    data = json.loads((normalized / "tokenizer.json").read_text(encoding="utf-8"))
    data["normalizer"] = {"type": "Lowercase"}
    (normalized / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(TokenizerError, match="does not support normalizer 'Lowercase'"):
        RobertaTokenizer.from_pretrained(normalized)


def test_errors_where_hf_raises(tokenizers):
    tok = tokenizers["add_prefix_space_false"]
    with pytest.raises(TokenizerError, match="leaves no room for text"):
        tok.encode(tf.constant(["a"]), tf.constant(["b"]), max_length=4)
    with pytest.raises(TokenizerError, match="stride=8 must be at least 0 and less than the 8 tokens"):
        tok.encode(tf.constant(["a"]), max_length=10, stride=8)
    with pytest.raises(TokenizerError, match="need truncation='only_first' or 'only_second'"):
        tok.encode(tf.constant(["a"]), tf.constant(["b"]), max_length=10, stride=2)
    with pytest.raises(TokenizerError, match="lacks the special tokens"):
        RobertaTokenizer({"a": 0, "<s>": 1}, [])
