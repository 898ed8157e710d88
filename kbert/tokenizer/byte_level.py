r"""GPT-2 / RoBERTa byte-level pre-tokenization as TensorFlow ops, with character offsets.

This reproduces what Hugging Face's ``tokenizers`` does before its BPE model runs, for a RoBERTa-style
``tokenizer.json`` (no normaliser, ``ByteLevel`` pre-tokenizer):

    text ─► code points ─► added tokens (``<s>``, ``<mask>`` ...) matched literally, leftmost-longest,
            with ``lstrip``/``rstrip``; the text between them is split into *segments*
         ─► ``add_prefix_space``: a space before every segment that does not start with one
         ─► the GPT-2 regex, segment by segment:
            ``'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+``
         ─► words (UTF-8 strings) whose every character remembers its index in the original text

The regex is not run by a regex engine: RE2 (TensorFlow's) has no look-ahead and its ``\s`` is ASCII
only, while ``tokenizers`` (Oniguruma) matches ``\s`` on Unicode White_Space. Because the alternatives
cover every character class, the matches tile each segment, and where one starts is a local rule of
the character classes around it (see :meth:`ByteLevelPreTokenizer._word_starts`); the classes come
from a table probed from the real pre-tokenizer (:mod:`kbert.tokenizer.byte_level_tables`). So the
split is a handful of vectorised comparisons over code points, with exact offsets, instead of a
rewrite of the text.

Example:
    >>> import tensorflow as tf
    >>> from kbert.tokenizer.byte_level import AddedToken, ByteLevelPreTokenizer
    >>> pre = ByteLevelPreTokenizer([AddedToken("<mask>", 4, lstrip=True)])
    >>> words = pre.split(tf.constant(["It's  2 <mask>!"]))
    >>> [w.decode() for w in words.strings.numpy()], words.special.numpy().tolist()
    (['It', "'s", ' ', ' 2', ' <mask>', '!'], [-1, -1, -1, -1, 0, -1])
    >>> words.char_positions.to_list()[4]
    [7, 8, 9, 10, 11, 12, 13]
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from kbert.tokenizer import byte_level_tables as tables
from kbert.tokenizer import ragged

_L, _N, _W, _O = tables.L, tables.N, tables.W, tables.O
_SPACE, _APOSTROPHE = 32, 39
_BIG = 2**30


@functools.lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character map (``Ġ`` is the space, ``Ċ`` the newline)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


@functools.lru_cache(maxsize=None)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


@functools.lru_cache(maxsize=None)
def _to_latin1() -> dict[int, str]:
    """str.translate table: a byte character → the Latin-1 character of its byte; other Latin-1 → U+FFFF."""
    table = {cp: "\uffff" for cp in range(256)}
    table.update({ord(c): chr(b) for c, b in unicode_to_bytes().items()})
    return table


def token_bytes(token: str) -> bytes | None:
    """The bytes a byte-level token stands for (``"Ġhi"`` → ``b" hi"``); None if it is not byte-level."""
    try:
        return token.translate(_to_latin1()).encode("latin-1")  # ~1 µs a token (50,000 at construction)
    except UnicodeEncodeError:
        return None


def decode_tokens(tokens) -> str:
    """What the ``tokenizers`` ByteLevel decoder makes of tokens (``convert_tokens_to_string``).

    Each token's bytes (a token outside the byte alphabet counts as its own UTF-8), joined, then
    decoded as UTF-8 with U+FFFD for invalid sequences.

    >>> decode_tokens(["ĠNew", "ĠYork", "Ġ", "ðŁ", "ĺ", "Ģ", "<mask>"])
    ' New York 😀<mask>'
    """
    return b"".join(token_bytes(t) or t.encode("utf-8") for t in tokens).decode("utf-8", errors="replace")


class CodePointClasses(tf.Module):
    """Code point → regex class (``L``, ``N``, ``W``, ``O``) with a two-level table (pages of 256)."""

    def __init__(self, name: str | None = None):
        super().__init__(name=name)
        page, blocks = _class_pages()
        self._page = tf.constant(page)  # (4352,) start of each page's block in ``blocks``
        self._blocks = tf.constant(blocks)  # (133 * 256,)

    def __call__(self, code_points: tf.Tensor) -> tf.Tensor:
        cp = tf.clip_by_value(code_points, 0, 0x10FFFF)
        return tf.gather(self._blocks, tf.gather(self._page, tf.bitwise.right_shift(cp, 8)) + tf.bitwise.bitwise_and(cp, 255))


@functools.lru_cache(maxsize=None)
def _class_pages() -> tuple[np.ndarray, np.ndarray]:
    runs = np.asarray(tables.RUNS, np.int64).reshape(-1, 2)
    dense = np.repeat(runs[:, 1], np.diff(np.append(runs[:, 0], 0x110000))).astype(np.int32).reshape(-1, 256)
    index: dict[bytes, int] = {}
    page = np.asarray([index.setdefault(row.tobytes(), len(index)) for row in dense], np.int32)
    blocks = np.zeros([len(index), 256], np.int32)
    blocks[page] = dense
    return page * 256, blocks.reshape(-1)


@dataclasses.dataclass(frozen=True)
class AddedToken:
    """A token matched literally in the raw text before pre-tokenization (``tokenizer.json``'s ``added_tokens``).

    ``normalized`` tokens are matched in a second pass, in the text the first pass left (as ``tokenizers``
    does); ``lstrip``/``rstrip`` make a match swallow the whitespace on its left/right.
    """

    content: str
    id: int
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = False


class AddedTokenMatcher(tf.Module):
    """Marks the code points of added tokens found in the text, as ``tokenizers``' ``AddedVocabulary`` does.

    Matching is leftmost-longest and non-overlapping (Aho-Corasick ``LeftmostLongest``), first for the
    non-normalized tokens, then for the normalized ones in what is left. The work is proportional to the
    number of characters that could start a token, not to the text.
    """

    def __init__(self, tokens: list[AddedToken], name: str | None = None):
        super().__init__(name=name)
        self.tokens = tuple(t for t in tokens if t.content)
        self._passes = []
        for normalized in (False, True):
            members = sorted((k for k, t in enumerate(self.tokens) if t.normalized == normalized),
                             key=lambda k: -len(self.tokens[k].content))  # longest first: it wins at one start
            if members:
                contents = [self.tokens[k].content for k in members]
                self._passes.append({
                    "members": members,
                    "patterns": [tf.constant([ord(c) for c in s], tf.int32) for s in contents],
                    "first": tf.constant(sorted({ord(s[0]) for s in contents}), tf.int32),
                    "overlap": _can_overlap(contents),
                    "lstrip": any(self.tokens[k].lstrip for k in members),
                    "rstrip": any(self.tokens[k].rstrip for k in members),
                })
        self._first = tf.constant(sorted({ord(t.content[0]) for t in self.tokens}) or [-1], tf.int32)
        self._lstrip = tf.constant([t.lstrip for t in self.tokens] or [False])
        self._rstrip = tf.constant([t.rstrip for t in self.tokens] or [False])
        self._lengths = tf.constant([len(t.content) for t in self.tokens] or [0], tf.int32)

    def __call__(self, code_points: tf.Tensor, row: tf.Tensor, is_space: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(token, is_start)`` per flat code point: index into ``tokens`` (else -1), and match starts.

        ``row`` ``(N,)`` is the text of each code point (sorted), ``is_space`` its White_Space flag.
        """
        n = tf.shape(code_points)[0]
        token = tf.fill([n], -1)
        start = tf.zeros([n], tf.bool)
        if not self._passes:
            return token, start
        # Most batches hold no character that starts a token: then skip the matching altogether.
        maybe = tf.reduce_any(tf.equal(code_points[:, None], self._first[None, :]))
        return tf.cond(maybe, lambda: self._match(code_points, row, is_space, token, start), lambda: (token, start))

    def _match(self, code_points, row, is_space, token, start):
        n = tf.shape(code_points)[0]
        blocked = tf.zeros([n], tf.bool)
        found_start, found_end, found_token = [], [], []
        for spec in self._passes:
            s, e, k = self._find(spec, code_points, row, is_space, blocked)
            if len(self._passes) > 1:
                blocked = blocked | _cover(s, e, n)
            found_start.append(s)
            found_end.append(e)
            found_token.append(k)
        s, e, k = (tf.concat(t, axis=0) for t in (found_start, found_end, found_token))

        def mark():
            # Spread each match over its characters: +1 at its start, -1 just after its end.
            index = tf.math.cumsum(tf.math.unsorted_segment_sum(tf.ones_like(s), s, n + 1))[:n] - 1  # latest start
            order = tf.argsort(s)
            covered = _cover(s, e, n)
            sorted_token = tf.gather(k, order)
            return (tf.where(covered, tf.gather(sorted_token, tf.maximum(index, 0)), -1),
                    tf.scatter_nd(s[:, None], tf.ones_like(s, tf.bool), [n]))

        return tf.cond(tf.size(s) > 0, mark, lambda: (token, start))

    def _find(self, spec, cp, row, is_space, blocked):
        """Matches of one pass: ``(start, end, token)`` of each, in text order (ends include stripped spaces)."""
        n = tf.shape(cp)[0]
        last = tf.maximum(n - 1, 0)
        cand = tf.cast(tf.reshape(tf.where(tf.reduce_any(tf.equal(cp[:, None], spec["first"][None, :]), axis=1)
                                           & ~blocked), [-1]), tf.int32)  # (C,)
        cand_row = tf.gather(row, cand)
        best = tf.fill(tf.shape(cand), -1)
        for member, pattern in zip(spec["members"], spec["patterns"]):
            at = cand[:, None] + tf.range(tf.size(pattern))[None, :]  # (C, L)
            clipped = tf.minimum(at, last)
            ok = tf.reduce_all((at < n) & tf.equal(tf.gather(cp, clipped), pattern[None, :])
                               & tf.equal(tf.gather(row, clipped), cand_row[:, None]) & ~tf.gather(blocked, clipped),
                               axis=1)
            best = tf.where((best < 0) & ok, member, best)
        hit = best >= 0
        start, token, match_row = (tf.boolean_mask(t, hit) for t in (cand, best, cand_row))
        end = start + tf.gather(self._lengths, token)
        if spec["overlap"]:  # leftmost first: a match that starts inside the one kept before it is dropped
            keep = _leftmost(start, end, match_row)
            start, end, token, match_row = (tf.boolean_mask(t, keep) for t in (start, end, token, match_row))
        if spec["rstrip"]:
            end = _extend(end, 1, tf.gather(self._rstrip, token), row, match_row, is_space, blocked, 0, n)
        if spec["lstrip"]:
            # Bounded by the previous match of the same text (spaces it swallowed stay with it).
            first_of_row = tf.concat([[True], tf.not_equal(match_row[1:], match_row[:-1])], axis=0)
            previous_end = tf.where(first_of_row, 0, tf.concat([[0], end[:-1]], axis=0))
            start = _extend(start - 1, -1, tf.gather(self._lstrip, token), row, match_row, is_space, blocked,
                            previous_end, n) + 1
        return start, end, token


def _can_overlap(contents: list[str]) -> bool:
    """Whether two matches of these tokens can overlap (a proper suffix of one is a prefix of another)."""
    for a in contents:
        for b in contents:
            if any(b.startswith(a[i:]) for i in range(1, len(a))) or (a != b and a in b):
                return True
    return False


def _cover(start: tf.Tensor, end: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """``(n,)`` bool: inside some ``[start, end)``."""
    delta = tf.math.unsorted_segment_sum(tf.ones_like(start), start, n + 1) - \
        tf.math.unsorted_segment_sum(tf.ones_like(end), end, n + 1)
    return tf.cumsum(delta)[:n] > 0


def _leftmost(start, end, match_row):
    """Keep flags of non-overlapping matches, leftmost first (a sequential scan over the few matches)."""
    def step(carry, match):
        last_row, last_end = carry
        s, e, r = match
        keep = tf.not_equal(r, last_row) | (s >= last_end)
        return (tf.where(keep, r, last_row), tf.where(keep, e, last_end)), keep

    def scan():
        _, keep = tf.scan(lambda c, m: step(c[0], m), (start, end, match_row),
                          initializer=((tf.constant(-1), tf.constant(0)), tf.constant(False)))
        return keep

    return tf.cond(tf.size(start) > 0, scan, lambda: tf.zeros([0], tf.bool))


def _extend(edge, step, active, row, match_row, is_space, blocked, bound, n):
    """Move ``edge`` by ``step`` while it is on a White_Space character of the same text (not blocked,
    within ``[bound, n)``); returns the first position that is not (right) / last that is not (left)."""
    last = tf.maximum(n - 1, 0)

    def cond(edge, active):
        return tf.reduce_any(active)

    def body(edge, active):
        at = tf.clip_by_value(edge, 0, last)
        ok = active & (edge >= bound) & (edge < n) & tf.gather(is_space, at) & ~tf.gather(blocked, at) & \
            tf.equal(tf.gather(row, at), match_row)
        return edge + step * tf.cast(ok, edge.dtype), ok

    edge, _ = tf.while_loop(cond, body, (edge, active))
    return edge


@dataclasses.dataclass(frozen=True)
class ByteLevelWords:
    """Pre-tokens of a batch of texts, flattened in text order: ``strings[i]`` belongs to ``text_index[i]``.

    ``char_positions`` holds, per word, the index in the original text of every character of
    ``strings`` (an added prefix space takes the index of the character after it). Added tokens found
    in the text are words too, with ``special`` their index in the pre-tokenizer's ``added_tokens``
    (-1 for the others) and ``lead``/``trail`` the White_Space characters they swallowed.
    """

    strings: tf.Tensor  # (W,) tf.string, UTF-8
    text_index: tf.Tensor  # (W,) int32
    char_positions: tf.RaggedTensor  # (W, (c)) int32
    special: tf.Tensor  # (W,) int32
    lead: tf.Tensor  # (W,) int32, 0 for ordinary words
    trail: tf.Tensor  # (W,) int32
    num_texts: tf.Tensor  # () int32


class ByteLevelPreTokenizer(tf.Module):
    """Added-token extraction + ``ByteLevel(add_prefix_space, use_regex=True)`` pre-tokenization.

    Args:
        added_tokens: tokens matched literally in the text (RoBERTa's ``<s>``, ``</s>``, ``<mask>`` ...).
        add_prefix_space: put a space before every segment of text that does not start with one.
    """

    lowercase = False  # what kbert reports of a tokenizer's normalisation (``kbert info``): none here
    strip_accents = False

    def __init__(self, added_tokens: list[AddedToken] = (), add_prefix_space: bool = False, name: str | None = None):
        super().__init__(name=name)
        self.add_prefix_space = bool(add_prefix_space)
        self.added_tokens = AddedTokenMatcher(list(added_tokens), name="added_tokens")
        self._classes = CodePointClasses(name="classes")

    def split(self, texts: tf.Tensor) -> ByteLevelWords:
        """Words of ``texts`` ``(B,)`` with the original character index of each of their characters."""
        texts = tf.convert_to_tensor(texts, tf.string)
        cps = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")  # (B, (n))
        x = cps.flat_values
        # Invalid UTF-8 decodes to U+FFFD: then re-encode the texts alike, so that the words cut out of
        # their bytes below hold what was decoded (valid text pays one comparison).
        texts = tf.cond(tf.reduce_any(tf.equal(x, 0xFFFD)),
                        lambda: tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace"), lambda: texts)
        splits = tf.cast(cps.row_splits, tf.int32)
        row = ragged.row_ids(splits)
        pos = tf.range(tf.shape(x)[0]) - tf.gather(splits, row)
        width = 1 + tf.cast(x >= 0x80, tf.int32) + tf.cast(x >= 0x800, tf.int32) + tf.cast(x >= 0x10000, tf.int32)
        byte = tf.cumsum(width, exclusive=True)  # where each character starts in all the texts joined
        first = tf.equal(pos, 0)
        last = tf.equal(pos, tf.gather(splits[1:] - splits[:-1], row) - 1)
        cls = self._classes(x)
        special, special_start = self.added_tokens(x, row, tf.equal(cls, _W))
        is_special = special >= 0
        segment_first = ~is_special & (first | _shift(is_special, 1, False))
        segment_last = ~is_special & (last | _shift(is_special, -1, False))
        virtual = None
        if self.add_prefix_space:
            x, cls, pos, row, byte, width, special, special_start, segment_first, segment_last, virtual = \
                _prefix_spaces(x, cls, pos, row, byte, width, special, special_start, segment_first, segment_last)
            is_special = special >= 0
        starts = tf.where(is_special, special_start, self._word_starts(x, cls, segment_first, segment_last))

        word_id = tf.cumsum(tf.cast(starts, tf.int32)) - 1  # (N,)
        num_words = tf.reduce_sum(tf.cast(starts, tf.int32))
        at_start = tf.cast(tf.reshape(tf.where(starts), [-1]), tf.int32)  # first character of every word
        word_splits = tf.concat([at_start, tf.shape(x)], axis=0)
        at_end = word_splits[1:] - 1  # last character of every word
        positions = tf.RaggedTensor.from_row_splits(pos, tf.cast(word_splits, tf.int64), validate=False)
        begin = tf.gather(byte, at_start)
        strings = tf.strings.substr(tf.strings.reduce_join(texts), begin, tf.gather(byte + width, at_end) - begin)
        if virtual is not None:
            strings = tf.strings.join([tf.where(tf.gather(virtual, at_start), " ", ""), strings])
        lead, trail = _stripped(is_special, cls, word_id, at_start, word_splits[1:] - word_splits[:-1], num_words)
        return ByteLevelWords(strings=strings, text_index=tf.gather(row, at_start), char_positions=positions,
                              special=tf.gather(special, at_start), lead=lead, trail=trail,
                              num_texts=tf.shape(texts)[0])

    @staticmethod
    def _word_starts(x, cls, segment_first, segment_last):
        r"""Where a match of the GPT-2 regex starts, from the classes of each character and its neighbours.

        Within a segment (the matches tile it, leftmost first):
        * ``'s 't 're 've 'm 'll 'd`` match where a match can start on the apostrophe: at the segment's
          start, after a letter or a digit, or after a White_Space character other than U+0020 (a space
          before it would take it as `` ?[^\s\p{L}\p{N}]+``; other punctuation would absorb it);
        * letters, digits and other characters run on while the class stays the same, each run taking
          one U+0020 before it;
        * a run of White_Space leaves its last character to the next match (``\s+(?!\S)``) when
          something follows in the segment: that character starts a match, alone (``\s+``) unless it is
          U+0020 (then the next run takes it).
        """
        prev_cls, prev_x = _shift(cls, 1, -1), _shift(x, 1, -1)
        next_cls = tf.where(segment_last, -1, _shift(cls, -1, -1))
        next_x = tf.where(segment_last, -1, _shift(x, -1, -1))
        next2_x = tf.where(segment_last | _shift(segment_last, -1, True), -1, _shift(x, -2, -1))
        prev_ws = tf.equal(prev_cls, _W) & ~segment_first
        after_other_space = prev_ws & tf.not_equal(prev_x, _SPACE)

        # Contractions: their length (0, 2 or 3) at the apostrophe.
        can_start = segment_first | tf.equal(prev_cls, _L) | tf.equal(prev_cls, _N) | after_other_space
        apostrophe = tf.equal(x, _APOSTROPHE) & can_start
        two = tf.equal(next_x, ord("s")) | tf.equal(next_x, ord("t")) | tf.equal(next_x, ord("m")) | \
            tf.equal(next_x, ord("d"))
        three = (tf.equal(next2_x, ord("e")) & (tf.equal(next_x, ord("r")) | tf.equal(next_x, ord("v")))) | \
            (tf.equal(next_x, ord("l")) & tf.equal(next2_x, ord("l")))
        length = tf.where(apostrophe & two, 2, tf.where(apostrophe & three, 3, 0))
        back1, back2, back3 = (_shift(length, k, 0) for k in (1, 2, 3))
        inside = (back1 >= 2) | tf.equal(back2, 3)
        after = tf.equal(back2, 2) | tf.equal(back3, 3)

        is_ws = tf.equal(cls, _W)
        starts_run = ~is_ws & (after_other_space | (~prev_ws & tf.not_equal(prev_cls, cls)))
        splits_ws = is_ws & (~prev_ws | (tf.not_equal(next_cls, _W) & tf.not_equal(next_cls, -1)))
        return (segment_first | starts_run | splits_ws | after) & ~inside


def _shift(t: tf.Tensor, k: int, fill) -> tf.Tensor:
    """``t`` moved ``k`` places right (``k > 0``: ``out[i] = t[i - k]``) or left, ``fill`` where nothing comes."""
    n = tf.shape(t)[0]
    pad = tf.fill([abs(k)], tf.constant(fill, t.dtype))
    return (tf.concat([pad, t], axis=0) if k > 0 else tf.concat([t[-k:], pad], axis=0))[:n]


def _prefix_spaces(x, cls, pos, row, byte, width, special, special_start, segment_first, segment_last):
    """``add_prefix_space``: a U+0020 before every segment that does not start with one.

    The added space takes the position of the character after it (``NormalizedString::prepend``), and
    no bytes of the text (``width`` 0); the last output flags these added spaces.
    """
    add = segment_first & tf.not_equal(x, _SPACE)
    source = tf.repeat(tf.range(tf.shape(x)[0]), 1 + tf.cast(add, tf.int32))
    fresh = tf.not_equal(source, _shift(source, 1, -1)) & tf.gather(add, source)
    x, cls, pos, row, byte, width, special, special_start, segment_first, segment_last, add = (
        tf.gather(t, source) for t in (x, cls, pos, row, byte, width, special, special_start, segment_first,
                                       segment_last, add))
    return (tf.where(fresh, _SPACE, x), tf.where(fresh, _W, cls), pos, row, byte, tf.where(fresh, 0, width),
            special, special_start, fresh | (segment_first & ~add), segment_last & ~fresh, fresh)


def _stripped(is_special, cls, word_id, word_begin, word_length, num_words):
    """White_Space characters at the start and at the end of each special word (0 for the others)."""
    at = tf.reshape(tf.where(is_special), [-1])
    words = tf.gather(word_id, at)
    index = tf.cast(at, tf.int32) - tf.gather(word_begin, words)  # position inside its word
    solid = tf.not_equal(tf.gather(cls, at), _W)
    first_solid = tf.math.unsorted_segment_min(tf.where(solid, index, _BIG), words, num_words)
    last_solid = tf.math.unsorted_segment_max(tf.where(solid, index, -1), words, num_words)
    lead = tf.minimum(first_solid, word_length)
    trail = word_length - 1 - last_solid
    has = tf.math.unsorted_segment_max(tf.ones_like(words), words, num_words) > 0
    return tf.where(has, lead, 0), tf.where(has, tf.minimum(trail, word_length), 0)
