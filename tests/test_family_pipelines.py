"""Every task on DistilBERT, ELECTRA, MPNet, XLM-RoBERTa and ALBERT checkpoints as on BERT: pipelines, raw-string
exports, `kbert train`, retrieval training.

Pipeline references are transformers 4.57's own calls on the tiny fixtures (tests/fixtures/make_family_fixtures.py):
DistilBERT and MPNet tokenizers give no token type ids, MPNet pairs read ``<s> A </s></s> B </s>`` and its
``<mask>`` takes the space before it, ELECTRA's classification head uses gelu whatever the encoder's activation.
XLM-RoBERTa and ALBERT (SentencePiece: words start at ``▁``) are also called on Turkish, German, Chinese, Arabic and
Hindi text, through the pipelines and their exports.
"""

import json
import os
import subprocess
import sys
import unicodedata

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS, EXPECTED, ROOT
from kbert.export import export_saved_model
from test_export import assert_answers, assert_entities, assert_tokens, serve
from test_export_edges import assert_question_answering_edges, assert_token_classification_edges
from test_pipeline_feature_extraction import nesting
from test_roberta_pipelines import pipelines, same  # noqa: F401  (pipelines: a module-scoped fixture)

CALLS = json.loads((EXPECTED / "families_pipelines.json").read_text())["calls"]
MODELS = json.loads((EXPECTED / "families_models.json").read_text())["models"]
CLASSES = {name: meta["class"] for name, meta in MODELS.items()}
FAMILIES = ["distilbert", "electra", "mpnet", "xlm-roberta", "albert", "deberta-v2", "modernbert"]
SENTENCEPIECE = ["xlm-roberta", "albert", "deberta-v2"]
HEADS = {"text-classification": "cls", "token-classification": "ner", "question-answering": "qa"}
MULTILINGUAL = json.loads((EXPECTED / "families_models.json").read_text())["multilingual"]


def test_the_recorded_calls_cover_every_family_and_task():
    covered = {(MODELS[c["checkpoint"]]["family"], c["task"]) for c in CALLS}
    tasks = ["text-classification", "token-classification", "question-answering", "feature-extraction"]
    assert covered == {(f, t) for f in FAMILIES for t in tasks}


def call_id(call):
    return f"{call['checkpoint']}-{call['task']}-{json.dumps(call['kwargs'], sort_keys=True)}"


@pytest.mark.parametrize("call", CALLS, ids=call_id)
def test_pipeline_outputs_equal_transformers(call, pipelines):
    ours = json.loads(json.dumps(pipelines(call["task"], call["checkpoint"])(call["inputs"], **call["kwargs"])))
    if call["task"] != "feature-extraction":
        same(ours, call["output"])
        return
    assert len(ours) == len(call["output"])
    for got, want in zip(ours, call["output"]):  # [1][T][H] per text: hidden states, to 1e-4
        assert nesting(got) == nesting(want)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)


TEXTS = ["Sinan went from Istanbul to San Francisco.", "  Hello   world!\n",
         "Café naïve 😀 中国人 it's <mask> [SEP]"]
QA_INPUTS = {"question": ["Where does Sinan live?", "Who won the match?", "Où vit Zoë ?"],
             "context": ["Sinan lives in California but Matt lives in Boston.",
                         "The team won the match today and all the people were happy. " * 24,  # several windows
                         "Zoë vit à Montréal, au Québec."]}


def multilingual_calls(task):
    return [c for c in CALLS if c["task"] == task and MODELS[c["checkpoint"]]["family"] in SENTENCEPIECE
            and c["inputs"] in (MULTILINGUAL, MULTILINGUAL_QA)]


MULTILINGUAL_QA = next(c["inputs"] for c in CALLS if c["task"] == "question-answering"
                       and MODELS[c["checkpoint"]]["family"] in SENTENCEPIECE
                       and c["inputs"][0]["question"] == "Hava nasıl?")


def test_multilingual_answers_and_entities_are_spans_of_the_text():
    """What transformers answers on Turkish, German, Chinese, Arabic and Hindi text is ``context[start:end]`` (kbert
    gives the same: test_pipeline_outputs_equal_transformers); entities' spans hold their word as transformers
    decodes it (``▁`` alone decodes to "")."""
    qa, ner = multilingual_calls("question-answering"), multilingual_calls("token-classification")
    assert len(qa) == 2 * len(SENTENCEPIECE) and len(ner) == 5 * len(SENTENCEPIECE)
    for call in qa:
        for case, answers in zip(call["inputs"], call["output"]):
            answers = answers if isinstance(answers, list) else [answers]  # one answer: not in a list
            assert answers and all(a["answer"] == case["context"][a["start"]:a["end"]] for a in answers), answers
    for call in ner:
        albert = MODELS[call["checkpoint"]]["family"] == "albert"
        for text, entities in zip(call["inputs"], call["output"]):
            for e in entities:
                raw = text[e["start"]:e["end"]]
                assert normalised(e["word"], albert) in normalised(raw, albert), (e, raw)


def normalised(text: str, albert: bool) -> str:
    """Text as the tiny SentencePiece normalisers see it, ``▁`` and spaces dropped: an entity's word is pieces
    ("▁Ber"), words decoded from them (transformers may drop the spaces between words) or, for an unknown piece,
    the span itself. ALBERT lower-cases and drops marks (the tokenizers crate's StripAccents: Mn, Mc, Me)."""
    text = unicodedata.normalize("NFKC", text.replace("▁", ""))
    if albert:
        text = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.category(c)[0] == "M")
    return "".join(text.split())


EXPORT_TEXTS = {family: TEXTS + (MULTILINGUAL if family in SENTENCEPIECE else []) for family in FAMILIES}
EXPORT_QA = {family: {key: QA_INPUTS[key] + ([c[key] for c in MULTILINGUAL_QA] if family in SENTENCEPIECE else [])
                      for key in QA_INPUTS} for family in FAMILIES}


# ALBERT's, DeBERTa's and ModernBERT's classifier exports are left out for time (~45-65 s each on 2 cores): their
# tokenizers are exported by NER and QA, their heads checked by the pipeline tests, and a classifier export differs
# from another family's only by those.
EXPORTS = [(family, task) for family in FAMILIES for task in ["text-classification", "token-classification",
                                                                "question-answering"]
           if task != "text-classification" or family not in {"albert", "deberta-v2", "modernbert"}]


@pytest.mark.parametrize("family, task", EXPORTS)
def test_raw_string_export_equals_the_pipeline(family, task, tmp_path, pipelines):
    """The family's tokenizer, model and the task's decoding in a SavedModel served by bare TensorFlow (XLM-RoBERTa
    and ALBERT on multilingual text too; their answers are spans of the context)."""
    name = f"tiny-{family}-{HEADS[task]}"
    version = export_saved_model(CHECKPOINTS / name, tmp_path / "served")
    assert json.loads((version / "assets.extra" / "kbert.json").read_text())["task"] == task
    pipe = pipelines(task, name)
    if task == "question-answering":
        inputs = EXPORT_QA[family]
        got = serve(version, inputs)
        assert_answers(got, pipe, inputs, impossible=False)
        for b, context in enumerate(inputs["context"]):
            assert got["start"][b] < 0 or got["answer"][b] == context[got["start"][b]:got["end"][b]]
        assert_question_answering_edges(version, pipe)
        return
    texts = EXPORT_TEXTS[family]
    got = serve(version, {"text": texts})
    if task == "text-classification":
        for b, want in enumerate(pipe(texts)):
            assert got["label"][b] == want["label"] and got["score"][b] == pytest.approx(want["score"], abs=1e-5)
        return
    tokens = pipe(texts, ignore_labels=[])
    for b, entities in enumerate(pipe(texts, aggregation_strategy="simple")):
        assert_entities(got, b, entities)
        assert_tokens(got, b, tokens[b])
    assert_token_classification_edges(version, pipe)


@pytest.mark.parametrize("family", FAMILIES)
def test_kbert_train_writes_a_folder_of_the_family(family, tmp_path):
    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"the movie was {w}\t{label}\n" for w, label in
                                              [("great", "positive"), ("bad", "negative"), ("fine", "neutral")] * 4))
    name = f"tiny-{family}-cls"
    done = subprocess.run([sys.executable, "-m", "kbert", "train", "--model", str(CHECKPOINTS / name), "--train",
                           str(data), "--eval", str(data), "--epochs", "1", "--batch-size", "4", "--max-length", "16", "--output",
                           str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert results[-1]["checkpoint"] == str(tmp_path / "run"), results
    assert np.isfinite(results[-1]["metrics"]["loss"]) and results[-1]["metrics"]["examples"] == 12, results
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model_type"] == family and config["architectures"] == [CLASSES[name]]
    assert kbert.load_checkpoint(tmp_path / "run").config.model_type == family


RETRIEVAL_START = {"distilbert": "tiny-distilbert-cls", "electra": "tiny-electra-cls", "mpnet": "tiny-mpnet-sentence",
                   "xlm-roberta": "tiny-xlm-roberta-e5", "albert": "tiny-albert-cls",
                   "deberta-v2": "tiny-deberta-v2-cls", "modernbert": "tiny-modernbert-cls"}


@pytest.mark.parametrize("family", FAMILIES)
def test_retrieval_training_writes_a_sentence_transformers_folder_of_the_family(family, tmp_path):
    """A bi-encoder trained from each family is saved as ``<Family>Model`` + modules.json; kbert embeds with it, and
    (with .venv-ref) sentence-transformers gives the same vectors."""
    from test_retrieval_training import REFERENCE_PYTHON, _pairs_file, _topic_rows

    train = _pairs_file(tmp_path, _topic_rows(1), "train.jsonl")
    run = kbert.train(task="retrieval", train=str(train), output=str(tmp_path / "run"),
                      model=str(CHECKPOINTS / RETRIEVAL_START[family]), epochs=1, batch_size=8, max_length=16,
                      verbose=0).output
    config = json.loads((run / "config.json").read_text())
    assert config["model_type"] == family and config["architectures"] == [kbert.load_checkpoint(run).family.class_prefix
                                                                           + "Model"]
    texts = ["football goal", "", "the rocket launched a new satellite tonight"]
    ours = np.array(kbert.pipeline("sentence-embedding", model=str(run))(texts))
    assert ours.shape == (3, 32) and np.isfinite(ours).all()
    if not REFERENCE_PYTHON.exists():
        pytest.skip("reference env (.venv-ref) absent: run `make reference-env`")
    script = ("import json, sys; from sentence_transformers import SentenceTransformer as S; "
              "m = S(sys.argv[1], device='cpu'); print(json.dumps(m.encode(json.loads(sys.argv[2])).tolist()))")
    done = subprocess.run([str(REFERENCE_PYTHON), "-c", script, str(run), json.dumps(texts)], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(ours, np.array(json.loads(done.stdout.strip().splitlines()[-1])), atol=1e-5)
