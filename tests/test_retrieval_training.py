"""Bi-encoder training (`kbert train --task retrieval`): sentence-transformers' ranking loss (recorded values and
gradients), duplicate masking, GradCache's gradients, the pairs reader, the batch layout, and whole runs whose
folder loads as a sentence-transformers model."""

import json
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS, EXPECTED, ROOT
from kbert.checkpoint import load_checkpoint
from kbert.cli import main
from kbert.errors import DataError, TrainingError
from kbert.tasks.retrieval.bi_encoder_training import BiEncoderTraining
from kbert.tasks.retrieval.pairs import RetrievalExample, read_pairs
from kbert.tasks.retrieval.ranking_loss import RankingLoss
from kbert.tasks.retrieval.training_data import pair_batches
from kbert.tasks.sentence_embedding.task import SentenceEmbedding

RECORDED = json.loads((EXPECTED / "ranking_loss.json").read_text())["cases"]
TINY = CHECKPOINTS / "tiny-uncased-cls"
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"


# --- the loss -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", RECORDED, ids=lambda c: f"B{c['batch']}-n{c['negatives']}-{'+'.join(c['directions'])}")
def test_loss_and_gradients_equal_sentence_transformers(case):
    queries = tf.constant(case["queries"])
    documents = tf.constant(case["documents"])
    loss_fn = RankingLoss(case["scale"], tuple(case["directions"]), case["partition_mode"])
    with tf.GradientTape() as tape:
        tape.watch([queries, documents])
        loss = loss_fn(queries, documents)  # no text ids: no masking, as sentence-transformers
    query_grads, document_grads = tape.gradient(loss, [queries, documents])
    assert float(loss) == pytest.approx(case["loss"], rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(query_grads, case["query_gradients"], atol=1e-5)
    np.testing.assert_allclose(document_grads, case["document_gradients"], atol=1e-5)


def test_distinct_text_ids_change_nothing():
    case = RECORDED[1]
    loss_fn = RankingLoss()
    n_docs = len(case["documents"])
    masked = loss_fn(case["queries"], case["documents"], np.arange(case["batch"]), np.arange(100, 100 + n_docs))
    assert float(masked) == pytest.approx(case["loss"], rel=1e-5)


def _reference_loss(queries, documents, keep):
    """-mean log softmax of the positive, over the documents each row keeps (numpy, from the definition)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    d = documents / np.linalg.norm(documents, axis=1, keepdims=True)
    scores = 20.0 * q @ d.T
    losses = []
    for i, row in enumerate(scores):
        kept = row[keep[i]]
        losses.append(np.log(np.exp(kept).sum()) - row[i])
    return float(np.mean(losses))


def test_copies_of_the_positive_are_not_negatives():
    rng = np.random.default_rng(3)
    queries = rng.normal(size=(4, 6)).astype(np.float32)
    documents = rng.normal(size=(8, 6)).astype(np.float32)  # 4 positives, then 4 hard negatives
    # Row 2's positive is the same text as row 0's; row 1's hard negative (column 5) repeats row 3's positive.
    documents[2] = documents[0]
    documents[5] = documents[3]
    document_ids = np.array([10, 11, 10, 13, 20, 13, 22, 23])
    keep = [np.array([j for j in range(8) if j == i or document_ids[j] != document_ids[i]]) for i in range(4)]
    got = RankingLoss()(queries, documents, np.arange(4), document_ids)
    assert float(got) == pytest.approx(_reference_loss(queries, documents, keep), rel=1e-5)
    unmasked = RankingLoss()(queries, documents)
    assert float(unmasked) == pytest.approx(_reference_loss(queries, documents, [np.arange(8)] * 4), rel=1e-5)
    assert float(unmasked) > float(got)


def test_symmetric_masks_copies_of_the_query():
    rng = np.random.default_rng(4)
    queries = rng.normal(size=(3, 5)).astype(np.float32)
    queries[1] = queries[0]
    documents = rng.normal(size=(3, 5)).astype(np.float32)
    loss = RankingLoss.from_options(symmetric=True)
    masked = float(loss(queries, documents, np.array([7, 7, 8]), np.array([0, 1, 2])))
    unmasked = float(loss(queries, documents))
    assert masked != pytest.approx(unmasked)
    # doc_to_query for document 0 keeps queries 0 and 2 only (query 1 is the same text as its own query).
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    d = documents / np.linalg.norm(documents, axis=1, keepdims=True)
    s = 20.0 * q @ d.T  # (queries, documents)
    forward = np.mean([np.log(np.exp(s[i]).sum()) - s[i, i] for i in range(3)])
    keep_queries = [[0, 2], [1, 2], [0, 1, 2]]
    backward = np.mean([np.log(np.exp(s[keep_queries[i], i]).sum()) - s[i, i] for i in range(3)])
    assert masked == pytest.approx((forward + backward) / 2, rel=1e-5)


@pytest.mark.parametrize("kwargs", [{"scale": 0}, {"directions": ("doc_to_query",)},
                                    {"directions": ("query_to_doc", "doc_to_doc"), "partition_mode": "per_direction"},
                                    {"partition_mode": "softmax"}])
def test_bad_loss_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        RankingLoss(**kwargs)


# --- GradCache ----------------------------------------------------------------------------------
def _batch(seed=0, rows=6, negatives=1):
    rng = np.random.default_rng(seed)

    def inputs(n):
        lengths = rng.integers(3, 9, size=n)
        ids = np.zeros((n, 9), np.int32)
        mask = np.zeros((n, 9), np.int32)
        for i, length in enumerate(lengths):
            ids[i, :length] = rng.integers(5, 500, size=length)
            mask[i, :length] = 1
        return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}

    return {"query": inputs(rows), "documents": inputs(rows * (1 + negatives)),
            "query_ids": np.arange(rows), "document_ids": np.arange(100, 100 + rows * (1 + negatives))}


def _encoder(folder=TINY):
    keras.utils.set_random_seed(1)
    return SentenceEmbedding(load_checkpoint(folder)).build_model()


def _no_dropout_folder(tmp_path):
    import shutil

    folder = tmp_path / "no-dropout"
    shutil.copytree(TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _plain_gradients(model, batch):
    with tf.GradientTape() as tape:
        loss = model.batch_loss(*model(batch, training=True), batch)
    return loss, tape.gradient(loss, model.trainable_variables)


def test_cached_gradients_equal_the_whole_batch_gradients(tmp_path):
    model = BiEncoderTraining(_encoder(_no_dropout_folder(tmp_path)), RankingLoss(), mini_batch_size=4)
    batch = _batch()
    loss, want = _plain_gradients(model, batch)
    # traced as in fit's train step (variables read inside the function, not passed to it)
    cached_loss, got = tf.function(lambda b: model.cached_gradients(b, model.trainable_variables))(batch)
    assert float(cached_loss) == pytest.approx(float(loss), rel=1e-5)
    for g, w, v in zip(got, want, model.trainable_variables):
        np.testing.assert_allclose(np.asarray(g), np.asarray(tf.convert_to_tensor(w)), atol=2e-5, err_msg=v.path)


def test_cached_gradients_replay_the_dropout_masks():
    """With dropout on, the second (gradient) pass must see the masks of the first: the gradients then equal those
    of the same mini-batches run once with the tape on (same seeds). Without the replay they would not."""
    model = BiEncoderTraining(_encoder(), RankingLoss(), mini_batch_size=4)
    batch = _batch(seed=1)
    seeds = model._seed_states()
    start = [np.asarray(s.value) for s in seeds]
    loss, got = model.cached_gradients(batch, model.trainable_variables)
    after = [np.asarray(s.value) for s in seeds]
    for state, value in zip(seeds, start):
        state.assign(value)

    def chunked(features):
        return tf.concat([model.embed({k: v[i:i + 4] for k, v in features.items()}, training=True)
                          for i in range(0, len(features["token_ids"]), 4)], axis=0)

    with tf.GradientTape() as tape:
        want_loss = model.batch_loss(chunked(batch["query"]), chunked(batch["documents"]), batch)
    want = tape.gradient(want_loss, model.trainable_variables)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(tf.convert_to_tensor(w)), atol=2e-5)
    # the seed generators end where one pass leaves them, and dropout was really on (another draw differs)
    assert all((a == np.asarray(s.value)).all() for a, s in zip(after, seeds))
    assert not np.allclose(model.embed(batch["query"], training=True), model.embed(batch["query"], training=True))


# --- data ---------------------------------------------------------------------------------------
def test_pairs_reader_columns_negatives_and_ranges(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("id\tquery\tpositive\tnegative_1\tnegative\tnote\n"
                   "1\toil\tcrude rose\tteam won\tstocks fell\tx\n2\tgoal\tteam won\tcrude rose\train\ty\n")
    rows = read_pairs(tsv)
    assert rows[0] == RetrievalExample("oil", "crude rose", ("stocks fell", "team won"), f"{tsv}:2")
    assert read_pairs(f"{tsv}[1:]")[0].query == "goal"
    csv_file = tmp_path / "news.csv"
    csv_file.write_text('label,title,description\n3,"Oil up, stocks down",Crude rose 2%.\n')
    assert read_pairs(csv_file, query_column="title", positive_column=2)[0].positive == "Crude rose 2%."
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"anchor": "a", "positive": "b", "negatives": ["c"]}\n')
    assert read_pairs(jsonl) == [RetrievalExample("a", "b", ("c",), f"{jsonl}:1")]


@pytest.mark.parametrize("content, message", [
    ("query\ttext\nq\td\n", r"pairs.tsv:2: no positive column: expected 'positive'"),
    ("query\tpositive\n \td\n", r"pairs.tsv:2: the query is empty"),
    ("query\tpositive\tnegative\nq\td\tn\n", None),
    ("query\tpositive\n", r"no \(query, document\) rows"),
])
def test_pairs_reader_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_text(content)
    if message is None:
        assert len(read_pairs(path)) == 1
        return
    with pytest.raises(DataError, match=message):
        read_pairs(path)


def test_rows_need_the_same_number_of_negatives(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query": "a", "positive": "b", "negatives": ["c"]}\n{"query": "d", "positive": "e"}\n')
    with pytest.raises(DataError, match=r"pairs.jsonl:2: 0 hard negatives, but .*pairs.jsonl:1 has 1"):
        read_pairs(path)


def test_batches_hold_positives_then_negatives_with_shared_text_ids():
    tokenizer = load_checkpoint(TINY).tokenizer
    rows = [RetrievalExample("q one", "doc a", ("doc b",)), RetrievalExample("q two", "doc b", ("doc a",)),
            RetrievalExample("q one", "doc c", ("doc d long text here",))]
    data = pair_batches(tokenizer, rows, batch_size=3, max_length=6)
    assert data.num_batches == 1 and data.num_examples == 3
    batch = next(iter(data.dataset))
    # texts: q one 0, q two 1, doc a 2, doc b 3, doc c 4, doc d 5; documents [positives; negatives]
    assert batch["query_ids"].numpy().tolist() == [0, 1, 0]
    assert batch["document_ids"].numpy().tolist() == [2, 3, 4, 3, 2, 5]
    docs = batch["documents"]
    assert docs["token_ids"].shape == (6, 6)  # "doc d long text here" truncated to max_length
    expected = tokenizer.encode(tf.constant(["doc c"]), max_length=6).token_ids.to_list()[0]
    row = docs["token_ids"][2].numpy()
    assert row[:len(expected)].tolist() == expected and (row[len(expected):] == tokenizer.pad_id).all()
    assert docs["padding_mask"][2].numpy().tolist() == [1] * len(expected) + [0] * (6 - len(expected))


# --- whole runs ---------------------------------------------------------------------------------
def _pairs_file(tmp_path, rows, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TOPICS = {"football": "the team won the match with a late goal", "weather": "heavy rain and strong wind tomorrow",
          "markets": "stocks fell as oil prices rose sharply", "space": "the rocket launched a new satellite",
          "music": "the band played songs at the concert", "cooking": "bake the bread in a hot oven",
          "cinema": "the film won an award for its actors", "travel": "the train to the city was late"}


def _topic_rows(repeat):
    rows = []
    for r in range(repeat):
        for topic, text in TOPICS.items():
            words = text.split()
            rows.append({"query": f"{topic} {words[r % len(words)]}", "positive": text})
    return rows


def test_training_raises_mrr_and_writes_a_sentence_transformers_folder(tmp_path):
    train = _pairs_file(tmp_path, _topic_rows(6), "train.jsonl")
    held_out = _pairs_file(tmp_path, [{"query": f"{t} news", "positive": text} for t, text in TOPICS.items()],
                           "eval.jsonl")
    before = kbert.evaluate(str(TINY), str(held_out), task="retrieval")
    result = kbert.train(task="retrieval", train=str(train), eval=str(held_out), output=str(tmp_path / "run"),
                         model=str(TINY), epochs=4, batch_size=8, learning_rate=2e-3, max_length=16, verbose=0)
    assert result.metrics["mrr@10"] > before["mrr@10"] + 0.2, (before, result.metrics)
    run = result.output
    modules = json.loads((run / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling"]  # plain folder: no Normalize
    assert json.loads((run / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"
    config = json.loads((run / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and "id2label" not in config
    assert config["kbert"]["task"] == "retrieval"
    # kbert evaluate on the run folder (its task from config.json) gives the run's final numbers
    assert kbert.evaluate(str(run), str(held_out)) == pytest.approx(result.metrics)
    # and the folder embeds like the model trained: the pipeline reads it as a sentence-transformers folder
    embed = kbert.pipeline("sentence-embedding", model=str(run))
    assert len(embed("football goal")) == 32


def test_gradcache_and_symmetric_runs_train(tmp_path):
    train = _pairs_file(tmp_path, _topic_rows(2), "train.jsonl")
    result = kbert.train(task="retrieval", train=str(train), output=str(tmp_path / "run"), model=str(TINY),
                         epochs=1, batch_size=8, mini_batch_size=3, symmetric=True, max_length=16, verbose=0)
    history = json.loads((result.output / "history.json").read_text())
    assert np.isfinite(history[0]["loss"]) and history[0]["loss"] > 0
    saved = json.loads((result.output / "training_config.json").read_text())
    assert saved["mini_batch_size"] == 3 and saved["symmetric"] is True


@pytest.mark.parametrize("options, message", [
    ({"mini_batch_size": 64}, "mini_batch_size 64 is larger than the batch size 8"),
    ({"batch_size": 1}, "at least 2 rows per batch"),
])
def test_bad_training_settings_fail_before_anything_is_written(tmp_path, options, message):
    train = _pairs_file(tmp_path, _topic_rows(1), "train.jsonl")
    settings = {"batch_size": 8, **options}
    with pytest.raises(TrainingError, match=message):
        kbert.train(task="retrieval", train=str(train), output=str(tmp_path / "run"), model=str(TINY), verbose=0,
                    **settings)
    assert not (tmp_path / "run").exists()


def test_minilm_keeps_its_normalize_module_and_max_seq_length(tmp_path, minilm_path):
    train = _pairs_file(tmp_path, _topic_rows(1), "train.jsonl")
    result = kbert.train(task="retrieval", train=str(train), output=str(tmp_path / "run"), model="minilm",
                         epochs=1, batch_size=8, max_length=16, verbose=0)
    modules = json.loads((result.output / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    assert json.loads((result.output / "sentence_bert_config.json").read_text())["max_seq_length"] == 256
    vector = np.array(kbert.pipeline("sentence-embedding", model=str(result.output))("oil prices"))
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_cli_train_and_evaluate(tmp_path, capsys):
    train = _pairs_file(tmp_path, _topic_rows(1), "train.jsonl")
    code = main(["train", "--task", "retrieval", "--train", str(train), "--eval", str(train), "--output",
                 str(tmp_path / "run"), "--model", str(TINY), "--epochs", "1", "--batch-size", "4", "--max-length",
                 "16", "--scale", "30", "--keep-duplicates", "--quiet"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and set(out["metrics"]) >= {"mrr@10", "ndcg@10", "recall@1", "recall@10", "recall@100", "map@100"}
    assert json.loads((tmp_path / "run" / "training_config.json").read_text())["scale"] == 30.0
    code = main(["evaluate", "--model", str(tmp_path / "run"), "--data", str(train)])
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and metrics["mrr@10"] == pytest.approx(out["metrics"]["mrr@10"])


@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="reference env (.venv-ref) absent: run `make reference-env`")
def test_sentence_transformers_loads_the_trained_folder(tmp_path):
    train = _pairs_file(tmp_path, _topic_rows(1), "train.jsonl")
    run = kbert.train(task="retrieval", train=str(train), output=str(tmp_path / "run"), model=str(TINY), epochs=1,
                      batch_size=8, max_length=16, verbose=0).output
    texts = ["football goal", "", "the rocket launched a new satellite tonight"]
    script = ("import json, sys; from sentence_transformers import SentenceTransformer as S; "
              "m = S(sys.argv[1], device='cpu'); print(json.dumps(m.encode(json.loads(sys.argv[2])).tolist()))")
    done = subprocess.run([str(REFERENCE_PYTHON), "-c", script, str(run), json.dumps(texts)], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    ours = np.array(kbert.pipeline("sentence-embedding", model=str(run))(texts))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_trained_folder_exports_a_unit_vector_query_encoder_with_search(tmp_path):
    from kbert.export import export_saved_model
    from kbert.semantic_search.indexing import build_index, search_index

    train = _pairs_file(tmp_path, _topic_rows(1), "train.jsonl")
    run = kbert.train(task="retrieval", train=str(train), output=str(tmp_path / "run"), model=str(TINY), epochs=1,
                      batch_size=8, max_length=16, verbose=0).output
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": topic, "text": text}) + "\n" for topic, text in TOPICS.items()))
    build_index(str(run), corpus, tmp_path / "index")
    version = export_saved_model(str(run), tmp_path / "export", corpus_index=tmp_path / "index", top_k=3)
    metadata = json.loads((version / "assets.extra" / "kbert.json").read_text())
    assert metadata["task"] == "retrieval"  # from the run's config.json, without --task
    loaded = tf.saved_model.load(str(version))
    queries = ["football goal", "rain tomorrow"]
    vectors = loaded.signatures["serving_default"](text=tf.constant(queries))["embedding"].numpy()
    # the run has no Normalize module: the pipeline's vectors are not unit length, the export's are
    raw = np.array(kbert.pipeline("sentence-embedding", model=str(run))(queries))
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    found = loaded.signatures["search"](text=tf.constant(queries))
    want = search_index(tmp_path / "index", queries, k=3)
    assert [[i.decode() for i in row] for row in found["ids"].numpy()] == [[h["id"] for h in row] for row in want]
