"""Streamed training input (kbert.data.streaming): shards read by tf.data, rows checked naming shard and line,
labels and steps from one counting pass, each worker its own shards, and `kbert shard` writing them."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file

import kbert
from conftest import CHECKPOINTS, ROOT
from kbert.checkpoint import load_checkpoint
from kbert.data import streaming
from kbert.data.streaming import count_rows, stream_source, training_dataset
from kbert.errors import DataError, DataWarning
from test_distributed import KBERT, assert_same_updates, finish, start_cluster, without_dropout

TINY = CHECKPOINTS / "tiny-uncased-cls"
WORDS = ["good", "bad", "fine", "awful", "great", "poor", "nice", "dull"]


def write_shards(folder, rows, num_shards=4, header="sentence\tlabel\n"):
    """``rows`` (text, label) dealt over ``num_shards`` TSV files, row i to shard i % num_shards."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(num_shards):
        body = "".join(f"{text}\t{label}\n" for text, label in rows[s::num_shards])
        (folder / f"part-{s}.tsv").write_text(header + body)
    return str(folder / "part-*.tsv")


def numbered_rows(n):
    """Short texts (one length bucket) whose regression label is the row's number."""
    return [(f"{WORDS[i % 8]} {WORDS[(i // 8) % 8]} film", str(i)) for i in range(n)]


def labelled_rows(n):
    return [(f"{WORDS[i % 8]} {WORDS[(i // 8) % 8]} film", "positive" if i % 2 else "negative") for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    return load_checkpoint(TINY).tokenizer


def labels_seen(dataset, steps):
    return sorted(int(v) for _, labels in dataset.take(steps) for v in labels.numpy().ravel())


def test_each_row_is_read_once_per_pass_over_four_shards_shuffled_and_bucketed(tmp_path, tokenizer):
    source = stream_source(write_shards(tmp_path, numbered_rows(32)), label_kind="regression")
    assert (source.format, source.header, source.text, source.label, len(source.shards)) == ("tsv", True, 0, 1, 4)
    dataset, described = training_dataset(source, tokenizer, ["LABEL_0"], batch_size=4, max_length=16,
                                          shuffle_buffer=8, seed=3)
    assert described == "streamed from 4 tsv shard(s)"
    assert labels_seen(dataset, 8) == list(range(32))  # one pass: 8 batches of 4
    assert labels_seen(dataset, 16) == sorted(list(range(32)) * 2)  # the stream goes on: two passes
    features, labels = next(iter(dataset))
    assert sorted(features) == ["padding_mask", "segment_ids", "token_ids"] and labels.shape == (4, 1)


def test_the_counting_pass_counts_labels_and_rows_as_the_in_memory_reader(tmp_path):
    rows = labelled_rows(30) + [("a typo row", "postive")]
    source = stream_source(write_shards(tmp_path, rows), label_kind="class")
    lines = []

    class Progress:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    counted = count_rows(source, progress=Progress(), every=0.0)
    assert counted.rows == 31 and dict(counted.counts) == {"negative": 15, "positive": 15, "postive": 1}
    assert counted.first["postive"] == f"{tmp_path}/part-2.tsv:9"  # row 30 is shard 2's 8th row, after the header
    assert any("counted 31 training rows in 4 shard(s)" in line for line in lines)
    assert count_rows(source, limit=10).rows == 10


@pytest.mark.parametrize("row, message", [
    ("just one field", r"part-1\.tsv:4: expected 2 TSV fields \(as in the first row\)"),
    ('"unclosed quote\tpositive', r"part-1\.tsv:4: expected 2 TSV fields"),
])
def test_a_bad_row_is_an_error_naming_shard_and_line_in_the_counting_pass(tmp_path, row, message):
    folder = tmp_path / "shards"
    write_shards(folder, labelled_rows(8))
    with open(folder / "part-1.tsv", "a") as f:
        f.write(row + "\n")
    with pytest.raises(DataError, match=message):
        count_rows(stream_source(str(folder / "*.tsv"), label_kind="class"))


def test_a_bad_label_found_while_training_stops_the_run_naming_shard_and_line(tmp_path):
    rows = labelled_rows(40)
    rows[13] = (rows[13][0], "postive")  # shard 1, its 4th row: line 5
    train = write_shards(tmp_path / "shards", rows)
    # labels and steps given: no counting pass, the row is found by the training pipeline itself
    with pytest.raises(DataError, match=r"part-1\.tsv:5: label 'postive' is not one of \['negative', 'positive'\]"):
        kbert.train(train=train, output=str(tmp_path / "run"), model=str(CHECKPOINTS / "tiny-uncased-qa"),
                    labels=("negative", "positive"),
                    steps_per_epoch=10, batch_size=4, max_length=16, epochs=1, verbose=0, shuffle_buffer=0)


def test_regression_labels_that_are_not_numbers_name_shard_and_line(tmp_path):
    rows = numbered_rows(8)
    rows[6] = (rows[6][0], "n/a")
    with pytest.raises(DataError, match=r"part-2\.tsv:3: label 'n/a' is not a number"):
        count_rows(stream_source(write_shards(tmp_path, rows), label_kind="regression"))


def test_jsonl_and_tfrecord_shards_stream_the_same_rows(tmp_path, tokenizer):
    rows = numbered_rows(12)
    for s in range(2):
        with open(tmp_path / f"part-{s}.jsonl", "w") as f:
            for text, label in rows[s::2]:
                f.write(json.dumps({"text": text, "label": float(label)}) + "\n")
        with tf.io.TFRecordWriter(str(tmp_path / f"part-{s}.tfrecord")) as writer:
            for text, label in rows[s::2]:
                feature = {"text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
                           "label": tf.train.Feature(float_list=tf.train.FloatList(value=[float(label)]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    for ext in ("jsonl", "tfrecord"):
        source = stream_source(str(tmp_path / f"part-*.{ext}"), label_kind="regression")
        assert count_rows(source).rows == 12
        dataset, _ = training_dataset(source, tokenizer, ["LABEL_0"], batch_size=4, max_length=16, shuffle_buffer=0)
        assert labels_seen(dataset, 3) == list(range(12)), ext
    with open(tmp_path / "part-1.jsonl", "a") as f:
        f.write('{"text": "no label"}\n')
    with pytest.raises(DataError, match=r"part-1\.jsonl:7: no 'label' field \(fields: text\)"):
        count_rows(stream_source(str(tmp_path / "part-*.jsonl"), label_kind="regression"))


def test_a_singleton_label_is_reported_from_the_counting_pass_and_labels_come_from_the_counts(tmp_path):
    rows = labelled_rows(30) + [("a typo row", "postive")]
    train = write_shards(tmp_path / "shards", rows)
    with pytest.warns(DataWarning, match=r"part-2\.tsv:9: label 'postive' occurs only once"):
        result = kbert.train(train=train, output=str(tmp_path / "run"), model=str(CHECKPOINTS / "tiny-uncased-qa"),
                             batch_size=8, max_length=16, epochs=1, verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive", "2": "postive"}
    assert result.history[0]["loss"] > 0


def test_streaming_is_the_default_for_shards_and_large_files_only(tmp_path, monkeypatch):
    small = tmp_path / "small.tsv"
    small.write_text("text\tlabel\na\t1\n")
    assert not streaming.is_streamed(str(small), None) and streaming.is_streamed(str(small), True)
    assert streaming.is_streamed(str(tmp_path / "*.tsv"), None) and streaming.is_streamed([str(small)], None)
    assert not streaming.is_streamed(str(small) + "[:1]", None) and not streaming.is_streamed("tfds:glue/sst2", None)
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 4)
    assert streaming.is_streamed(str(small), None) and not streaming.is_streamed(str(small), False)
    with pytest.raises(DataError, match=r"small\.tsv\[:1\]: a row range is not streamed"):
        streaming.is_streamed(str(small) + "[:1]", True)


def test_shards_fewer_than_workers_fall_back_to_data_sharding():
    policy = tf.data.experimental.AutoShardPolicy
    assert streaming.sharding(4, 2)[0] == policy.OFF and "AutoShardPolicy.FILE" in streaming.sharding(4, 2)[1]
    assert streaming.sharding(1, 2)[0] == policy.DATA and "AutoShardPolicy.DATA" in streaming.sharding(1, 2)[1]
    assert streaming.sharding(4, 1) == (policy.OFF, "")


# --- the command line ----------------------------------------------------------------------------------------
def run_cli(*args):
    done = subprocess.run(KBERT + list(args), capture_output=True, text=True, cwd=ROOT,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return done


def test_kbert_shard_then_kbert_train_streams_the_shards(tmp_path):
    big = tmp_path / "big.tsv"
    big.write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in labelled_rows(42)))
    done = run_cli("shard", "--input", str(big), "--output", str(tmp_path / "shards"), "--num-shards", "4")
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    assert written["rows"] == 42 and len(written["shards"]) == 4
    texts = [line for shard in written["shards"] for line in open(shard).read().splitlines()[1:]]
    assert sorted(texts) == sorted(big.read_text().splitlines()[1:])  # every row once, header in every shard
    assert all(open(shard).readline() == "sentence\tlabel\n" for shard in written["shards"])
    again = run_cli("shard", "--input", str(big), "--output", str(tmp_path / "shards"), "--num-shards", "4")
    assert again.returncode != 0 and "already holds shards" in again.stderr

    done = run_cli("train", "--model", str(TINY), "--train", str(tmp_path / "shards" / "*.tsv"), "--output",
                   str(tmp_path / "run"), "--epochs", "1", "--batch-size", "8", "--max-length", "16",
                   "--labels", "negative,positive,neutral", "--steps-per-epoch", "3")
    assert done.returncode == 0, done.stderr
    assert "(streamed from 4 tsv shard(s), 3 steps/epoch (given))" in done.stderr
    assert "kbert: count" not in done.stderr  # labels and steps given: no counting pass
    assert json.loads(done.stdout.splitlines()[-1])["checkpoint"] == str(tmp_path / "run")
    missing = run_cli("train", "--train", str(tmp_path / "none" / "*.tsv"), "--output", str(tmp_path / "x"))
    assert missing.returncode != 0 and "none/*.tsv: no file matches" in missing.stderr


# --- several workers ---------------------------------------------------------------------------------------
ROWS_SEEN = """
import json, os, sys
from kbert.training.strategy import make_strategy
strategy = make_strategy("multiworker")
from kbert.checkpoint import load_checkpoint
from kbert.data.streaming import stream_source, training_dataset
source = stream_source(sys.argv[1], label_kind="regression")
worker = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
dataset, described = training_dataset(source, load_checkpoint(sys.argv[2]).tokenizer, ["LABEL_0"], batch_size=8,
                                      max_length=16, shuffle_buffer=8, num_workers=2, worker=worker)
batches = iter(strategy.experimental_distribute_dataset(dataset))
epochs = [[int(v) for _ in range(4) for part in strategy.experimental_local_results(next(batches)[1])
           for v in part.numpy().ravel()] for _ in range(2)]
print(json.dumps({"epochs": epochs, "described": described}))
"""


def test_two_workers_read_their_own_shards_and_see_each_row_once_per_epoch(tmp_path):
    train = write_shards(tmp_path / "shards", numbered_rows(32))
    one, two = finish(start_cluster([sys.executable, "-c", ROWS_SEEN, train, str(TINY)]))
    assert "2 workers reading their own shards (FILE sharding, as AutoShardPolicy.FILE)" in one["described"]
    for epoch in range(2):  # 4 steps of a global batch of 8: 4 rows a worker a step
        assert len(one["epochs"][epoch]) == len(two["epochs"][epoch]) == 16
        assert sorted(one["epochs"][epoch] + two["epochs"][epoch]) == list(range(32))
    assert {v % 4 for v in one["epochs"][0]} == {0, 2} and {v % 4 for v in two["epochs"][0]} == {1, 3}


def test_kbert_train_on_two_workers_over_four_shards_reaches_the_weights_of_one_process(tmp_path):
    model = without_dropout(TINY, tmp_path / "tiny")
    train = write_shards(tmp_path / "shards", labelled_rows(64))
    common = dict(labels=("negative", "positive", "neutral"), batch_size=8, max_length=16, epochs=1,
                  shuffle_buffer=0, verbose=0)
    kbert.train(train=train, output=str(tmp_path / "one"), model=str(model), **common)
    chief, _ = finish(start_cluster(KBERT + [
        "train", "--strategy", "multiworker", "--model", str(model), "--train", train, "--output",
        str(tmp_path / "two"), "--epochs", "1", "--batch-size", "8", "--max-length", "16", "--shuffle-buffer", "0",
        "--labels", "negative,positive,neutral", "--quiet"]))
    assert chief["checkpoint"] == str(tmp_path / "two")
    # 8 steps; each global batch the same 8 rows: rows 2k, 2k+1 of every shard (one process interleaves all four
    # shards; each worker interleaves its two)
    assert_same_updates(load_file(model / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors"),
                        load_file(tmp_path / "two" / "model.safetensors"))


def test_a_resumed_streamed_run_says_that_the_epoch_restarts_from_the_first_rows(tmp_path, capsys):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    options = dict(train=write_shards(tmp_path / "shards", labelled_rows(24)), output=str(tmp_path / "run"),
                   model=str(CHECKPOINTS / "tiny-uncased-qa"), labels=("negative", "positive"), steps_per_epoch=3,
                   batch_size=8, max_length=16, epochs=2, verbose=2)
    with pytest.raises(KeyboardInterrupt):
        kbert.train(callbacks=(Interrupt(),), **options)
    capsys.readouterr()
    result = kbert.train(**options)
    out = capsys.readouterr().out
    assert ("kbert: resuming at epoch 2: the streamed input restarts at its first rows (the epoch restarts; its data "
            "position is not restored)") in out
    assert [e["epoch"] for e in result.history] == [0, 1]  # epoch 0 kept from the first run, epoch 1 run again


def test_this_worker_counts_the_chief_as_worker_zero(monkeypatch):
    cluster = {"chief": ["localhost:1"], "worker": ["localhost:2", "localhost:3"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert streaming.this_worker("multiworker") == (2, 3) and streaming.this_worker("default") == (0, 1)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}}))
    assert streaming.this_worker("multiworker") == (0, 3)
