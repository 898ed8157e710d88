"""RoBERTa's byte-level BPE tokenizer in TensorFlow ops: Hugging Face ids, character offsets, pairs, windows.

Graph-compatible (``tf.data`` ``map``, ``tf.function``, SavedModel) and gives the same ``input_ids``,
``attention_mask`` and ``offset_mapping`` as Hugging Face's ``RobertaTokenizerFast`` (the ``tokenizers``
pipeline: added tokens → ``ByteLevel`` pre-tokenizer → ``BPE`` → ``RobertaProcessing`` with
``trim_offsets``) for the same ``vocab.json``/``merges.txt`` (or ``tokenizer.json``) and options:

    text ─► ByteLevelPreTokenizer (added tokens, prefix space, GPT-2 regex; kbert.tokenizer.byte_level)
         ─► unique words of the batch ─► BytePairEncoder (kbert.tokenizer.bpe) ─► pieces per occurrence
         ─► character offsets, trimmed as RobertaProcessing does ─► <s> A </s> (</s> B </s>)

Example:
    >>> import tensorflow as tf
    >>> from kbert.tokenizer import RobertaTokenizer
    >>> from kbert.tokenizer.byte_level import bytes_to_unicode
    >>> vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}
    >>> vocab.update({c: 5 + b for b, c in bytes_to_unicode().items()})  # byte b: id 5 + b
    >>> vocab.update({"Ġw": 261, "Ġwo": 262, "Ġwor": 263, "Ġworld": 264, "or": 265, "ld": 266})
    >>> merges = [("Ġ", "w"), ("Ġw", "o"), ("Ġwo", "r"), ("l", "d"), ("Ġwor", "ld")]
    >>> tok = RobertaTokenizer(vocab, merges)
    >>> enc = tok.encode(tf.constant(["Hi world", "<mask> world!"]))
    >>> enc.token_ids.to_list()
    [[0, 77, 110, 264, 2], [0, 4, 264, 38, 2]]
    >>> enc.starts.to_list(), enc.ends.to_list()
    ([[0, 0, 1, 3, 0], [0, 0, 7, 12, 0]], [[0, 1, 2, 8, 0], [0, 6, 12, 13, 0]])
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Mapping, Sequence

import tensorflow as tf

from kbert.errors import CheckpointNotFoundError, TokenizerError
from kbert.tokenizer import ragged
from kbert.tokenizer.bpe import BytePairEncoder
from kbert.tokenizer.byte_level import AddedToken, ByteLevelPreTokenizer, decode_tokens, token_bytes
from kbert.tokenizer.subword import (Pieces, SpecialLayout, SubwordTokenizer, TokenizerFolder, check_special_tokens,
                                     read_json)
from kbert.tokenizer.tracing import EagerThenTraced

logger = logging.getLogger(__name__)

_SPACE_CHAR = "Ġ"  # GPT-2's character for the byte 0x20
_SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class RobertaTokenizer(SubwordTokenizer):
    """Byte-level BPE tokenizer with Hugging Face ``RobertaTokenizerFast`` semantics, in TensorFlow ops.

    Args:
        vocab: token → id (``vocab.json``, or ``tokenizer.json``'s ``model.vocab``).
        merges: merge rules in rank order (``merges.txt`` lines as ``(left, right)``).
        add_prefix_space: put a space before the text (and before the text after a literal special token),
            so that its first word is tokenized like the others (default False, as ``RobertaTokenizerFast``).
        trim_offsets: leave leading/trailing spaces out of tokens' offsets (``RobertaProcessing``).
        model_max_length: default ``max_length`` of :meth:`encode`, special tokens included.
        cls_token, sep_token, pad_token, unk_token, mask_token: special tokens (``<s>`` ``</s>`` ...).
        added_tokens: tokens matched literally in the text; default: the special tokens, ``<mask>`` with
            ``lstrip`` (what ``RobertaTokenizerFast`` makes of a ``vocab.json``/``merges.txt`` folder).
        bpe_unk_token, fuse_unk, ignore_merges: the ``BPE`` model's options (``tokenizer.json``); RoBERTa has
            no unknown token there: a byte missing from the vocabulary is dropped.
    """

    decoder_cleanup = False  # the ByteLevel decoder has no WordPiece clean-up
    continuing_subword_prefix = None  # no "##": transformers then tells subwords by its space heuristic
    split_words_prefix = " "  # run_ner.py tokenizes pre-split words with add_prefix_space=True: " word" each

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]], *, add_prefix_space: bool = False,
                 trim_offsets: bool = True, model_max_length: int = 512, cls_token: str = "<s>", sep_token: str = "</s>",
                 pad_token: str = "<pad>", unk_token: str = "<unk>", mask_token: str = "<mask>",
                 added_tokens: Sequence[AddedToken] | None = None, bpe_unk_token: str | None = None,
                 fuse_unk: bool = False, ignore_merges: bool = False, name: str | None = None):
        super().__init__(name=name)
        vocab = dict(vocab)
        if added_tokens is None:
            added_tokens = [AddedToken(t, vocab[t], lstrip=t == mask_token, normalized=t != mask_token)
                            for t in dict.fromkeys((cls_token, pad_token, sep_token, unk_token, mask_token)) if t in vocab]
        added_tokens = list(added_tokens)
        index = {**vocab, **{t.content: t.id for t in added_tokens}}
        check_special_tokens(index, (cls_token, sep_token, pad_token, unk_token), model_max_length)
        vocabulary = [""] * (max(index.values()) + 1)  # an id no token has stays ""
        for token, i in vocab.items():
            vocabulary[i] = token
        for t in added_tokens:
            vocabulary[t.id] = t.content
        # A tuple: tf.Module would track a list element by element (see BertTokenizer).
        self.vocabulary = tuple(vocabulary)
        self.cls_token, self.sep_token, self.pad_token, self.unk_token = cls_token, sep_token, pad_token, unk_token
        self.mask_token = mask_token
        self.cls_id, self.sep_id, self.pad_id, self.unk_id = (index[t] for t in (cls_token, sep_token, pad_token, unk_token))
        self.mask_id = index.get(mask_token)
        self.model_max_length = int(model_max_length)
        self.add_prefix_space = bool(add_prefix_space)
        self.takes_split_words = self.add_prefix_space  # transformers refuses is_split_into_words otherwise
        self.trim_offsets = bool(trim_offsets)
        self.pre_tokenizer = ByteLevelPreTokenizer(added_tokens, add_prefix_space=self.add_prefix_space,
                                                   name="pre_tokenizer")
        self.normalizer = self.pre_tokenizer  # byte-level BPE normalises nothing (``lowercase`` is False)
        self.bpe = BytePairEncoder(vocab, merges, unk_id=None if bpe_unk_token is None else index[bpe_unk_token],
                                   fuse_unk=fuse_unk, ignore_merges=ignore_merges, name="bpe")
        added_ids = [t.id for t in self.pre_tokenizer.added_tokens.tokens] or [0]
        self._added_rows = tf.constant([[i, 0, -1] for i in added_ids], tf.int32)  # id, char start, end (-1: all)
        self._added_range = tf.range(len(added_ids), dtype=tf.int32)
        # Leading / trailing spaces of every token, as RobertaProcessing's trim_offsets counts them.
        self._lead = tf.constant([len(t) - len(t.lstrip(_SPACE_CHAR)) for t in self.vocabulary], tf.int32)
        self._trail = tf.constant([len(t) - len(t.rstrip(_SPACE_CHAR)) for t in self.vocabulary], tf.int32)
        self._runner = EagerThenTraced(self._tokenize)
        self._bytes = tf.constant([token_bytes(t) or t.encode("utf-8") for t in self.vocabulary])

    # --- construction --------------------------------------------------------------------------
    default_special_tokens = (("cls_token", "<s>"), ("sep_token", "</s>"), ("pad_token", "<pad>"),
                              ("unk_token", "<unk>"), ("mask_token", "<mask>"), ("bos_token", "<s>"),
                              ("eos_token", "</s>"))
    post_processor = "RobertaProcessing"  # the tokenizer.json post-processor from_pretrained reads

    @staticmethod
    def max_positions(max_position_embeddings: int, pad_id: int) -> int:
        """Tokens the model's positions hold: RoBERTa numbers them from ``pad_id + 1``."""
        return max_position_embeddings - pad_id - 1

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path, *, max_position_embeddings: int | None = None) -> "RobertaTokenizer":
        """The tokenizer of a Hugging Face RoBERTa-style folder, decided as ``RobertaTokenizerFast`` decides.

        The model comes from ``tokenizer.json`` when there is one (it wins over ``vocab.json`` +
        ``merges.txt``, as in transformers), its added tokens with their ``lstrip``/``rstrip`` flags, which
        ``tokenizer_config.json``'s ``added_tokens_decoder`` may override. ``add_prefix_space`` (default
        False) and ``trim_offsets`` (default True) come from ``tokenizer_config.json``, whatever
        ``tokenizer.json`` says, as transformers rewrites them. ``model_max_length`` comes from
        ``tokenizer_config.json``; when it is missing or unbounded (transformers then never truncates),
        and as an upper bound, the positions the model has: RoBERTa numbers positions from
        ``padding_idx + 1``, so ``max_position_embeddings`` 514 holds 512 tokens.
        """
        files = TokenizerFolder.read(folder)
        folder, config, special_map = files.path, files.config, files.special_map
        names = files.special_tokens(dict(cls.default_special_tokens))
        tokenizer_file = folder / "tokenizer.json"
        options = {}
        if tokenizer_file.is_file():
            vocab, merges, added, options = _read_tokenizer_json(tokenizer_file, cls.post_processor)
            # The special tokens around the texts are the post-processor's (transformers keeps them).
            names["cls_token"], names["sep_token"] = options.pop("cls_token"), options.pop("sep_token")
        else:
            vocab, merges = _read_vocab_and_merges(folder)
            added = []
        added = _added_tokens(added, vocab, names, config, special_map, folder)
        pad_id = vocab.get(names["pad_token"], 1)
        positions = None if not max_position_embeddings else cls.max_positions(int(max_position_embeddings), pad_id)
        max_length = files.model_max_length(positions)
        trim_offsets = options.pop("trim_offsets", bool(config.get("trim_offsets", True)))
        return cls(vocab, merges, add_prefix_space=bool(config.get("add_prefix_space", False)),
                   trim_offsets=trim_offsets, model_max_length=max_length,
                   cls_token=names["cls_token"], sep_token=names["sep_token"], pad_token=names["pad_token"],
                   unk_token=names["unk_token"], mask_token=names["mask_token"], added_tokens=added, **options)

    # --- tokenization ------------------------------------------------------------------------
    def tokenize(self, texts: tf.Tensor) -> Pieces:
        """BPE pieces of ``texts`` ``(B,)`` without special tokens, with (trimmed) character offsets.

        In a graph (``tf.function``, ``tf.data``, SavedModel) this calls one traced function, shared by
        every call (a pair's two texts, every later trace): ~1,500 ops traced once. Eagerly, calls run op
        by op until they have spent about a second, then that traced function takes over
        (:class:`~kbert.tokenizer.tracing.EagerThenTraced`): on 10,000 sentences a first eager call
        takes ~0.4 s, a first traced one ~0.75 s (tracing and graph set-up) and later traced ones ~0.1 s.
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        if tf.executing_eagerly() and texts.shape.rank != 1:
            return Pieces(**self._tokenize(texts))
        return Pieces(**self._runner(texts))

    def _tokenize(self, texts: tf.Tensor) -> dict[str, tf.RaggedTensor]:
        words = self.pre_tokenizer.split(texts)
        regular = words.special < 0
        unique, index = tf.unique(tf.where(regular, words.strings, ""), out_idx=tf.int32)
        ids, char_starts, char_ends = self.bpe(unique)  # (U, (p)) pieces of every distinct word
        # Rows U.. of the table are the added tokens: one piece each, spanning its whole word (end -1).
        num_unique = tf.size(unique)
        bpe_splits = tf.cast(ids.row_splits, tf.int32)
        table_splits = tf.concat([bpe_splits, bpe_splits[-1] + 1 + self._added_range], axis=0)
        table = tf.concat([tf.stack([ids.flat_values, char_starts.flat_values, char_ends.flat_values], axis=1),
                           self._added_rows], axis=0)  # (pieces of U + K rows, 3)
        row = tf.where(regular, index, num_unique + tf.maximum(words.special, 0))
        flat, word_splits, piece_word = ragged.gather_rows(table_splits, row)  # every piece of every word, in order
        piece_ids, char_start, char_end = tf.unstack(tf.gather(table, flat), axis=1)

        positions = words.char_positions
        word_begin = tf.cast(positions.row_splits, tf.int32)
        char_end = tf.where(char_end < 0, tf.gather(word_begin[1:] - word_begin[:-1], piece_word), char_end)
        base = tf.gather(word_begin, piece_word)
        starts = tf.gather(positions.flat_values, base + char_start)
        ends = tf.gather(positions.flat_values, base + char_end - 1) + 1
        text = tf.gather(words.text_index, piece_word)
        text_splits = ragged.splits_of_sorted_rows(text, words.num_texts)

        def per_text(values):
            return tf.RaggedTensor.from_row_splits(values, text_splits, validate=False)

        pieces = {"ids": per_text(piece_ids), "word_starts": per_text(
            tf.equal(tf.range(tf.size(piece_word)), tf.gather(tf.cast(word_splits, tf.int32), piece_word)))}
        if not self.trim_offsets:
            return {**pieces, "starts": per_text(starts), "ends": per_text(ends)}
        is_added = tf.gather(words.special, piece_word) >= 0
        lead = tf.where(is_added, tf.gather(words.lead, piece_word), tf.gather(self._lead, piece_ids))
        trail = tf.where(is_added, tf.gather(words.trail, piece_word), tf.gather(self._trail, piece_ids))
        first_of_text = tf.equal(tf.range(tf.size(text)), tf.gather(tf.cast(text_splits, tf.int32), text))
        # process_offsets: with add_prefix_space, the first token keeps its one leading space ("first":
        # first of its sequence -- of the text, or of an overflow window -- or starting at 0).
        keeps_space = self.add_prefix_space & tf.equal(lead, 1)
        trimmed = _trim(starts, ends, lead, trail, keeps_space & (first_of_text | tf.equal(starts, 0)))
        pieces.update(starts=per_text(trimmed[0]), ends=per_text(trimmed[1]))
        if self.add_prefix_space:
            opening = _trim(starts, ends, lead, trail, keeps_space)
            pieces.update(opening_starts=per_text(opening[0]), opening_ends=per_text(opening[1]))
        return pieces

    def special_layout(self, is_pair: bool) -> SpecialLayout:
        """``<s> A </s>`` and ``<s> A </s></s> B </s>``; every segment id 0 (RoBERTa has one token type)."""
        after_first = ((self.sep_id, 0), (self.sep_id, 0)) if is_pair else ((self.sep_id, 0),)
        return SpecialLayout(before=((self.cls_id, 0),), after_first=after_first, after_second=((self.sep_id, 0),),
                             second_segment=0)

    # --- decoding ----------------------------------------------------------------------------
    def split_words(self, texts: tf.Tensor):
        return self.pre_tokenizer.split(texts)

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """HF's ``convert_tokens_to_string`` (the ByteLevel decoder): ``["ĠNew", "ĠYork"]`` → ``" New York"``."""
        return decode_tokens(tokens)

    def join_tokens(self, token_ids: tf.Tensor, group: tf.Tensor, num_groups: tf.Tensor,
                    unk_texts: tf.Tensor | None = None) -> tf.Tensor:
        """In-graph :meth:`convert_tokens_to_string` of groups of tokens: ``(num_groups,)`` strings.

        ``token_ids`` ``(N,)`` in order, ``group`` ``(N,)`` the group of each. Invalid UTF-8 (a character
        cut between groups) becomes U+FFFD, as the decoder's lossy UTF-8 does. ``unk_texts``: the text of
        each unknown token (RoBERTa's byte-level vocabulary has none in practice).
        """
        pieces = tf.gather(self._bytes, token_ids)
        if unk_texts is not None:
            pieces = tf.where(tf.equal(token_ids, self.unk_id), unk_texts, pieces)
        joined = tf.strings.unsorted_segment_join(pieces, group, num_groups)
        return tf.strings.unicode_transcode(joined, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)


def _trim(starts, ends, lead, trail, keep_lead):
    """``tokenizers``' ``process_offsets``: drop ``lead`` leading / ``trail`` trailing spaces from offsets."""
    new_starts = tf.where((lead > 0) & ~keep_lead, tf.minimum(starts + lead, ends), starts)
    new_ends = tf.where((trail > 0) & (ends >= trail), tf.maximum(ends - trail, new_starts), ends)
    return new_starts, new_ends


# --- files ------------------------------------------------------------------------------------
def _read_vocab_and_merges(folder: pathlib.Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    if not vocab_file.is_file() or not merges_file.is_file():
        present = [p.name for p in (vocab_file, merges_file) if p.is_file()]
        raise CheckpointNotFoundError(f"{folder}: no tokenizer.json, and no vocab.json + merges.txt "
                                      f"(found {present or 'neither'}), so there is no byte-level BPE tokenizer")
    vocab = _check_vocab(read_json(vocab_file), vocab_file)
    try:
        lines = merges_file.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise TokenizerError(f"{merges_file}: not UTF-8 ({err})") from None
    merges = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if (number == 1 and line.startswith("#version")) or not line.strip():
            continue  # the version header, blank lines (transformers skips them too)
        parts = line.split()
        if len(parts) != 2:
            raise TokenizerError(f"{merges_file}:{number}: a merge is two tokens separated by a space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return vocab, merges


def _check_vocab(vocab, where) -> dict[str, int]:
    if not isinstance(vocab, dict) or not vocab:
        raise TokenizerError(f"{where}: the vocabulary must be a non-empty JSON object token → id")
    bad = [(t, i) for t, i in vocab.items() if not isinstance(i, int) or isinstance(i, bool) or i < 0]
    if bad:
        raise TokenizerError(f"{where}: token ids must be integers >= 0, got {bad[:3]}")
    return vocab


def _read_tokenizer_json(path: pathlib.Path, post_processor: str = "RobertaProcessing"):
    """``(vocab, merges, added_tokens, BPE options)`` of a RoBERTa-style ``tokenizer.json`` (``post_processor``:
    the one it must have: ``RobertaProcessing``, or ModernBERT's ``[CLS] $A [SEP]`` ``TemplateProcessing``)."""
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise TokenizerError(f"{path}: not a BPE tokenizer (model type {model.get('type')!r})")
    unsupported = []
    if model.get("dropout"):
        unsupported.append(f"BPE dropout {model['dropout']}")
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            unsupported.append(f"{key} {model[key]!r}")
    if model.get("byte_fallback"):
        unsupported.append("byte_fallback")
    if data.get("normalizer"):
        unsupported.append(f"normalizer {data['normalizer'].get('type')!r}")
    pre = data.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        unsupported.append(f"pre_tokenizer {pre.get('type')!r} (only ByteLevel with its GPT-2 regex is)")
    post = data.get("post_processor") or {}
    if post.get("type") != post_processor:
        unsupported.append(f"post_processor {post.get('type')!r} (only {post_processor} is)")
    if unsupported:
        raise TokenizerError(f"{path}: kbert's RobertaTokenizer does not support " + ", ".join(unsupported))
    vocab = _check_vocab(model.get("vocab"), f"{path} model.vocab")
    merges = []
    for number, merge in enumerate(model.get("merges") or [], 1):
        parts = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) for p in parts):
            raise TokenizerError(f"{path}: merge {number} is not two tokens: {merge!r}")
        merges.append((parts[0], parts[1]))
    added = []
    for entry in data.get("added_tokens") or []:
        if entry.get("single_word"):
            raise TokenizerError(f"{path}: added token {entry.get('content')!r} is single_word, which kbert does not support")
        added.append(AddedToken(entry["content"], int(entry["id"]), lstrip=bool(entry.get("lstrip")),
                                rstrip=bool(entry.get("rstrip")), normalized=bool(entry.get("normalized"))))
    options = {"bpe_unk_token": model.get("unk_token"), "fuse_unk": bool(model.get("fuse_unk")),
               "ignore_merges": bool(model.get("ignore_merges"))}
    if post_processor == "TemplateProcessing":
        options["cls_token"], options["sep_token"] = _template_specials(post, path)
        options["trim_offsets"] = False  # only RobertaProcessing / ByteLevel post-processing trims offsets
        return vocab, merges, added, options
    try:
        options["cls_token"], options["sep_token"] = post["cls"][0], post["sep"][0]
    except (KeyError, IndexError, TypeError):
        raise TokenizerError(f"{path}: post_processor RobertaProcessing lacks its cls/sep tokens") from None
    if options["bpe_unk_token"] is not None and options["bpe_unk_token"] not in vocab:
        raise TokenizerError(f"{path}: the BPE unk_token {options['bpe_unk_token']!r} is not in the vocabulary")
    return vocab, merges, added, options


def _template_specials(post: dict, path) -> tuple[str, str]:
    """``(cls, sep)`` of a ``TemplateProcessing`` whose templates are ``CLS $A SEP`` and ``CLS $A SEP $B SEP``."""
    def shape(template):
        return [("Sequence", item["Sequence"]["id"]) if "Sequence" in item
                else ("SpecialToken", item["SpecialToken"]["id"]) for item in template or []]

    try:
        single, pair = shape(post.get("single")), shape(post.get("pair"))
    except (KeyError, TypeError):
        single, pair = [], []
    if len(single) == 3 and single[1] == ("Sequence", "A") and single[0][0] == single[2][0] == "SpecialToken":
        cls, sep = single[0][1], single[2][1]
        if pair == [("SpecialToken", cls), ("Sequence", "A"), ("SpecialToken", sep), ("Sequence", "B"),
                    ("SpecialToken", sep)]:
            return cls, sep
    raise TokenizerError(f"{path}: post_processor TemplateProcessing is not '[CLS] $A [SEP]' / "
                         f"'[CLS] $A [SEP] $B [SEP]' (got {single} / {pair}); kbert does not support it")


def _added_tokens(added: list[AddedToken], vocab, names, config, special_map, folder) -> list[AddedToken]:
    """The added tokens transformers ends up with: ``tokenizer.json``'s, overridden by ``tokenizer_config.json``'s
    ``added_tokens_decoder``, plus any special token still missing (``<mask>`` with ``lstrip``)."""
    by_content = {t.content: t for t in added}
    decoder = config.get("added_tokens_decoder") or {}
    for key, entry in sorted(decoder.items(), key=lambda kv: int(kv[0])):
        if not isinstance(entry, dict) or "content" not in entry:
            raise TokenizerError(f"{folder / 'tokenizer_config.json'}: added_tokens_decoder[{key!r}] is not a token")
        if entry.get("single_word"):
            raise TokenizerError(f"{folder}: added token {entry['content']!r} is single_word, which kbert does not support")
        by_content[entry["content"]] = AddedToken(entry["content"], int(key), lstrip=bool(entry.get("lstrip")),
                                                  rstrip=bool(entry.get("rstrip")),
                                                  normalized=bool(entry.get("normalized", True)))
    for key in _SPECIAL_NAMES:
        content = names.get(key)
        if content and content not in by_content and content in vocab:
            value = special_map.get(key)
            flags = value if isinstance(value, dict) else {}
            is_mask = key == "mask_token"
            by_content[content] = AddedToken(content, vocab[content], lstrip=bool(flags.get("lstrip", is_mask)),
                                             rstrip=bool(flags.get("rstrip", False)),
                                             normalized=bool(flags.get("normalized", not is_mask)))
    return sorted(by_content.values(), key=lambda t: t.id)
