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
QUESTIONS = [{"question": "Where is Sinan living these days?",
              "context": "Sinan lives in California but Matt lives in Boston."},
             {"question": "Who lives in Boston?", "context": "Café déjà vu: Matt lives in Boston, 北京 is far. " * 20}]
SENTENCES = ["Sinan lives in California but Matt lives in Boston .", "Apple opened a store in Paris 😀"]


@pytest.fixture(scope="module")
def served_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_task_models")
    bases = {"qa": export_saved_model(QA, root / "qa", task="question-answering").parent,
             "ner": export_saved_model(NER, root / "ner").parent,
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
        assert got["score"] == pytest.approx(expected["score"], abs=1e-4)


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
        np.testing.assert_allclose([e["score"] for e in got["entities"]], [e["score"] for e in expected], atol=1e-4)


# --- calling the client: the pipeline's own output shapes ------------------------------------------------
def _close(got, want):
    """Equal structures: strings and ints exactly, floats within 1e-4."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), (got, want)
        for key in want:
            _close(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), (got, want)
        for a, b in zip(got, want):
            _close(a, b)
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-4)
    else:
        assert got == want


@pytest.mark.parametrize("protocol, rest_format", PROTOCOLS)
def test_calling_the_client_gives_the_pipelines_outputs(served, served_tasks, protocol, rest_format):
    with client(served, "tiny", protocol, rest_format) as c:
        _close(c(TEXTS), pipeline("text-classification", TINY)(TEXTS))  # [{'label', 'score'}]
    with client(served, "embed", protocol, rest_format) as c:
        _close(c(TEXTS[:3]), pipeline("sentence-embedding", TINY)(TEXTS[:3]))  # [[floats]]
    with client(served_tasks, "qa", protocol, rest_format) as c:
        got = c({"question": [q["question"] for q in QUESTIONS], "context": [q["context"] for q in QUESTIONS]})
        _close(got, pipeline("question-answering", QA)(QUESTIONS))  # [{'score', 'start', 'end', 'answer'}]
    with client(served_tasks, "ner", protocol, rest_format) as c:
        want = pipeline("token-classification", NER)(SENTENCES, aggregation_strategy="simple")
        _close(c(SENTENCES), want)  # [[{'entity_group', 'score', 'word', 'start', 'end'}]]
    with client(served_tasks, "features", protocol, rest_format) as c:
        _close(c(SENTENCES), pipeline("feature-extraction", TINY)(SENTENCES))  # [(1, T, H) nested lists]
