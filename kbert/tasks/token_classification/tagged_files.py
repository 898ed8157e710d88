"""Read word-level tagged sentences (NER, part of speech) from CoNLL, CoNLL-U and JSON-lines files, or from lists.

Every problem is a :class:`~kbert.errors.DataError` naming the file and the 1-based line a text
editor shows; a sentence's ``where`` is the line of its first word.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.conll"
    >>> _ = path.write_text("-DOCSTART- -X- -X- O\\n\\nEU NNP B-NP B-ORG\\nrejects VBZ B-VP O\\n\\n"
    ...                     "Peter\\tB-PER\\n")
    >>> [(s.words, s.tags, s.where[-13:]) for s in read_tagged(path)]
    [(('EU', 'rejects'), ('B-ORG', 'O'), 'train.conll:3'), (('Peter',), ('B-PER',), 'train.conll:6')]
    >>> read_tagged(path, tag_column=1)[0].tags
    ('NNP', 'VBZ')
    >>> tagged_from_lists([["New", "York"]], [["B-LOC", "I-LOC"]])
    [TaggedSentence(words=('New', 'York'), tags=('B-LOC', 'I-LOC'), where='list[0]')]

Formats:

* ``conll``: one word per line, columns separated by a tab (a line holding a tab is split on tabs
  only) or else by runs of spaces; the word is the first column, the tag the last one unless
  ``tag_column`` (a 0-based index, negative counts from the end) says otherwise. A blank or
  whitespace-only line ends a sentence; ``-DOCSTART-`` lines are skipped.
* ``conllu`` (Universal Dependencies): 10 tab-separated fields; the word is FORM, the tag UPOS
  (``tag_column="upos"``, the default), XPOS (``"xpos"``) or any field by 0-based index. Comment
  lines, multiword-token lines (``3-4``) and empty nodes (``8.1``) are skipped.
* ``jsonl``: one object per line, ``{"tokens": [...], "tags": [...]}``; words are the first of
  ``tokens``, ``words`` present and tags the first of ``tags``, ``ner_tags``, ``pos_tags``, ``labels``,
  unless ``words_key`` / ``tags_key`` name the fields. Tags must be names (strings), not ids.

Words are non-empty and hold no whitespace; tags are non-empty strings without whitespace, kept as
written (the tagging scheme is not checked here). A UTF-8 byte-order mark and ``\\r\\n`` are accepted.
To build the label set: ``LabelSet(sort_names(t for s in sentences for t in s.tags))`` (see
:mod:`kbert.data.labels`).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
from collections.abc import Iterator, Mapping, Sequence

from kbert.data.readers import _decode, _read_bytes, format_of, json_lines
from kbert.errors import DataError
from kbert.hints import hint, parameter

TAGGED_FORMATS = ("conll", "conllu", "jsonl")
# Extension → format name, used when ``format`` is not given (``.txt`` needs ``format``).
TAGGED_EXTENSIONS: dict[str, str] = {".conll": "conll", ".conllu": "conllu", ".jsonl": "jsonl", ".json": "jsonl",
                                     ".bio": "conll", ".iob": "conll"}
WORDS_KEYS = ("tokens", "words")
TAGS_KEYS = ("tags", "ner_tags", "pos_tags", "labels")
CONLLU_TAG_COLUMNS = {"upos": 3, "xpos": 4}
_CONLLU_NAMES = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
_SPACES = re.compile(r" +")


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    """One sentence as words and their tags (``None`` for unlabelled data).

    ``where`` names the source for error messages: ``"path/train.conll:17"`` (the 1-based line of
    the sentence's first word) or ``"list[3]"``.
    """

    words: tuple[str, ...]
    tags: tuple[str, ...] | None = None
    where: str = ""


# --- entry points ------------------------------------------------------------------------------
def read_tagged(path: str | os.PathLike, *, format: str | None = None, tag_column: str | int | None = None,
                words_key: str | None = None, tags_key: str | None = None, labelled: bool = True,
                encoding: str = "utf-8") -> list[TaggedSentence]:
    """Tagged sentences from a ``conll``/``conllu``/``jsonl`` file; ``format`` defaults to the one the extension names.

    ``tag_column``: for ``conll`` a 0-based column index (default: the last column); for ``conllu``
    ``"upos"`` (default), ``"xpos"`` or a 0-based field index. ``words_key``/``tags_key`` name the
    JSON fields. ``labelled=False`` reads words only (``tags`` is ``None``).
    """
    source = os.fspath(path)
    name = format_of(source, format, TAGGED_FORMATS, TAGGED_EXTENSIONS, "tagged data")
    _check_options(name, tag_column, words_key, tags_key)
    text = _decode(_read_bytes(source), source, encoding)
    if name == "conll":
        sentences = _read_conll(text, source, tag_column, labelled)
    elif name == "conllu":
        sentences = _read_conllu(text, source, tag_column, labelled)
    else:
        sentences = _read_jsonl(text, source, words_key, tags_key, labelled)
    if not sentences:
        what = "the file is empty" if not text.strip() else "no word lines"
        raise DataError(f"{source}: no sentences ({what})")
    return sentences


def tagged_from_lists(words: Sequence[Sequence[str]],
                      tags: Sequence[Sequence[str]] | None = None) -> list[TaggedSentence]:
    """In-memory sentences (``where="list[i]"``), checked as a file's are; ``tags=None`` gives unlabelled ones.

    >>> tagged_from_lists([["Paris"], ["is", "nice"]])[1]
    TaggedSentence(words=('is', 'nice'), tags=None, where='list[1]')
    >>> tagged_from_lists([["New York"]], [["B-LOC"]])
    Traceback (most recent call last):
    ...
    kbert.errors.DataError: list[0]: word 0 'New York' contains whitespace; give each word separately
    """
    words = _sequence(words, "", "words")
    if tags is not None:
        tags = _sequence(tags, "", "tags")
        if len(tags) != len(words):
            raise DataError(f"tags has {len(tags)} sentences but words has {len(words)}")
    sentences = []
    for i, sentence in enumerate(words):
        where = f"list[{i}]"
        sentence_words = _words(sentence, where, "words")
        sentence_tags = None if tags is None else _tags(tags[i], where, "tags", len(sentence_words))
        sentences.append(TaggedSentence(sentence_words, sentence_tags, where))
    if not sentences:
        raise DataError("words is empty: no sentences")
    return sentences


# --- format dispatch and options ---------------------------------------------------------------
def _check_options(name: str, tag_column, words_key, tags_key) -> None:
    if name != "jsonl":
        for key, value in (("words_key", words_key), ("tags_key", tags_key)):
            if value is not None:
                raise DataError(f"{key} names a JSON field, but a {name} file has columns"
                                f"{hint('; use {} to pick the tag column', 'tag_column')}")
    else:
        if tag_column is not None:
            raise DataError(f"{parameter('tag_column')} picks a column, but a jsonl file has named "
                            f"fields{hint('; use {} to pick the tags field', 'tags_key', tag_column)}")
        for key, value in (("words_key", words_key), ("tags_key", tags_key)):
            if value is not None and not isinstance(value, str):
                raise DataError(f"{key} must be a field name (a string), got {value!r}")
    if isinstance(tag_column, bool) or not (tag_column is None or isinstance(tag_column, (str, int))):
        raise DataError(f"{parameter('tag_column')} must be a 0-based column index"
                        f"{' or a name' if name == 'conllu' else ''}, got {tag_column!r}")
    if name == "conll" and isinstance(tag_column, str):
        raise DataError(f"a conll file's columns have no names; give {parameter('tag_column')} as a 0-based index "
                        f"(-1 is the last column), got {tag_column!r}")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its end of line), numbered as an editor shows them."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.rstrip("\r")


class _Sentences:
    """Collects word lines into sentences; a sentence is where its first word is."""

    def __init__(self, source: str, labelled: bool):
        self.source, self.labelled = source, labelled
        self.done: list[TaggedSentence] = []
        self.words: list[str] = []
        self.tags: list[str] = []
        self.start = 0

    def add(self, number: int, word: str, tag: str | None) -> None:
        if not self.words:
            self.start = number
        self.words.append(word)
        if self.labelled:
            self.tags.append(tag)

    def end(self) -> None:
        if self.words:
            tags = tuple(self.tags) if self.labelled else None
            self.done.append(TaggedSentence(tuple(self.words), tags, f"{self.source}:{self.start}"))
        self.words, self.tags = [], []


# --- CoNLL -------------------------------------------------------------------------------------
def _read_conll(text: str, source: str, tag_column: int | None, labelled: bool) -> list[TaggedSentence]:
    sentences = _Sentences(source, labelled)
    for number, line in _lines(text):
        if not line.strip() or line.lstrip().startswith("-DOCSTART-"):
            sentences.end()
            continue
        where = f"{source}:{number}"
        body = line.rstrip()
        if "\t" in body:
            fields = [field.strip(" ") for field in body.split("\t")]
        else:
            fields = _SPACES.split(body.strip(" "))
        word = _word(fields[0], where)
        tag = _conll_tag(fields, tag_column, body, where) if labelled else None
        sentences.add(number, word, tag)
    sentences.end()
    return sentences.done


def _conll_tag(fields: list[str], tag_column: int | None, line: str, where: str) -> str:
    if len(fields) < 2:
        raise DataError(f"{where}: expected a word and a tag separated by a tab or spaces, got {line.strip()!r:.80}"
                        f"{hint('; pass {} to read words only', 'labelled', False)}")
    index = -1 if tag_column is None else tag_column
    if not -len(fields) <= index < len(fields):
        raise DataError(f"{where}: tag_column is {index} but the line has {len(fields)} columns: {line.strip()!r:.80}")
    if index % len(fields) == 0:
        raise DataError(f"{where}: tag_column {index} is the word column of this line ({len(fields)} columns)")
    return _tag(fields[index], where)


# --- CoNLL-U -----------------------------------------------------------------------------------
def _read_conllu(text: str, source: str, tag_column: str | int | None, labelled: bool) -> list[TaggedSentence]:
    index = _conllu_column(tag_column)
    sentences = _Sentences(source, labelled)
    for number, line in _lines(text):
        if not line.strip():
            sentences.end()
            continue
        if line.startswith("#"):
            continue
        where = f"{source}:{number}"
        fields = line.split("\t")
        if len(fields) != 10:
            raise DataError(f"{where}: expected 10 tab-separated fields (CoNLL-U), found {len(fields)}: {line!r:.80}")
        token_id = fields[0]
        if "-" in token_id or "." in token_id:
            continue  # a multiword token (3-4) or an empty node (8.1): not a word of the sentence
        if not token_id.isdigit():
            raise DataError(f"{where}: ID {token_id!r} is not a word number (CoNLL-U)")
        word = _word(fields[1], where)
        tag = None
        if labelled:
            tag = fields[index]
            if tag == "_":
                column = _CONLLU_NAMES[index]
                raise DataError(f"{where}: {column} of {word!r} is '_' (no {column} tag in this file); "
                                f"choose another tag_column")
            tag = _tag(tag, where)
        sentences.add(number, word, tag)
    sentences.end()
    return sentences.done


def _conllu_column(tag_column: str | int | None) -> int:
    if tag_column is None:
        return CONLLU_TAG_COLUMNS["upos"]
    if isinstance(tag_column, str):
        if tag_column.lower() not in CONLLU_TAG_COLUMNS:
            raise DataError(f"unknown CoNLL-U tag column {tag_column!r}; expected 'upos', 'xpos' or a 0-based index")
        return CONLLU_TAG_COLUMNS[tag_column.lower()]
    if not -10 <= tag_column < 10:
        raise DataError(f"CoNLL-U has 10 fields; tag_column must be an index from 0 to 9, got {tag_column}")
    index = tag_column % 10
    if index <= 1:
        raise DataError(f"tag_column {tag_column} is the {_CONLLU_NAMES[index]} field, not a tag; "
                        f"use 'upos', 'xpos' or the index of another field")
    return index


# --- JSON lines --------------------------------------------------------------------------------
def _read_jsonl(text: str, source: str, words_key: str | None, tags_key: str | None,
                labelled: bool) -> list[TaggedSentence]:
    sentences = []
    for where, line, item in json_lines(text, source):
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a JSON object like {{\"tokens\": [...], \"tags\": [...]}}, "
                            f"got {type(item).__name__}: {line.strip():.60}")
        key = _json_key(item, words_key, WORDS_KEYS, "words", where)
        words = _words(item[key], where, repr(key))
        tags = None
        if labelled:
            key = _json_key(item, tags_key, TAGS_KEYS, "tags", where)
            tags = _tags(item[key], where, repr(key), len(words))
        sentences.append(TaggedSentence(words, tags, where))
    return sentences


def _json_key(item: dict, given: str | None, defaults: tuple[str, ...], role: str, where: str) -> str:
    fields = ", ".join(map(repr, item)) or "none"
    if given is not None:
        if given not in item:
            raise DataError(f"{where}: no {given!r} field (fields: {fields})")
        return given
    for key in defaults:
        if key in item:
            return key
    words_only = hint("; pass {} to read words only", "labelled", False) if role == "tags" else ""
    raise DataError(f"{where}: no {role} field: expected one of {', '.join(map(repr, defaults))}"
                    f"{hint(' or give {}', role + '_key')} (fields: {fields}){words_only}")


# --- values ------------------------------------------------------------------------------------
def _sequence(value, where: str, role: str) -> list:
    prefix = f"{where}: " if where else ""
    if isinstance(value, str):
        raise DataError(f"{prefix}{role} must be a list, got a string {value!r:.40}; "
                        f"give each sentence as a list of words")
    if isinstance(value, (bytes, Mapping)) or not hasattr(value, "__len__") or not hasattr(value, "__getitem__"):
        raise DataError(f"{prefix}{role} must be a list, got {type(value).__name__} {value!r:.40}")
    return list(value)


def _string(value, where: str, role: str, position: int | None = None) -> str:
    """A word or tag: a non-empty string without whitespace (a tag id is refused with a hint)."""
    which = role if position is None else f"{role} {position}"
    if role == "tag" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        raise DataError(f"{where}: {which} is the integer {value!r}; kbert needs tag names, not ids: map the ids "
                        f"to their names (e.g. a dataset's ClassLabel names) first")
    if not isinstance(value, str):
        raise DataError(f"{where}: {which} must be a string, got {type(value).__name__} {value!r:.40}")
    if not value:
        raise DataError(f"{where}: {which} is empty")
    if any(c.isspace() for c in value):
        hint = "; give each word separately" if role == "word" else ""
        raise DataError(f"{where}: {which} {value!r:.40} contains whitespace{hint}")
    return str(value)


def _word(word, where: str, position: int | None = None) -> str:
    return _string(word, where, "word", position)


def _tag(tag, where: str, position: int | None = None) -> str:
    return _string(tag, where, "tag", position)


def _words(value, where: str, role: str) -> tuple[str, ...]:
    words = tuple(_word(word, where, i) for i, word in enumerate(_sequence(value, where, role)))
    if not words:
        raise DataError(f"{where}: {role} is empty: a sentence needs at least one word")
    return words


def _tags(value, where: str, role: str, count: int) -> tuple[str, ...]:
    values = _sequence(value, where, role)
    ids = [v for v in values if isinstance(v, numbers.Integral) and not isinstance(v, bool)]
    if ids:
        raise DataError(f"{where}: {role} holds integer tag ids ({', '.join(map(str, ids[:5]))}"
                        f"{', ...' if len(ids) > 5 else ''}); kbert needs tag names, not ids: map the ids to their "
                        f"names (e.g. a dataset's ClassLabel names) first")
    tags = tuple(_tag(tag, where, i) for i, tag in enumerate(values))
    if len(tags) != count:
        raise DataError(f"{where}: {count} words but {len(tags)} tags")
    return tags
