"""Token-classification postprocessing: per-token scores → Hugging Face NER dicts (pure numpy).

This is ``transformers.pipelines.token_classification`` (v4.57) for a WordPiece fast tokenizer,
rewritten as functions of what kbert's tokenizer gives per window: token ids, token strings, character
offsets (Python ``str`` indices, as HF's), a special-token mask and the model's logits. The steps and
their quirks are HF's, kept on purpose:

* scores are HF's float32 softmax (``exp(x - max) / sum``), labels ``argmax`` (first on ties);
* special tokens (``[CLS]``, ``[SEP]``, padding) are dropped; ``index`` is the position in the window;
* with a word-aware tokenizer (WordPiece: its model has a continuing-subword prefix), a token is a
  *subword* when ``len(token) != len(text[start:end])`` -- so ``##ing`` is one, and so,
  with an uncased (accent-stripping) vocabulary, is a word with an NFD accent inside it
  (``"Zu\\u0308rich"`` → ``zurich`` covers 7 characters), which then joins the previous word under
  first/average/max (HF answers ``"in zurich"``); ``[UNK]`` takes the original span as its word and is
  never a subword;
* with any other tokenizer (RoBERTa's byte-level BPE), HF's fallback heuristic: a token is a subword
  when it does not start the text and neither it nor the character before it is a space
  (``" " not in text[start - 1:start + 1]``), and words are that tokenizer's ``convert_tokens_to_string``
  (``decode_tokens``: byte-level decoding, so ``ĠSan`` becomes ``" San"``);
* words are decoded as the ``tokenizers`` WordPiece decoder does: ``##`` removed except on the first
  token, a space before the others, then its per-token clean-up (``" ."`` → ``"."``, ``" do not"`` →
  ``" don't"``, ...);
* ``ignore_labels`` is applied per window with ``in`` (default ``["O"]``) to both ``entity`` and
  ``entity_group``; with several windows (``stride``), entities are then merged by
  :func:`aggregate_overlapping_entities` (sorted by ``start``; on overlap the longer, then the
  higher-scoring, wins).

Unlike HF, which returns numpy ``float32`` scores and numpy integer indices, results hold plain Python
``float`` (the exact value of the float32 score) and ``int``.

Example:
    >>> import numpy as np
    >>> text = "Sinan lives in Istanbul"
    >>> window = TokenWindow(
    ...     token_ids=np.array([2, 7, 8, 9, 10, 11, 3]),
    ...     tokens=["[CLS]", "Sinan", "lives", "in", "Istan", "##bul", "[SEP]"],
    ...     starts=np.array([0, 0, 6, 12, 15, 20, 0]), ends=np.array([0, 5, 11, 14, 20, 23, 0]),
    ...     special=np.array([1, 0, 0, 0, 0, 0, 1], dtype=bool),
    ...     logits=np.array([[0, 0, 0], [0, 5, 0], [5, 0, 0], [5, 0, 0], [0, 0, 5], [0, 5, 0], [0, 0, 0]],
    ...                     dtype=np.float32))
    >>> labels = {0: "O", 1: "B-PER", 2: "B-LOC"}
    >>> [(e["entity"], e["word"], e["index"]) for e in token_entities(text, [window], labels, unk_token_id=1)]
    [('B-PER', 'Sinan', 1), ('B-LOC', 'Istan', 4), ('B-PER', '##bul', 5)]
    >>> for e in token_entities(text, [window], labels, aggregation_strategy="first", unk_token_id=1):
    ...     print(e["entity_group"], e["word"], e["start"], e["end"], round(e["score"], 4))
    PER Sinan 0 5 0.9867
    LOC Istanbul 15 23 0.9867
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kbert.errors import InputError
from kbert.tokenizer.wordpiece_decoder import DECODER_CLEANUP, wordpiece_decode  # noqa: F401  (DECODER_CLEANUP re-exported)

AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES = ("first", "average", "max")
DEFAULT_IGNORE_LABELS = ("O",)
_NAMES = {name.upper(): name for name in AGGREGATION_STRATEGIES}

# The tokenizers WordPiece decoder's clean-up, applied to each decoded token in this order.


@dataclasses.dataclass(frozen=True)
class TokenWindow:
    """One window (or the whole text) of one input, as the tokenizer and the model produced it.

    ``starts``/``ends`` are character offsets into the text given to :func:`token_entities`, or, for
    words given as a list (``is_split_into_words``), offsets inside each word with ``word_ids`` naming
    the word of each token (``None`` for special tokens): :func:`token_entities` then shifts them by
    ``word_starts`` as HF does. Padding positions may be included if ``special`` marks them.
    """

    token_ids: np.ndarray  # (T,) int
    tokens: Sequence[str]  # (T,) tokenizer.convert_ids_to_tokens(token_ids)
    starts: np.ndarray  # (T,) int, character offsets in the text
    ends: np.ndarray  # (T,) int
    special: np.ndarray  # (T,) bool: [CLS], [SEP], [PAD] ... are skipped
    logits: np.ndarray  # (T, num_labels) float32
    word_ids: Sequence[int | None] | None = None  # (T,) word index of each token, for word-list inputs

    def __post_init__(self):
        n = len(self.tokens)
        shapes = {"token_ids": np.shape(self.token_ids), "starts": np.shape(self.starts),
                  "ends": np.shape(self.ends), "special": np.shape(self.special), "logits": np.shape(self.logits)}
        if self.word_ids is not None:
            shapes["word_ids"] = (len(self.word_ids),)
        bad = {k: s for k, s in shapes.items() if s[:1] != (n,) or len(s) != (2 if k == "logits" else 1)}
        if bad:
            raise InputError(f"TokenWindow: {n} tokens but shapes {bad}")


# --- arguments -----------------------------------------------------------------------------------
def check_aggregation_strategy(value) -> str:
    """``aggregation_strategy`` as one of :data:`AGGREGATION_STRATEGIES` (HF: ``AggregationStrategy[value.upper()]``).

    Accepts the names in any case, or an enum-like object whose ``.value`` is one (HF's
    ``AggregationStrategy``); ``None`` means HF's default, ``"none"``.

    >>> check_aggregation_strategy("SIMPLE"), check_aggregation_strategy(None)
    ('simple', 'none')
    >>> check_aggregation_strategy("mean")
    Traceback (most recent call last):
    ...
    kbert.errors.InputError: aggregation_strategy 'mean' is not one of ('none', 'simple', 'first', 'average', 'max')
    """
    if value is None:
        return "none"
    raw = value
    if not isinstance(value, str) and isinstance(getattr(value, "value", None), str):
        value = value.value
    if isinstance(value, str):
        name = value.upper()  # HF looks the upper-cased string up among the enum's names
        if name in _NAMES:
            return _NAMES[name]
    raise InputError(f"aggregation_strategy {raw!r} is not one of {AGGREGATION_STRATEGIES}")


def check_stride(stride, aggregation_strategy, model_max_length: int) -> int | None:
    """Validate ``stride`` as HF's ``_sanitize_parameters`` does; returns it (``None``: no windows).

    ``aggregation_strategy`` is what the caller passed: an explicit ``"none"`` is refused, but HF lets
    ``stride`` through when no strategy was given at all (``None``), and then post-processes every window
    with ``"none"`` and merges overlaps.
    """
    if stride is None:
        return None
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
        raise InputError(f"stride must be an int, got {stride!r}")
    if stride >= model_max_length:
        raise InputError(f"stride={stride} must be less than the tokenizer's model_max_length ({model_max_length}), "
                         "or even lower since special tokens are added")
    if stride < 0:
        raise InputError(f"stride must be >= 0, got {stride}")
    if aggregation_strategy is not None and check_aggregation_strategy(aggregation_strategy) == "none":
        raise InputError('stride was given to process the whole text but aggregation_strategy="none"; '
                         "choose another strategy")
    return int(stride)


# --- words given as a list (is_split_into_words=True) -------------------------------------------
def words_to_text(words: Sequence[str], delimiter: str = " ") -> tuple[str, list[int]]:
    """The text HF builds from a word list (``delimiter.join(words)``) and where each word starts in it.

    This text is what ``start``/``end`` index and what ``[UNK]`` words are cut from.

    >>> words_to_text(["New", "York", "!"])
    ('New York !', [0, 4, 9])
    """
    word_starts, position = [], 0
    for word in words:
        word_starts.append(position)
        position += len(word) + len(delimiter)
    return delimiter.join(words), word_starts


def shift_word_offsets(starts, ends, word_ids: Sequence[int | None], word_starts: Sequence[int]):
    """Offsets inside each word (what a tokenizer gives for pre-split words) → offsets in the joined text.

    Tokens whose word id is ``None`` (special tokens, padding) keep their offsets, as in HF.
    """
    starts, ends = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)
    for i, word in enumerate(word_ids):
        if word is not None:
            starts[i] += word_starts[word]
            ends[i] += word_starts[word]
    return starts, ends


# --- the steps of HF's postprocess ---------------------------------------------------------------
def softmax(logits: np.ndarray) -> np.ndarray:
    """HF's token scores, float32 in → float32 out, computed exactly as the pipeline does."""
    maxes = np.max(logits, axis=-1, keepdims=True)
    shifted_exp = np.exp(logits - maxes)
    return shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)


def convert_tokens_to_string(tokens: Sequence[str], prefix: str = "##", cleanup: bool = True,
                             decode_tokens=None) -> str:
    """What a BERT fast tokenizer's ``convert_tokens_to_string`` returns (the ``tokenizers`` WordPiece decoder),
    or ``decode_tokens(tokens)`` when the tokenizer brings its own decoder.

    >>> convert_tokens_to_string(["##s", "San", "Fran", "##cisco", "'", "s", "."])
    "##s San Francisco ' s."
    """
    if decode_tokens is not None:
        return decode_tokens(list(tokens))
    return wordpiece_decode(tokens, prefix, cleanup)


def gather_pre_entities(text: str, window: TokenWindow, scores: np.ndarray, unk_token_id: int,
                        word_starts: Sequence[int] | None = None, word_aware: bool = True) -> list[dict]:
    """One dict per non-special token: word, scores, start, end, index, is_subword (see the module docstring
    for ``word_aware``)."""
    starts, ends = window.starts, window.ends
    if word_starts is not None and window.word_ids is not None:
        starts, ends = shift_word_offsets(starts, ends, window.word_ids, word_starts)
    pre_entities = []
    for idx, token_scores in enumerate(scores):
        if window.special[idx]:
            continue
        word = window.tokens[idx]
        start, end = int(starts[idx]), int(ends[idx])
        word_ref = text[start:end]
        if word_aware:  # HF's rule for word-aware (continuing-prefix) tokenizers
            is_subword = len(word) != len(word_ref)
        else:  # HF's fallback heuristic (it warns "Tokenizer does not support real words")
            is_subword = start > 0 and " " not in text[start - 1:start + 1]
        if int(window.token_ids[idx]) == unk_token_id:
            word = word_ref
            is_subword = False
        pre_entities.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": idx,
                             "is_subword": is_subword})
    return pre_entities


def aggregate(pre_entities: list[dict], aggregation_strategy: str, id2label, **decode) -> list[dict]:
    """Token entities ("none"), or groups of them (the other strategies)."""
    if aggregation_strategy in ("none", "simple"):
        entities = []
        for pre_entity in pre_entities:
            entity_idx = int(pre_entity["scores"].argmax())
            entities.append({"entity": id2label[entity_idx], "score": pre_entity["scores"][entity_idx],
                             "index": pre_entity["index"], "word": pre_entity["word"],
                             "start": pre_entity["start"], "end": pre_entity["end"]})
    else:
        entities = aggregate_words(pre_entities, aggregation_strategy, id2label, **decode)
    if aggregation_strategy == "none":
        return entities
    return group_entities(entities, **decode)


def aggregate_word(entities: list[dict], aggregation_strategy: str, id2label, **decode) -> dict:
    """One word (a token and its subwords) → one entity, by the first token, the best token or the mean."""
    word = convert_tokens_to_string([entity["word"] for entity in entities], **decode)
    if aggregation_strategy == "first":
        scores = entities[0]["scores"]
        idx = int(scores.argmax())
        score = scores[idx]
    elif aggregation_strategy == "max":
        scores = max(entities, key=lambda entity: entity["scores"].max())["scores"]
        idx = int(scores.argmax())
        score = scores[idx]
    elif aggregation_strategy == "average":
        average_scores = np.nanmean(np.stack([entity["scores"] for entity in entities]), axis=0)
        idx = int(average_scores.argmax())
        score = average_scores[idx]
    else:
        raise InputError(f"aggregation_strategy {aggregation_strategy!r} cannot aggregate words")
    return {"entity": id2label[idx], "score": score, "word": word, "start": entities[0]["start"],
            "end": entities[-1]["end"]}


def aggregate_words(entities: list[dict], aggregation_strategy: str, id2label, **decode) -> list[dict]:
    """Make the tokens of a word agree: a non-subword token starts a word, subwords join it."""
    if aggregation_strategy not in WORD_STRATEGIES:
        raise InputError(f"aggregation_strategy {aggregation_strategy!r} cannot aggregate words")
    word_entities, word_group = [], None
    for entity in entities:
        if word_group is None:
            word_group = [entity]
        elif entity["is_subword"]:
            word_group.append(entity)
        else:
            word_entities.append(aggregate_word(word_group, aggregation_strategy, id2label, **decode))
            word_group = [entity]
    if word_group is not None:
        word_entities.append(aggregate_word(word_group, aggregation_strategy, id2label, **decode))
    return word_entities


def get_tag(entity_name: str) -> tuple[str, str]:
    """``("B"|"I", tag)``; a label without a ``B-``/``I-`` prefix counts as ``I``.

    >>> get_tag("B-PER"), get_tag("I-LOC"), get_tag("O")
    (('B', 'PER'), ('I', 'LOC'), ('I', 'O'))
    """
    if entity_name.startswith("B-"):
        return "B", entity_name[2:]
    if entity_name.startswith("I-"):
        return "I", entity_name[2:]
    return "I", entity_name


def group_sub_entities(entities: list[dict], **decode) -> dict:
    """Adjacent entities of one tag → one group (mean score, label without its ``B-``/``I-`` part)."""
    entity = entities[0]["entity"].split("-", 1)[-1]
    scores = np.nanmean([entity["score"] for entity in entities])
    return {"entity_group": entity, "score": np.mean(scores),
            "word": convert_tokens_to_string([entity["word"] for entity in entities], **decode),
            "start": entities[0]["start"], "end": entities[-1]["end"]}


def group_entities(entities: list[dict], **decode) -> list[dict]:
    """Group adjacent entities with the same tag; a ``B-`` starts a new group."""
    entity_groups, entity_group_disagg = [], []
    for entity in entities:
        if not entity_group_disagg:
            entity_group_disagg.append(entity)
            continue
        bi, tag = get_tag(entity["entity"])
        _, last_tag = get_tag(entity_group_disagg[-1]["entity"])
        if tag == last_tag and bi != "B":
            entity_group_disagg.append(entity)
        else:
            entity_groups.append(group_sub_entities(entity_group_disagg, **decode))
            entity_group_disagg = [entity]
    if entity_group_disagg:
        entity_groups.append(group_sub_entities(entity_group_disagg, **decode))
    return entity_groups


def aggregate_overlapping_entities(entities: list[dict]) -> list[dict]:
    """Entities of overlapping windows → one list by ``start``; on overlap the longer (then higher-scoring) wins."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda x: x["start"])
    aggregated, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            current_length = entity["end"] - entity["start"]
            previous_length = previous["end"] - previous["start"]
            if current_length > previous_length or (current_length == previous_length
                                                    and entity["score"] > previous["score"]):
                previous = entity
        else:
            aggregated.append(previous)
            previous = entity
    aggregated.append(previous)
    return aggregated


def _plain(entity: dict) -> dict:
    """numpy scalars → Python float/int, keys in the same order."""
    return {key: (float(value) if key == "score" else int(value) if key in ("index", "start", "end") else value)
            for key, value in entity.items()}


def token_entities(text: str, windows: Sequence[TokenWindow], id2label, *, aggregation_strategy="none",
                   ignore_labels=DEFAULT_IGNORE_LABELS, unk_token_id: int, word_starts: Sequence[int] | None = None,
                   subword_prefix: str = "##", decoder_cleanup: bool = True, decode_tokens=None) -> list[dict]:
    """What HF's token-classification pipeline returns for one input (``text``: the string, or the joined words).

    ``windows``: one per model call (several with ``stride``), in order. ``id2label``: ``{int: str}``.
    ``word_starts`` (word-list inputs, from :func:`words_to_text`): offsets of windows that carry
    ``word_ids`` are inside each word and get shifted by their word's start; without ``word_ids`` they
    are taken as already absolute.
    ``ignore_labels=None`` means HF's default ``["O"]``; it is tested with ``in``, so pass a list.
    ``subword_prefix``/``decoder_cleanup``: the tokenizer.json WordPiece decoder's ``prefix``/``cleanup``.
    ``decode_tokens``: the ``convert_tokens_to_string`` of a tokenizer that is not word-aware (byte-level
    BPE); it replaces the WordPiece decoder and switches to HF's subword heuristic.
    With no windows the result is ``[]``.
    """
    strategy = check_aggregation_strategy(aggregation_strategy)
    if ignore_labels is None:
        ignore_labels = list(DEFAULT_IGNORE_LABELS)
    decode = {"prefix": subword_prefix, "cleanup": decoder_cleanup, "decode_tokens": decode_tokens}
    all_entities = []
    for window in windows:
        logits = np.asarray(window.logits)
        if logits.dtype == np.float16 or logits.dtype.name == "bfloat16":  # HF upcasts half precision first
            logits = logits.astype(np.float32)
        scores = softmax(logits)
        pre_entities = gather_pre_entities(text, window, scores, unk_token_id, word_starts,
                                           word_aware=decode_tokens is None)
        grouped = aggregate(pre_entities, strategy, id2label, **decode)
        all_entities.extend(entity for entity in grouped
                            if entity.get("entity") not in ignore_labels
                            and entity.get("entity_group") not in ignore_labels)
    if len(windows) > 1:
        all_entities = aggregate_overlapping_entities(all_entities)
    return [_plain(entity) for entity in all_entities]
