"""kbert train / evaluate --task question-answering: SQuAD files in, an HF BertForQuestionAnswering folder and
official SQuAD metrics out; run_qa.py's answer selection (scoring.best_answer) on hand-made windows."""

import json

import numpy as np
import pytest

import kbert
from conftest import CHECKPOINTS
from kbert.checkpoint.safetensors_io import read_safetensors
from kbert.errors import TrainingError
from kbert.tasks.question_answering.scoring import best_answer

TINY = str(CHECKPOINTS / "tiny-uncased-qa")
PARAGRAPHS = [
    ("Sinan lives in California but Matt lives in Boston.",
     [("Where does Sinan live?", "California", None), ("Where does Matt live?", "Boston", None),
      ("Where does Ada live?", None, "California")]),
    ("The Eiffel Tower is in Paris. It was finished in 1889 by Gustave Eiffel's company.",
     [("When was the tower finished?", "1889", None), ("Who built the tower?", "Gustave Eiffel's company", None)]),
]


def squad_file(path, version_2: bool, copies: int = 4):
    """A SQuAD JSON file of the paragraphs above (``copies`` articles of them); impossible questions only in v2."""
    articles = []
    for copy in range(copies):
        paragraphs = []
        for p, (context, questions) in enumerate(PARAGRAPHS):
            qas = []
            for q, (question, answer, plausible) in enumerate(questions):
                if answer is None and not version_2:
                    continue
                item = {"id": f"a{copy}p{p}q{q}", "question": question,
                        "answers": [] if answer is None else [{"text": answer, "answer_start": context.index(answer)}]}
                if version_2:
                    item["is_impossible"] = answer is None
                    if plausible:
                        item["plausible_answers"] = [{"text": plausible, "answer_start": context.index(plausible)}]
                qas.append(item)
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": f"article {copy}", "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "v2.0" if version_2 else "1.1", "data": articles}))
    return str(path)


@pytest.mark.parametrize("version_2", [False, True])
def test_training_writes_a_qa_checkpoint_and_official_metrics(tmp_path, version_2):
    data = squad_file(tmp_path / "train.json", version_2)
    result = kbert.train(train=data, eval=data, output=str(tmp_path / "run"), model=TINY, task="question-answering",
                         epochs=2, batch_size=8, max_length=48, doc_stride=16, learning_rate=1e-3, verbose=0,
                         version_2_with_negative=version_2)
    metrics = result.metrics
    assert metrics["examples"] == (20 if version_2 else 16)
    assert 0 <= metrics["exact_match"] <= 100 and metrics["exact_match"] <= metrics["f1"] <= 100
    assert ("HasAns_exact" in metrics and "best_f1_thresh" in metrics) == version_2
    assert np.isfinite(metrics["loss"])
    config = json.loads((result.output / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
    assert config["kbert"]["task"] == "question-answering" and config["kbert"]["doc_stride"] == 16
    tensors = read_safetensors(result.output / "model.safetensors")
    assert tensors["qa_outputs.weight"].shape == (2, 32) and not any(k.startswith("bert.pooler") for k in tensors)
    # the trained folder answers questions, and scores the same through `kbert evaluate`
    qa = kbert.pipeline("question-answering", model=result.output)
    answer = qa(question="Where does Sinan live?", context=PARAGRAPHS[0][0])
    assert answer["answer"] == PARAGRAPHS[0][0][answer["start"]:answer["end"]]
    from kbert.training.evaluation import evaluate

    again = evaluate(str(result.output), data, task="question-answering", batch_size=8, max_length=48,
                     doc_stride=16, version_2_with_negative=version_2)
    assert again["exact_match"] == pytest.approx(metrics["exact_match"]) and again["f1"] == pytest.approx(metrics["f1"])


def test_v1_training_refuses_questions_without_answers(tmp_path):
    data = squad_file(tmp_path / "v2.json", version_2=True)
    with pytest.raises(TrainingError, match="--version-2-with-negative"):
        kbert.train(train=data, output=str(tmp_path / "run"), model=TINY, task="question-answering", verbose=0)
    assert not (tmp_path / "run").exists()  # nothing written before the data is validated


def window(start, end, context_tokens):
    """A window: [CLS] q [SEP] context tokens (one char each) [SEP]; logits given for every position."""
    n = 3 + len(context_tokens) + 1
    seq = np.array([-1, 0, -1] + [1] * len(context_tokens) + [-1])
    starts = np.array([0, 0, 0] + [c for c, _ in context_tokens] + [0])
    ends = np.array([0, 0, 0] + [e for _, e in context_tokens] + [0])
    assert len(start) == len(end) == n
    return {"start_logits": np.array(start, np.float32), "end_logits": np.array(end, np.float32),
            "starts": starts, "ends": ends, "sequence_ids": seq}


def test_best_answer_pools_windows_and_applies_the_null_threshold():
    context = "abcdef"
    tokens = [(i, i + 1) for i in range(6)]
    w1 = window([0, 0, 0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 2, 0, 0, 0, 0, 0], tokens)
    w2 = window([1, 5, 0, 0, 0, 0, 3, 0, 0, 0], [1, 5, 0, 0, 0, 0, 0, 3, 0, 0], tokens)  # best span: "de" (6)
    assert best_answer([w1, w2], context, version_2=False) == ("de", 0.0)
    # v2: the null score is the smallest [CLS] start + end (w1: 0), the best span's 6: diff -6
    assert best_answer([w1, w2], context, version_2=True) == ("de", -6.0)
    assert best_answer([w1, w2], context, version_2=True, null_score_diff_threshold=-7.0)[0] == ""
    # question tokens and spans longer than max_answer_len are never answers
    assert best_answer([w2], context, version_2=False, max_answer_len=1) != ("de", 0.0)


def test_a_qa_recipe_trains_exports_and_answers_question_context_records(tmp_path):
    """[predict] inputs are records of the export's input names; answers come from the SavedModel."""
    from kbert.recipes import load_recipe, run_recipe

    data = squad_file(tmp_path / "train.json", version_2=True)
    recipe = tmp_path / "qa.toml"
    recipe.write_text(f"""
[train]
task = "question-answering"
model = "{TINY}"
train = "{data}[:12]"
eval = "{data}[12:]"
output = "{tmp_path / 'run'}"
version_2_with_negative = true
epochs = 1
batch_size = 8
max_length = 48
doc_stride = 16
verbose = 0
[export]
output = "{tmp_path / 'served'}"
[predict]
inputs = [{{ question = "Where does Sinan live?", context = "Sinan lives in California but Matt lives in Boston." }}]
""")
    assert load_recipe(recipe).predict_texts[0]["question"] == "Where does Sinan live?"
    summary = run_recipe(recipe)
    assert summary["metrics"]["examples"] == 8 and "NoAns_exact" in summary["metrics"]
    [answer] = summary["predictions"]
    context = "Sinan lives in California but Matt lives in Boston."
    assert answer["question"] == "Where does Sinan live?"
    assert answer["answer"] == (context[answer["start"]:answer["end"]] if answer["start"] >= 0 else "")
    qa = kbert.pipeline("question-answering", model=summary["checkpoint"])
    ours = qa(question="Where does Sinan live?", context=context, handle_impossible_answer=True)
    assert (ours["answer"], ours["start"], ours["end"]) == (answer["answer"], answer["start"], answer["end"])


def test_every_squad_recipe_splits_its_file_by_article(shared_data):
    from kbert.recipes import load_recipe
    from kbert.tasks.question_answering.squad_files import read_qa_examples
    from conftest import ROOT

    for name, sizes in (("squad_v1", (7331, 1251)), ("squad_v2", (3708, 486))):
        recipe = load_recipe(ROOT / "pipelines" / f"{name}.toml")
        train, held_out = read_qa_examples(recipe.train.train), read_qa_examples(recipe.train.eval)
        assert (len(train), len(held_out)) == sizes
        assert not {e.title for e in train} & {e.title for e in held_out}
        assert recipe.train.task_options["version_2_with_negative"] == (name == "squad_v2")
