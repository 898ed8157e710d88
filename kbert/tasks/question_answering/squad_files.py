"""Read SQuAD questions as QAExamples: v1.1 / v2.0 JSON, JSON lines (Hugging Face datasets' layout), ``tfds:squad``.

Every problem is a :class:`~kbert.errors.DataError` naming the file (with the line for JSON lines,
line and column for malformed JSON) and the question id.

Example:
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dev.json"
    >>> qas = [{"id": "q1", "question": "Where does Sinan live?",
    ...         "answers": [{"text": "California", "answer_start": 15}]},
    ...        {"id": "q2", "question": "Who is Tom?", "answers": [], "is_impossible": True}]
    >>> _ = path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Sinan", "paragraphs": [
    ...     {"context": "Sinan lives in California.", "qas": qas}]}]}))
    >>> [(e.id, e.answers, e.answer_starts, e.is_impossible, e.title) for e in read_qa_examples(path)]
    [('q1', ('California',), (15,), False, 'Sinan'), ('q2', (), (), True, 'Sinan')]

Formats (``format=`` overrides the extension):

* ``squad`` (``.json``): ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
  "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``. A v2.0 impossible question has
  ``"is_impossible": true`` and no answers (its ``plausible_answers`` are not gold answers and are
  not read); without ``is_impossible`` a question with no answers is impossible.
* ``jsonl`` (``.jsonl``): one question per line, ``{"id"?, "title"?, "question", "context",
  "answers": {"text": [...], "answer_start": [...]}}`` (what ``datasets``' ``squad`` /
  ``squad_v2`` write); empty ``answers.text`` means impossible; without ``id`` a question is
  ``"line-N"``.
* ``tfds:squad/v1.1[SPLIT]``, ``tfds:squad/v2.0[SPLIT]`` (splits ``train``, ``validation``; default
  ``train``) through tensorflow-datasets, never downloading unless ``download=True``.

A file name may end in a row range, ``dev.json[:500]`` (see :func:`kbert.data.sources.split_row_range`).
Checked for every question: a non-empty context and question, a unique id, answer texts and
starts that pair up, each ``context[start:start + len(text)] == text``, and no answers when
``is_impossible`` is true.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Iterable, Iterator, Sequence

from kbert.data.readers import _decode, _read_bytes, format_of, json_lines
from kbert.data.sources import split_row_range
from kbert.data.tfds_sources import DEFAULT_SPLIT, PREFIX, is_tfds_name, parse_tfds_name
from kbert.errors import DataError
from kbert.tasks.question_answering.examples import QAExample

QA_FORMATS = ("squad", "jsonl")
QA_EXTENSIONS = {".json": "squad", ".jsonl": "jsonl"}
TFDS_DATASETS = ("squad/v1.1", "squad/v2.0")
_TFDS_BATCH = 256


# --- entry points ----------------------------------------------------------------------------------
def read_qa_examples(source, *, format: str | None = None, limit: int | None = None, download: bool = False,
                     data_dir: str | None = None, encoding: str = "utf-8") -> list[QAExample]:
    """Validated questions of a SQuAD file (``.json``), a JSON lines file (``.jsonl``), ``tfds:squad/...``
    or a list of :class:`QAExample` (checked the same way), in source order; ``limit`` keeps the first N.

    ``download`` lets TFDS download and prepare a ``tfds:`` dataset that is not in ``data_dir``
    (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); without it nothing is downloaded.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise DataError(f"{source}: limit must be a non-negative integer, got {limit!r}")
    if isinstance(source, (list, tuple)):
        if not all(isinstance(e, QAExample) for e in source):
            raise DataError("a list of questions must hold QAExample objects only")
        examples = _checked((_check_example(e, f"list[{i}]") for i, e in enumerate(source)), limit, "list")
    elif is_tfds_name(source):
        examples = _checked(_tfds_examples(source, download, data_dir), limit, source)
    elif isinstance(source, (str, os.PathLike)):
        path, rows = split_row_range(os.fspath(source))
        name = format_of(path, format, QA_FORMATS, QA_EXTENSIONS, "question-answering data")
        text = _decode(_read_bytes(path), path, encoding)
        questions = _squad_examples(text, path) if name == "squad" else _jsonl_examples(text, path)
        if rows != slice(None):
            questions = iter(list(questions)[rows])
        examples = _checked(questions, limit, os.fspath(source))
    else:
        raise DataError(f"question-answering data must be a SQuAD .json / .jsonl file, a '{PREFIX}squad/...' name "
                        f"or a list of QAExample, got {type(source).__name__}")
    if not examples and limit != 0:
        raise DataError(f"{source}: no questions")
    return examples


def split_by_title(examples: Sequence[QAExample], eval_fraction: float | None = None, *,
                   titles: Iterable[str] | None = None) -> tuple[list[QAExample], list[QAExample]]:
    """``(train, eval)`` with whole articles held out, so no context is in both.

    Articles are the examples' titles, in order of first appearance. With ``eval_fraction`` the
    held-out ones are the last articles, as few as give at least that fraction of the questions
    (at least one article on each side); with ``titles`` they are the articles named.

    >>> qs = [QAExample(f"q{i}", "?", "c", ("c",), (0,), title=t) for i, t in enumerate("AABBBC")]
    >>> [[e.id for e in part] for part in split_by_title(qs, 0.1)]
    [['q0', 'q1', 'q2', 'q3', 'q4'], ['q5']]
    >>> [[e.id for e in part] for part in split_by_title(qs, 0.3)]  # C alone is 1/6 < 0.3: B goes too
    [['q0', 'q1'], ['q2', 'q3', 'q4', 'q5']]
    >>> [[e.title for e in part] for part in split_by_title(qs, titles=["A"])]
    [['B', 'B', 'B', 'C'], ['A', 'A']]
    """
    if (eval_fraction is None) == (titles is None):
        raise DataError("split_by_title: give either eval_fraction or titles")
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.title] = counts.get(example.title, 0) + 1
    if len(counts) < 2:
        raise DataError(f"split_by_title: the questions come from {len(counts)} article(s) (titles); "
                        f"holding out whole articles needs at least 2")
    if titles is not None:
        held = set([titles] if isinstance(titles, str) else titles)
        unknown = sorted(held - set(counts))
        if unknown:
            raise DataError(f"split_by_title: no article titled {unknown[0]!r} (there are {len(counts)} articles)")
        if not held or held == set(counts):
            raise DataError(f"split_by_title: holding out {len(held)} of the {len(counts)} articles leaves "
                            f"{'nothing to evaluate' if not held else 'nothing to train on'}")
    else:
        if isinstance(eval_fraction, bool) or not isinstance(eval_fraction, numbers.Real) \
                or not 0 < eval_fraction < 1:
            raise DataError(f"split_by_title: eval_fraction must be a number between 0 and 1, got {eval_fraction!r}")
        held, count = set(), 0
        for title in reversed(list(counts)[1:]):
            if count >= eval_fraction * len(examples):
                break
            held.add(title)
            count += counts[title]
    return [e for e in examples if e.title not in held], [e for e in examples if e.title in held]


# --- checks ----------------------------------------------------------------------------------------
def _checked(examples: Iterable[QAExample], limit: int | None, source: str) -> list[QAExample]:
    """The first ``limit`` examples, each id once."""
    kept: list[QAExample] = []
    seen: dict[str, None] = {}
    if limit == 0:
        return kept
    for example in examples:
        if example.id in seen:
            raise DataError(f"{source}: question {example.id!r} appears twice (question ids must be unique)")
        seen[example.id] = None
        kept.append(example)
        if limit is not None and len(kept) >= limit:
            break
    return kept


def _check_example(example: QAExample, where: str) -> QAExample:
    return _example(example.id, example.question, example.context, list(example.answers),
                    list(example.answer_starts), example.is_impossible, example.title, where)


def _example(qid, question, context, texts, starts, is_impossible, title, where: str) -> QAExample:
    """One validated question; ``where`` names the file (and line) for the messages."""
    if isinstance(qid, bool) or not isinstance(qid, (str, int)) or qid == "":
        raise DataError(f"{where}: question id must be a non-empty string, got {qid!r:.60}")
    qid = str(qid)
    at = f"{where}: question {qid!r}"
    for name, value in (("context", context), ("question", question)):
        if value is None:
            raise DataError(f"{at}: no {name}")
        if not isinstance(value, str):
            raise DataError(f"{at}: {name} must be a string, got {type(value).__name__} {value!r:.60}")
        if not value.strip():
            raise DataError(f"{at}: the {name} is empty")
    if not isinstance(title, str):
        raise DataError(f"{at}: title must be a string, got {type(title).__name__} {title!r:.60}")
    if len(texts) != len(starts):
        raise DataError(f"{at}: {len(texts)} answer texts but {len(starts)} answer starts")
    if not isinstance(is_impossible, bool):
        raise DataError(f"{at}: is_impossible must be true or false, got {is_impossible!r:.60}")
    if is_impossible and texts:
        raise DataError(f"{at}: is_impossible is true but the question has {len(texts)} answers "
                        f"(a v2.0 impossible question has none; its guesses go in plausible_answers)")
    for k, (text, start) in enumerate(zip(texts, starts)):
        if not isinstance(text, str) or not text:
            raise DataError(f"{at}: answer {k} text must be a non-empty string, got {text!r:.60}")
        if isinstance(start, bool) or not isinstance(start, numbers.Integral) or start < 0:
            raise DataError(f"{at}: answer {k} answer_start must be a non-negative integer, got {start!r:.60}")
        found = context[start:start + len(text)]
        if found != text:
            raise DataError(f"{at}: answer {k} {text!r:.60} is not at answer_start {start} of the context "
                            f"(the context has {found!r:.60} there)")
    return QAExample(qid, question, context, tuple(texts), tuple(int(s) for s in starts),
                     is_impossible or not texts, title)


# --- SQuAD JSON ------------------------------------------------------------------------------------
def _squad_examples(text: str, source: str) -> Iterator[QAExample]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{source}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        hint = "; JSON lines (one question per line) should end in .jsonl" if isinstance(document, dict) \
            and "question" in document else ""
        raise DataError(f"{source}: expected SQuAD JSON, an object with a \"data\" list of articles{hint}")
    for a, article in enumerate(data):
        where = f"{source}: article {a}"
        paragraphs = _field(article, "paragraphs", list, where)
        title = article.get("title", "")
        for p, paragraph in enumerate(paragraphs):
            where_p = f"{where} paragraph {p}"
            qas = _field(paragraph, "qas", list, where_p)
            context = paragraph.get("context")
            for q, qa in enumerate(qas):
                where_q = f"{where_p} question {q}"
                if not isinstance(qa, dict):
                    raise DataError(f"{where_q}: expected a JSON object, got {type(qa).__name__}")
                qid = _field(qa, "id", object, where_q)
                answers = _field(qa, "answers", list, f"{source}: question {qid!r}")
                for k, answer in enumerate(answers):
                    if not isinstance(answer, dict) or "text" not in answer or "answer_start" not in answer:
                        raise DataError(f"{source}: question {qid!r}: answer {k} must be an object with \"text\" "
                                        f"and \"answer_start\", got {answer!r:.60}")
                yield _example(qid, qa.get("question"), context, [x["text"] for x in answers],
                               [x["answer_start"] for x in answers], qa.get("is_impossible", False), title, source)


def _field(item, key: str, kind: type, where: str):
    if not isinstance(item, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(item).__name__}")
    if key not in item:
        raise DataError(f"{where}: no {key!r} field (fields: {', '.join(map(repr, item)) or 'none'})")
    value = item[key]
    if not isinstance(value, kind):
        raise DataError(f"{where}: {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


# --- JSON lines ------------------------------------------------------------------------------------
def _jsonl_examples(text: str, source: str) -> Iterator[QAExample]:
    for where, line, item in json_lines(text, source):
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a JSON object like {{\"question\", \"context\", \"answers\"}}, "
                            f"got {type(item).__name__}: {line.strip():.60}")
        qid = item.get("id", f"line-{where.rsplit(':', 1)[1]}")
        at = f"{where}: question {qid!r}"
        for key in ("question", "context", "answers"):
            if key not in item:
                raise DataError(f"{at}: no {key!r} field (fields: {', '.join(map(repr, item))})")
        answers = item["answers"]
        if not isinstance(answers, dict) or not all(isinstance(answers.get(k), list) for k in ("text", "answer_start")):
            raise DataError(f"{at}: answers must be {{\"text\": [...], \"answer_start\": [...]}}, got {answers!r:.60}")
        texts = answers["text"]
        yield _example(qid, item["question"], item["context"], texts, answers["answer_start"],
                       item.get("is_impossible", not texts), item.get("title", ""), where)


# --- TFDS ------------------------------------------------------------------------------------------
def _tfds_examples(source: str, download: bool, data_dir: str | None) -> Iterator[QAExample]:
    from kbert.data.tfds_sources import _builder, _import_tfds, _text, prepared_split

    name, split = parse_tfds_name(source)
    split = split or DEFAULT_SPLIT
    if name not in TFDS_DATASETS:
        raise DataError(f"{source}: question answering reads {', '.join(PREFIX + n for n in TFDS_DATASETS)}")
    where = f"{PREFIX}{name}[{split}]"
    tfds = _import_tfds()
    builder = _builder(tfds, name, data_dir, where)
    dataset = prepared_split(builder, split, where, download=download, data_dir=data_dir)
    index = 0
    for row in tfds.as_numpy(dataset.prefetch(_TFDS_BATCH)):
        at = f"{where}#{index}"
        answers = row["answers"]
        yield _example(_text(row["id"], at), _text(row["question"], at), _text(row["context"], at),
                       [_text(t, at) for t in answers["text"]], [int(s) for s in answers["answer_start"]],
                       bool(row.get("is_impossible", False)), _text(row["title"], at), at)
        index += 1
