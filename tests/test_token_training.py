"""Token classification training: word-piece alignment, windows, fit, HF layout, evaluate, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, ROOT
from kbert.checkpoint import load_checkpoint
from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.tasks.token_classification.tagged_files import tagged_from_lists
from kbert.errors import DataError, TrainingError
from kbert.training.evaluation import evaluate
from kbert.tasks.token_classification.training_data import tag_label_set, tagged_dataset
from kbert.tasks.token_classification.features import (
    IGNORE_INDEX, SentencePieces, align_labels, continuation_labels, make_windows, owning_window, tokenize_words,
    window_spans, word_predictions)

TINY_CASED = CHECKPOINTS / "tiny-cased-token-cls"  # cased vocabulary, BIO PER/LOC head
PEOPLE, PLACES = ["Ann", "Bob", "Eve", "Mary"], ["Paris", "London", "Berlin"]


def write_conll(path, count, seed):
    """Sentences in the tiny cased vocabulary: 'Ann went to Paris and met Mary Smith .'"""
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(count):
        who, where = rng.choice(PEOPLE), rng.choice(PLACES)
        words = [who, "went", "to", where, "and", "met", "Mary", "Smith", "."]
        tags = ["B-PER", "O", "O", "B-LOC", "O", "O", "B-PER", "I-PER", "O"]
        blocks.append("\n".join(f"{w}\t{t}" for w, t in zip(words, tags)))
    path.write_text("-DOCSTART-\tO\n\n" + "\n\t\n".join(blocks) + "\n")  # WNUT-style tab-only separators
    return str(path)


# --- alignment and windows (pure numpy) -------------------------------------------------------------
def test_label_all_pieces_turns_b_into_i_on_later_pieces():
    names = ("B-PER", "I-PER", "O")
    piece_word = np.array([0, 0, 0, 1])
    assert align_labels(piece_word, np.array([0, 2])).tolist() == [0, IGNORE_INDEX, IGNORE_INDEX, 2]
    assert align_labels(piece_word, np.array([0, 2]), label_all_pieces=True,
                        continuation=continuation_labels(names)).tolist() == [0, 1, 1, 2]


def test_windows_cover_every_piece_and_overlap_by_stride():
    for n in range(1, 40):
        spans = window_spans(n, size=6, stride=2)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(end - begin <= 6 for begin, end in spans)
        assert all(b2 == e1 - 2 for (_, e1), (b2, _) in zip(spans, spans[1:]))


def test_evaluation_windows_score_every_word_once_in_order():
    rng = np.random.default_rng(0)
    pieces = [SentencePieces(np.arange(n, dtype=np.int32) + 10, np.sort(rng.integers(0, max(n // 2, 1), n)), 0)
              for n in (3, 17, 40)]
    pieces = [SentencePieces(p.ids, np.unique(p.word, return_inverse=True)[1], len(np.unique(p.word))) for p in pieces]
    labels = [rng.integers(0, 3, p.num_words) for p in pieces]
    windows = make_windows(pieces, labels, max_length=8, stride=2, cls_id=2, sep_id=3, evaluation=True)
    for s, p in enumerate(pieces):
        rows = np.flatnonzero(windows.sentence == s)
        scored = np.concatenate([windows.words[r] for r in rows])
        assert scored.tolist() == list(range(p.num_words))  # each word once, in order
        for r in rows:
            assert windows.token_ids[r][0] == 2 and windows.token_ids[r][-1] == 3 and len(windows.token_ids[r]) <= 8
    # Perfect logits give back the gold labels, word by word.
    logits = [np.eye(3)[np.where(lab == IGNORE_INDEX, 0, lab)] * 10 for lab in windows.labels]
    predicted, _ = word_predictions(logits, windows.labels, windows)
    assert all(np.array_equal(p, lab) for p, lab in zip(predicted, labels))


def test_owning_window_prefers_more_context():
    spans = [(0, 6), (4, 10)]
    # Position 4 has 1 piece of context on its right in window 0 and none on its left in window 1.
    assert [owning_window(p, spans) for p in range(10)] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


def test_pieces_map_back_to_words_like_is_split_into_words():
    tok = load_checkpoint(TINY_CASED).tokenizer
    words = ["Ann", "went", "to", "Paris", "!", "xyzzy", "Mary"]
    [sentence] = tokenize_words(tok, [words])
    assert sentence.num_words == len(words)
    assert sorted(set(sentence.word.tolist())) == list(range(len(words)))  # every word has a piece
    assert np.all(np.diff(sentence.word) >= 0)


# --- training end to end --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conll_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conll")
    return write_conll(folder / "train.conll", 60, 0), write_conll(folder / "dev.conll", 20, 1)


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, conll_files):
    output = tmp_path_factory.mktemp("run") / "ner"
    # max_length 8 = 6 pieces per window: every sentence (9+ pieces) is split into overlapping windows.
    return kbert.train(task="token-classification", model=str(TINY_CASED), train=conll_files[0], eval=conll_files[1],
                       output=str(output), epochs=6, batch_size=16, max_length=8, stride=2, learning_rate=3e-3,
                       verbose=0)


def test_token_classifier_learns_through_windows(ner_run):
    assert ner_run.metrics["entity_f1"] == 1.0
    assert set(ner_run.metrics["per_type"]) == {"LOC", "PER"}
    assert ner_run.metrics["examples"] == 20 and ner_run.metrics["words"] == 180
    assert ner_run.history[-1]["val_entity_f1"] == 1.0 and "val_per_type" not in ner_run.history[-1]


def test_token_run_is_a_hugging_face_token_checkpoint(ner_run):
    config = json.loads((ner_run.output / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert config["id2label"] == {"0": "O", "1": "B-PER", "2": "I-PER", "3": "B-LOC", "4": "I-LOC"}  # the head's order
    assert config["kbert"]["task"] == "token-classification" and config["kbert"]["stride"] == 2
    tensors = read_safetensors(ner_run.output / "model.safetensors")
    assert tensors["classifier.weight"].shape == (5, 32) and not any(k.startswith("bert.pooler") for k in tensors)
    assert ner_run.plots == (str(ner_run.output / "entity_f1.png"),)  # per-type F1 of the final evaluation


def test_cli_evaluate_plots_per_type_f1(ner_run, conll_files, tmp_path, capsys):
    from kbert.cli import main
    from kbert.plots import per_type_f1_figure

    assert main(["evaluate", "--model", str(ner_run.output), "--data", conll_files[1], "--plots", str(tmp_path)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entity_f1.png"]
    bars = [patch.get_width() for patch in per_type_f1_figure(metrics["per_type"]).axes[0].patches]
    assert sorted(bars) == pytest.approx(sorted(v["f1"] for v in metrics["per_type"].values()))


def test_task_flags_are_refused_for_another_task(conll_files, capsys):
    from kbert.cli import main

    assert main(["train", "--train", conll_files[0], "--output", "unused", "--tag-column", "1"]) == 2
    assert "--tag-column is an option of token-classification, not of text-classification" in capsys.readouterr().err


def test_evaluate_reproduces_the_final_metrics(ner_run, conll_files):
    metrics = evaluate(str(ner_run.output), conll_files[1])
    assert metrics.pop("per_type") == ner_run.metrics["per_type"]
    assert metrics == pytest.approx({k: v for k, v in ner_run.metrics.items() if k != "per_type"}, rel=1e-5)


def test_labels_are_inferred_sorted_without_a_head(tmp_path, conll_files):
    sentences = tagged_from_lists([["Ann", "sings"]], [["B-PER", "O"]])
    assert tag_label_set(sentences).names == ("B-PER", "O")
    tok = load_checkpoint(TINY_CASED).tokenizer
    data = tagged_dataset(tok, sentences, tag_label_set(sentences), batch_size=2, max_length=16, training=True)
    features, labels = next(iter(data.data.dataset))
    [pieces] = tokenize_words(tok, [["Ann", "sings"]])
    row = labels.numpy()[0]
    assert len(pieces.ids) > 2  # at least one word has several pieces: only its first one is labelled
    assert row[row != IGNORE_INDEX].tolist() == [0, 1]
    assert features["token_ids"].numpy()[0, :len(pieces.ids) + 2].tolist() == [tok.cls_id, *pieces.ids, tok.sep_id]


# --- bad input -----------------------------------------------------------------------------------------------
def test_unknown_tag_in_evaluation_data_names_file_and_line(tmp_path, conll_files):
    bad = tmp_path / "dev.conll"
    bad.write_text("Ann\tB-PER\nwent\tB-MISC\n")
    output = tmp_path / "run"
    with pytest.raises(DataError, match=r"dev.conll:1: word 2 'went' has tag 'B-MISC'"):
        kbert.train(task="token-classification", model=str(TINY_CASED), train=conll_files[0], eval=str(bad),
                    output=str(output), epochs=1, verbose=0)
    assert not output.exists()  # nothing written before the data is validated


def test_missing_tag_column_via_cli(tmp_path):
    bad = tmp_path / "train.conll"
    bad.write_text("Ann\tB-PER\nwent\n")
    done = subprocess.run([sys.executable, "-m", "kbert", "train", "--task", "token-classification", "--model",
                           str(TINY_CASED), "--train", str(bad), "--output", str(tmp_path / "run")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "train.conll:2" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "run").exists()


def test_head_size_mismatch_is_refused(tmp_path, conll_files):
    with pytest.raises(TrainingError, match="5 outputs but the data has 2 labels"):
        kbert.train(task="token-classification", model=str(TINY_CASED), train=conll_files[0], labels=("O", "B-PER"),
                    output=str(tmp_path / "run"), epochs=1, verbose=0)


@pytest.mark.parametrize("name, path, fmt", [("wnut17_dev", "wnut17/emerging.dev.conll", "conll"),
                                             ("ud_en_ewt_dev", "ud_en_ewt/en_ewt-ud-dev.conllu", "conllu")])
def test_alignment_matches_transformers_word_ids_on_real_data(name, path, fmt, shared_data, minilm_path):
    """Every piece id and every piece's word index equal HF's is_split_into_words ids and word_ids()."""
    import hashlib

    from conftest import EXPECTED
    from kbert.tasks.token_classification.tagged_files import read_tagged

    reference = np.load(EXPECTED / "word_ids_real_data.npz")
    sentences = [s.words for s in read_tagged(shared_data / path, format=fmt)]
    digest = hashlib.sha256("\n".join("\x1f".join(s) for s in sentences).encode("utf-8")).hexdigest()
    assert digest == reference[f"{name}/sha256"].tobytes().decode("ascii")  # the same sentences as HF read
    pieces = tokenize_words(load_checkpoint(minilm_path).tokenizer, sentences)
    splits = np.cumsum(reference[f"{name}/lengths"])[:-1]
    ids = np.split(reference[f"{name}/ids"], splits)
    word_ids = np.split(reference[f"{name}/word_ids"], splits)
    for k, (sentence, want_ids, want_words) in enumerate(zip(pieces, ids, word_ids)):
        assert sentence.ids.tolist() == want_ids[1:-1].tolist(), f"sentence {k}"
        assert sentence.word.tolist() == want_words[1:-1].tolist(), f"sentence {k}"


def test_a_word_over_the_per_word_limit_is_one_unk_piece_as_in_hf():
    """Hugging Face's WordPiece turns a word of more than 100 characters into one [UNK]; its label stays on it."""
    tok = load_checkpoint(TINY_CASED).tokenizer
    long_word = "a" * 150
    [sentence] = tokenize_words(tok, [["Ann", long_word, "went"]])
    unk_positions = np.flatnonzero(sentence.ids == tok.unk_id)
    assert sentence.word[unk_positions].tolist() == [1] and len(unk_positions) == 1
    labels = align_labels(sentence.word, np.array([0, 1, 2]))
    assert labels[unk_positions].tolist() == [1]
