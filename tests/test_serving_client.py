"""kbert.serving.Client end to end, against TF Serving's official gRPC servicers and its REST JSON API served
in this process (kbert.serving.local_server; no TF Serving binary can be installed here)."""

import functools
import socket

import numpy as np
import pytest
import tensorflow as tf

import kbert
from conftest import CHECKPOINTS
from kbert.errors import InputError, ServingConfigError, ServingConnectionError, ServingResponseError
from kbert.export import export_saved_model
from kbert.serving import Client, LocalModelServer
from kbert.tasks.question_answering.task import QuestionAnswering

TINY = CHECKPOINTS / "tiny-uncased-cls"
PAIR = CHECKPOINTS / "tiny-relu-pair"
TEXTS = ["I love Paris", "", "Café 😀 中国人 " * 30, "what a boring day", "Ça va? Привет, мир"]
PAIRS = [("A man is playing.", "Someone plays."), ("It rains.", "The sun is out in London today.")]
PROTOCOLS = [("grpc", None), ("rest", "inputs"), ("rest", "instances")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_models")
    bases = {"tiny": export_saved_model(TINY, root / "tiny").parent,
             "pair": export_saved_model(PAIR, root / "pair", text_pair=True).parent,
             "embed": export_saved_model(TINY, root / "embed", task="sentence-embedding").parent}
    with LocalModelServer(bases) as server:
        yield server, bases


def client(served, name, protocol, rest_format, **kwargs):
    server, bases = served
    address = server.grpc_target if protocol == "grpc" else server.rest_url
    return Client(address, name, protocol=protocol, saved_model=bases[name], rest_format=rest_format or "inputs",
                  **kwargs)


@functools.cache
def reference(version_dir):
    """The same SavedModel loaded again in this process (not the server's copy)."""
    return tf.saved_model.load(str(version_dir)).signatures["serving_default"]


@functools.cache
def pipeline(task, model):
    return kbert.pipeline(task, model=model)


def direct(base, **inputs):
    """The SavedModel's outputs called directly, the reference of the client's."""
    signature = reference(base / "1")
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def assert_same_outputs(got, want, protocol):
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].shape == value.shape, key
        if value.dtype == object:  # strings: str on both protocols
            assert got[key].tolist() == [s.decode() for s in value.tolist()], key
        elif protocol == "grpc":  # exact dtype and values
            assert got[key].dtype == value.dtype, key
            np.testing.assert_array_equal(got[key], value)
        else:  # JSON numbers: float64 holding the float32 values exactly
            np.testing.assert_array_equal(got[key].astype(value.dtype), value)


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_predict_equals_the_saved_model(served, protocol, rest_format):
    with client(served, "tiny", protocol, rest_format) as c:
        got = c.predict(TEXTS)
    want = direct(served[1]["tiny"], text=TEXTS)
    assert sorted(want) == ["label", "logits", "score", "scores"]
    assert_same_outputs(got, want, protocol)


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_answers_equal_the_pipeline(served, protocol, rest_format):
    with client(served, "tiny", protocol, rest_format) as c:
        answers = c.answers(TEXTS)
    want = pipeline("text-classification", TINY)(TEXTS)
    assert [a["text"] for a in answers] == TEXTS
    assert [a["label"] for a in answers] == [w["label"] for w in want]
    np.testing.assert_allclose([a["score"] for a in answers], [w["score"] for w in want], atol=1e-5)


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_pairs_equal_the_saved_model_and_the_pipeline(served, protocol, rest_format):
    texts, pairs = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    with client(served, "pair", protocol, rest_format) as c:
        assert c.input_names == ["text", "text_pair"]
        assert_same_outputs(c.predict(texts, pairs), direct(served[1]["pair"], text=texts, text_pair=pairs), protocol)
        answers = c.answers(texts, pairs)
        with pytest.raises(InputError, match=r"model 'pair' \(text-classification export\) takes \['text', "
                                             r"'text_pair'\]: give text_pairs for 'text_pair'"):
            c.predict(texts)
    want = pipeline("text-classification", PAIR)([{"text": a, "text_pair": b} for a, b in PAIRS])
    assert [a["text"] for a in answers] == PAIRS
    assert [a["label"] for a in answers] == [w["label"] for w in want]
    np.testing.assert_allclose([a["score"] for a in answers], [w["score"] for w in want], atol=1e-5)


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_a_single_output_signature_is_named_on_every_protocol(served, protocol, rest_format):
    """TF Serving's REST answers leave a lone output unnamed; the client reads its name from the metadata."""
    with client(served, "embed", protocol, rest_format) as c:
        got = c.predict(TEXTS[:3])
        answers = c.answers(TEXTS[:3])
    want = direct(served[1]["embed"], text=TEXTS[:3])
    assert list(want) == ["embedding"]
    assert_same_outputs(got, want, protocol)
    vectors = pipeline("sentence-embedding", TINY)(TEXTS[:3])
    np.testing.assert_allclose([a["embedding"] for a in answers], vectors, atol=1e-5)


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_status_and_server_errors(served, protocol):
    c = client(served, "tiny", protocol, None)
    assert c.status() == [{"version": 1, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}]
    address = served[0].grpc_target if protocol == "grpc" else served[0].rest_url
    with pytest.raises(ServingResponseError, match=r"Servable not found for request: Latest\(nope\)") as err:
        Client(address, "nope", protocol=protocol).status()
    assert err.value.status == ("NOT_FOUND" if protocol == "grpc" else 404)
    with pytest.raises(ServingResponseError, match=r"Servable not found for request: Specific\(tiny, 7\)"):
        Client(address, "tiny", protocol=protocol, version=7).predict(["x"])
    wrong = client(served, "tiny", protocol, None, signature_name="search")
    with pytest.raises(ServingResponseError, match=r'Serving signature key "search" not found.') as err:
        wrong.predict(["x"])
    assert err.value.status == ("FAILED_PRECONDITION" if protocol == "grpc" else 400)
    with pytest.raises(ServingResponseError, match=r"input size does not match signature.*Missing but required: "
                                                   r"\{text\}"):
        c.predict({"text_pair": ["x"]})


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_unreachable_and_silent_servers_are_connection_errors(protocol, silent_port):
    port = closed_port()
    address = f"127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}"
    with pytest.raises(ServingConnectionError, match=f"127.0.0.1:{port}"):
        Client(address, "tiny", protocol=protocol, timeout=10).predict(["x"])
    address = f"127.0.0.1:{silent_port}"  # REST: http:// may be left out
    with pytest.raises(ServingConnectionError,
                       match="DEADLINE_EXCEEDED" if protocol == "grpc" else r"no answer within 0.5 s"):
        Client(address, "tiny", protocol=protocol, timeout=0.5).status()


def test_bad_arguments_are_input_errors(served):
    server, bases = served
    with pytest.raises(InputError, match=r"protocol must be one of \['rest', 'grpc'\], got 'http'"):
        Client(server.rest_url, "tiny", protocol="http")
    with pytest.raises(InputError, match=r"rest_format must be one of \['inputs', 'instances'\], got 'rows'"):
        Client(server.rest_url, "tiny", rest_format="rows")
    c = client(served, "tiny", "rest", None)
    with pytest.raises(InputError, match=r"texts must be a list of str, got str 'I love Paris'"):
        c.predict("I love Paris")
    with pytest.raises(InputError, match=r"texts\[1\] must be a str, got int 3"):
        c.predict(["a", 3])
    with pytest.raises(InputError, match=r"no texts given"):
        c.predict([])
    with pytest.raises(InputError, match=r"model 'tiny' \(text-classification export\) takes no text pairs"):
        c.predict(["a"], ["b"])
    for read in (Client(server.rest_url, "tiny").answers, Client(server.rest_url, "tiny")):
        with pytest.raises(ServingConfigError, match=r"reading the answers needs the export's assets.extra/kbert.json: "
                                                     r"create the Client with saved_model=FOLDER"):
            read(["a"])
    with pytest.raises(ServingConfigError, match=r"saved_model=.*: no version 4 \(has \[1\]\)"):
        Client(server.rest_url, "tiny", saved_model=bases["tiny"], version=4)


# --- question answering and entity tagging through the server --------------------------------------------
QA = CHECKPOINTS / "tiny-uncased-qa"
NER = CHECKPOINTS / "tiny-cased-token-cls"  # random head: many entities, every kind of piece
ROBERTA_NER = CHECKPOINTS / "tiny-roberta-ner"  # byte-level BPE: no word-aware pieces
QUESTIONS = [{"question": "Where is Sinan living these days?",
              "context": "Sinan lives in California but Matt lives in Boston."},
             {"question": "Who lives in Boston?", "context": "Café déjà vu: Matt lives in Boston, 北京 is far. " * 20}]
SENTENCES = ["Sinan lives in California but Matt lives in Boston .", "Apple opened a store in Paris 😀"]


@pytest.fixture(scope="module")
def served_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_task_models")
    bases = {"qa": export_saved_model(QA, root / "qa", task="question-answering").parent,
             "ner": export_saved_model(NER, root / "ner").parent,
             "roberta-ner": export_saved_model(ROBERTA_NER, root / "roberta-ner").parent,
             "features": export_saved_model(TINY, root / "features", task="feature-extraction").parent}
    with LocalModelServer(bases) as server:
        yield server, bases


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_question_answering_answers_equal_the_pipeline(served_tasks, protocol, rest_format):
    with client(served_tasks, "qa", protocol, rest_format) as c:
        assert c.input_names == ["question", "context"]
        answers = c.answers({"question": [q["question"] for q in QUESTIONS],
                             "context": [q["context"] for q in QUESTIONS]})
    want = pipeline("question-answering", QA)(QUESTIONS)
    assert [a["question"] for a in answers] == [q["question"] for q in QUESTIONS]
    for got, expected, record in zip(answers, want, QUESTIONS):
        assert (got["answer"], got["start"], got["end"]) == (expected["answer"], expected["start"], expected["end"])
        assert got["answer"] == record["context"][got["start"]:got["end"]]  # character offsets into the context
        assert got["score"] == pytest.approx(expected["score"], abs=1e-6)  # full precision, not rounded


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_entity_answers_equal_the_pipeline(served_tasks, protocol, rest_format):
    with client(served_tasks, "ner", protocol, rest_format) as c:
        answers = c.answers(SENTENCES)
    want = pipeline("token-classification", NER)(SENTENCES, aggregation_strategy="simple")
    assert [a["text"] for a in answers] == SENTENCES
    assert all(len(entities) >= 5 for entities in want)  # something to compare
    for got, expected in zip(answers, want):
        assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in got["entities"]] == \
               [(e["entity_group"], e["word"], e["start"], e["end"]) for e in expected]
        np.testing.assert_allclose([e["score"] for e in got["entities"]], [e["score"] for e in expected], atol=1e-6)


# --- calling the client like the pipeline: its call forms, and the same values, keys, order and nesting --------
def assert_same(got, want, where="result"):
    """Equal structures: dict keys in the same order, str/int/bool exactly, floats within 1e-6, arrays alike."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), (where, got, want)
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (where, got, want)
        for i, (a, b) in enumerate(zip(got, want)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype == want.dtype, (where, got, want)
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=where)
    elif isinstance(want, float):
        assert isinstance(got, float) and got == pytest.approx(want, abs=1e-6), (where, got, want)
    else:
        assert type(got) is type(want) and got == want, (where, got, want)


def assert_calls_agree(c, pipe, calls):
    """Every ``(args, kwargs)`` call of the client gives what the same call of the pipeline gives."""
    for args, kwargs in calls:
        assert_same(c(*args, **kwargs), pipe(*args, **kwargs), f"call {args!r:.80} {kwargs}")


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_text_classification_calls_equal_the_pipelines(served, protocol, rest_format):
    with client(served, "tiny", protocol, rest_format) as c:
        assert_calls_agree(c, pipeline("text-classification", TINY), [
            (("I love Paris",), {}),  # a single str: [{'label', 'score'}]
            ((TEXTS,), {}), ((TEXTS[:2],), {"top_k": None}), (("I love Paris",), {"top_k": 2}),
            ((TEXTS[:2],), {"function_to_apply": "sigmoid", "top_k": 3}),
            (("what a day",), {"function_to_apply": "none"}),
            (({"text": "I love Paris"},), {}),
        ])
        with pytest.raises(InputError, match=r"input 0: model 'tiny' \(text-classification export\) takes no text "
                                             r"pairs"):
            c({"text": "a", "text_pair": "b"})
        with pytest.raises(InputError, match=r"text-classification: top_k must be a positive int or None, got 0"):
            c("a", top_k=0)
    dicts = [{"text": a, "text_pair": b} for a, b in PAIRS]
    with client(served, "pair", protocol, rest_format) as c:
        assert_calls_agree(c, pipeline("text-classification", PAIR), [
            ((dicts[0],), {}), ((dicts,), {}), ((dicts,), {"top_k": 2}), ((dicts[1],), {"top_k": None})])
        with pytest.raises(InputError, match=r"input 1: model 'pair' \(text-classification export\) takes "
                                             r"\['text', 'text_pair'\]"):
            c([dicts[0], "no pair"])


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_token_classification_calls_equal_the_pipelines(served_tasks, protocol, rest_format):
    pipe = pipeline("token-classification", NER)
    assert all(len(entities) >= 5 for entities in pipe(SENTENCES, aggregation_strategy="simple"))  # to compare
    with client(served_tasks, "ner", protocol, rest_format) as c:
        assert_calls_agree(c, pipe, [
            ((SENTENCES[0],), {}),  # the pipeline's default: "none", one dict per token
            ((SENTENCES,), {}), ((SENTENCES,), {"ignore_labels": []}),
            *(((SENTENCES,), {"aggregation_strategy": s}) for s in ("simple", "first", "average", "max")),
            ((SENTENCES[1],), {"aggregation_strategy": "SIMPLE", "ignore_labels": ["O", "PER"]}),
        ])
        with pytest.raises(InputError, match=r"token-classification export: \['stride'\] cannot be applied to the "
                                             r"served outputs"):
            c(SENTENCES, stride=16, aggregation_strategy="first")
        with pytest.raises(InputError, match=r"its simple groups leave out 'O'; ignore_labels=\[\] would keep them"):
            c(SENTENCES, aggregation_strategy="simple", ignore_labels=[])
    with client(served_tasks, "roberta-ner", protocol, rest_format) as c:
        assert_calls_agree(c, pipeline("token-classification", ROBERTA_NER), [
            ((SENTENCES,), {}), ((SENTENCES[0],), {"aggregation_strategy": "simple"})])
        with pytest.raises(InputError, match=r"aggregation_strategy='first' needs a WordPiece tokenizer"):
            c(SENTENCES, aggregation_strategy="first")


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_question_answering_calls_equal_the_pipelines(served_tasks, protocol, rest_format):
    first, second = QUESTIONS
    with client(served_tasks, "qa", protocol, rest_format) as c:
        assert_calls_agree(c, pipeline("question-answering", QA), [
            ((), first),  # question=, context= keywords: one dict
            ((first,), {}), ((QUESTIONS,), {}), ((QUESTIONS[:1],), {}),  # a list of one comes back alone
            (((first["question"], first["context"]),), {}),  # (question, context)
            ((), {"question": [first["question"], second["question"]], "context": second["context"]}),
            ((), {"question": [q["question"] for q in QUESTIONS], "context": [q["context"] for q in QUESTIONS]}),
            ((QUESTIONS,), {"top_k": 1}),
        ])
        with pytest.raises(InputError, match=r"question-answering export: \['doc_stride', 'max_answer_len'\] cannot be "
                                             r"applied"):
            c(first, doc_stride=32, max_answer_len=5)
        with pytest.raises(InputError, match=r"top_k=6 is more than the 5 answers per question it keeps"):
            c(first, top_k=6)
        with pytest.raises(InputError, match=r"give the inputs either positionally or as question=/context=, not both"):
            c(first, question="Who?")


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_question_answering_top_k_calls_equal_the_pipelines(served_tasks, protocol, rest_format):
    """``top_k`` 2 to 5 gives ``pipe(..., top_k=top_k)``'s answers, which are not the first of ``top_k=5``'s: the
    pipeline draws ``2 * top_k + 10`` candidates per window, so merged scores and ranks depend on ``top_k``."""
    first = QUESTIONS[0]
    pipe = pipeline("question-answering", QA)
    assert [a["answer"] for a in pipe(first, top_k=3)] != [a["answer"] for a in pipe(first, top_k=5)[:3]]
    with client(served_tasks, "qa", protocol, rest_format) as c:
        assert_calls_agree(c, pipe, [*(((first,), {"top_k": k}) for k in range(2, 6)), ((QUESTIONS,), {"top_k": 3}),
                                     ((), {**first, "top_k": 4})])


def test_question_answering_exports_with_one_list_per_question_are_named():
    # exports made before top_k_* held each top_k's answers: one count per question, which top_k=3 cannot use
    outputs = {"count": [2], "top_k_answer": [["Boston", "Matt", "", "", ""]], "top_k_start": [[44, 30, -1, -1, -1]],
               "top_k_end": [[50, 34, -1, -1, -1]], "top_k_score": [[0.5, 0.25, 0.0, 0.0, 0.0]]}
    with pytest.raises(ServingConfigError, match=r"question-answering export: its 'count' output has one number per "
                                                 r"question, not one per top_k .* export the checkpoint again"):
        QuestionAnswering.pipeline_outputs_from_serving([None], outputs, {"top_k": 5}, {"top_k": 3})


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_vector_calls_equal_the_pipelines(served, served_tasks, protocol, rest_format):
    with client(served_tasks, "features", protocol, rest_format) as c:
        assert_calls_agree(c, pipeline("feature-extraction", TINY), [
            ((SENTENCES[0],), {}), ((SENTENCES,), {}),  # (1, T, H) nested lists per text
            ((SENTENCES,), {"pooling": "mean"}), ((SENTENCES[1],), {"pooling": "cls", "normalize": True}),
            ((SENTENCES,), {"pooling": "mean", "return_tensors": True}),
        ])
        with pytest.raises(InputError, match=r"pooling='pooled' needs the pooler output, which it does not serve"):
            c(SENTENCES, pooling="pooled")
    with client(served, "embed", protocol, rest_format) as c:
        assert_calls_agree(c, pipeline("sentence-embedding", TINY), [
            ((TEXTS[0],), {}), ((TEXTS[:3],), {}), ((TEXTS[:3],), {"normalize": True}),
            ((TEXTS[:3],), {"return_tensors": True}),
        ])
        with pytest.raises(InputError, match=r"sentence-embedding export: \['prompt'\] cannot be applied"):
            c(TEXTS[:1], prompt="query: ")
