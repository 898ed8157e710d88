"""kbert serving-config: TF Serving's models.config (read back with the official proto) and batching parameters."""

import json
import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kbert.cli import main
from kbert.errors import ServingConfigError
from kbert.serving.server_config import BatchingParameters, served_models


def base_folder(path, versions=(1,)):
    """A model base folder laid out as kbert export writes it (empty saved_model.pb files: only names matter)."""
    for v in versions:
        (path / str(v)).mkdir(parents=True)
        (path / str(v) / "saved_model.pb").write_bytes(b"")
    return path


def read_config(path):
    return text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())


def run_cli(capsys, *argv):
    code = main(["serving-config", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_models_config_has_one_entry_per_base_folder(tmp_path, capsys):
    sentiment = base_folder(tmp_path / "saved_models" / "sentiment", versions=(1, 3))
    embed = base_folder(tmp_path / "saved_models" / "minilm-embed")
    (embed / ".tmp-123").mkdir()  # a half-written export is not a version
    output = tmp_path / "conf" / "models.config"
    code, out, err = run_cli(capsys, "--output", output, sentiment, str(embed) + "/")
    assert code == 0, err
    config = read_config(output)
    got = [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config]
    assert got == [("sentiment", str(sentiment.resolve()), "tensorflow"),
                   ("minilm-embed", str(embed.resolve()), "tensorflow")]
    summary = json.loads(out)
    assert [m["versions"] for m in summary["models"]] == [[1, 3], [1]]
    assert summary["batching_parameters"] is None and not (output.parent / "batching_parameters.txt").exists()
    assert f"--model_config_file={output.resolve()}" in summary["command"]
    assert "--enable_batching" not in summary["command"]


def test_names_base_path_root_and_batching(tmp_path, capsys):
    a = base_folder(tmp_path / "a" / "model")
    b = base_folder(tmp_path / "b" / "other")
    output = tmp_path / "models.config"
    code, out, err = run_cli(capsys, "--output", output, "--name", "sentiment", "--name", "nli",
                             "--base-path-root", "/models/", "--batching", "--num-batch-threads", "3",
                             "--max-batch-size", "16", a, b)
    assert code == 0, err
    config = read_config(output)
    assert [(c.name, c.base_path) for c in config.model_config_list.config] == [
        ("sentiment", "/models/model"), ("nli", "/models/other")]
    batching = (tmp_path / "batching_parameters.txt").read_text().splitlines()
    assert batching == ["max_batch_size { value: 16 }", "batch_timeout_micros { value: 2000 }",
                        "num_batch_threads { value: 3 }", "max_enqueued_batches { value: 100 }"]
    command = json.loads(out)["command"]
    assert "--enable_batching" in command and f"--batching_parameters_file={tmp_path / 'batching_parameters.txt'}" in command


def test_default_batch_threads_are_the_cores():
    assert BatchingParameters().num_batch_threads == (os.cpu_count() or 1)
    with pytest.raises(ServingConfigError, match=r"batching: max_batch_size must be an integer >= 1, got 0"):
        BatchingParameters(max_batch_size=0)
    with pytest.raises(ServingConfigError, match=r"batch_timeout_micros must be an integer >= 0, got -1"):
        BatchingParameters(batch_timeout_micros=-1)
    assert BatchingParameters(batch_timeout_micros=0).text().splitlines()[1] == "batch_timeout_micros { value: 0 }"


@pytest.mark.parametrize("layout, args, message", [
    (lambda t: None, ["{t}/nowhere"], r"{t}/nowhere: no such model base folder"),
    (lambda t: (t / "m" / "1").mkdir(parents=True), ["{t}/m"],
     r"{t}/m: no version folder <number>/saved_model.pb in it"),
    (lambda t: base_folder(t / "m"), ["{t}/m/1"], r"it is a version folder itself: give its parent {t}/m$"),
    (lambda t: (base_folder(t / "x" / "m"), base_folder(t / "y" / "m")), ["{t}/x/m", "{t}/y/m"],
     r"model name 'm' is given twice: {t}/x/m and {t}/y/m \(give --name to tell them apart\)"),
    (lambda t: (base_folder(t / "a"), base_folder(t / "b")), ["--name", "same", "--name", "same", "{t}/a", "{t}/b"],
     r"model name 'same' is given twice"),
    (lambda t: (base_folder(t / "a"), base_folder(t / "b")), ["--name", "only", "{t}/a", "{t}/b"],
     r"1 model name\(s\) \['only'\] for 2 base folder\(s\): give one --name per folder"),
    (lambda t: base_folder(t / "a"), ["--name", "my model", "{t}/a"], r"model name 'my model' must be letters"),
    (lambda t: base_folder(t / "a"), ["--max-batch-size", "8", "{t}/a"], r"--max-batch-size: only with --batching"),
    (lambda t: base_folder(t / "a"), ["--batching", "--num-batch-threads", "0", "{t}/a"],
     r"num_batch_threads must be an integer >= 1, got 0"),
])
def test_bad_folders_and_names_are_errors_and_write_nothing(tmp_path, capsys, layout, args, message):
    layout(tmp_path)
    output = tmp_path / "out" / "models.config"
    code, out, err = run_cli(capsys, "--output", output, *[a.format(t=tmp_path) for a in args])
    assert code == 2 and out == ""
    assert err.startswith("kbert: error: ")
    import re
    assert re.search(message.format(t=re.escape(str(tmp_path))), err.strip()), err
    assert not output.exists() and not (output.parent / "batching_parameters.txt").exists()


def test_same_folder_name_under_a_base_path_root_is_an_error(tmp_path):
    a, b = base_folder(tmp_path / "x" / "m"), base_folder(tmp_path / "y" / "m")
    with pytest.raises(ServingConfigError, match=r"both become base_path '/models/m' under base_path_root /models"):
        served_models([a, b], ["one", "two"], base_path_root="/models")
