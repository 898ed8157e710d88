"""Byte-pair encoding of words as TensorFlow ops, vectorised over a batch of words.

Each word's UTF-8 bytes start as one symbol each (the vocabulary ids of GPT-2's byte characters); then
every step of a ``tf.while_loop`` merges, in every word at once, the pair of adjacent symbols with the
lowest merge rank -- its leftmost occurrence, exactly as the ``tokenizers`` crate's priority queue
does (``Word::merge_all``: smallest rank first, then smallest position) -- until no pair of any word
has a rank. Pairs are looked up as one ``int64`` key (``left_id * V + right_id``) in a hash table.
Words that can merge no further leave the loop at once, so late steps only touch long words.

This is not keras-hub's ``BytePairTokenizer`` code (0.32), which looks pairs up as joined strings (a
string join and hash per pair per step), merges one pair per word per step on a dense padded copy of
the words, and gives no offsets. Measured on the 10,000 sentences of ``benchmarks/bench_bpe_tokenizer.py``
with a 50,265-token vocabulary, in a ``tf.function``: keras-hub 20.4 s for the first call and 1.7-2.1 s
once its word cache holds every word, kbert's whole ``tokenize`` (no cache) 0.34-0.38 s; and keras-hub's
regex emulation splits a trailing ``"  "`` in two tokens where Hugging Face keeps ``"ĠĠ"`` (1 text of
the 10,000). Here every step is integer work on flat tensors, and a piece's span of characters in
its word comes out of the byte lengths it merged.

Example:
    >>> import tensorflow as tf
    >>> from kbert.tokenizer.byte_level import bytes_to_unicode
    >>> vocab = {c: b for b, c in bytes_to_unicode().items()}  # id = byte value
    >>> vocab.update({"Ġl": 256, "ow": 257, "Ġlow": 258, "er": 259})
    >>> bpe = BytePairEncoder(vocab, [("Ġ", "l"), ("o", "w"), ("Ġl", "ow"), ("e", "r")])
    >>> ids, starts, ends = bpe(tf.constant([" lower", "é"]))
    >>> ids.to_list(), starts.to_list(), ends.to_list()
    ([[258, 259], [195, 169]], [[0, 4], [0, 0]], [[4, 6], [1, 1]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from kbert.errors import TokenizerError
from kbert.tokenizer import ragged
from kbert.tokenizer.byte_level import bytes_to_unicode
from kbert.tokenizer.tracing import TracedOnFirstUse

_NO_RANK = np.iinfo(np.int32).max
_BIG = 2**30


class BytePairEncoder(tf.Module):
    """BPE model over byte-level words (``tokenizers``' ``BPE`` with no prefix/suffix, no dropout).

    Args:
        vocab: token → id (``vocab.json``), tokens written with GPT-2's byte characters.
        merges: the merge rules in rank order (``merges.txt``); a repeated pair keeps its last rank, as
            in ``tokenizers``.
        unk_id: id given to a byte whose character is not in ``vocab``; None (RoBERTa's case) drops that
            byte, as ``tokenizers`` does when its BPE model has no ``unk_token``.
        fuse_unk: one unknown symbol for a run of unknown bytes.
        ignore_merges: a word that is a vocabulary token becomes that token without merges
            (``tokenizers``' ``ignore_merges``, used by Llama 3; RoBERTa: False).
    """

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]], *, unk_id: int | None = None,
                 fuse_unk: bool = False, ignore_merges: bool = False, name: str | None = None):
        super().__init__(name=name)
        if not vocab:
            raise TokenizerError("the BPE vocabulary is empty")
        self.size = max(vocab.values()) + 1
        byte_chars = bytes_to_unicode()
        byte_ids = np.asarray([vocab.get(byte_chars[b], -1) for b in range(256)], np.int32)
        self.missing_bytes = tuple(int(b) for b in np.flatnonzero(byte_ids < 0))
        self.unk_id = None if unk_id is None else int(unk_id)
        self.fuse_unk = bool(fuse_unk)
        self.ignore_merges = bool(ignore_merges)
        rank_of_pair: dict[int, tuple[int, int]] = {}
        for rank, (left, right) in enumerate(merges):
            ids = [vocab.get(t) for t in (left, right, left + right)]
            if None in ids:
                missing = [t for t, i in zip((left, right, left + right), ids) if i is None][0]
                raise TokenizerError(f"merge {rank + 1} ({left!r} {right!r}): token {missing!r} is not in the vocabulary")
            rank_of_pair[ids[0] * self.size + ids[1]] = (rank, ids[2])
        self.num_merges = len(rank_of_pair)
        keys = np.fromiter(rank_of_pair, np.int64, len(rank_of_pair))
        ranks = np.asarray([v[0] for v in rank_of_pair.values()], np.int32)
        merged = np.zeros(max(len(merges), 1), np.int32)
        merged[ranks] = [v[1] for v in rank_of_pair.values()]
        self._ranks = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys if len(keys) else np.zeros([0], np.int64)),
                                                tf.constant(ranks if len(ranks) else np.zeros([0], np.int32))),
            default_value=_NO_RANK)
        self._merged = tf.constant(merged)  # rank → id of the merged token
        self._byte_ids = tf.constant(byte_ids)
        # Length of each byte's character in the byte-level string (1 or 2 UTF-8 bytes): the unit in
        # which tokenizers counts a symbol's offsets, which matters once a byte has been dropped.
        self._byte_widths = tf.constant([len(byte_chars[b].encode("utf-8")) for b in range(256)], tf.int32)
        vector = tf.TensorSpec([None], tf.int32)
        self._traced_merge = TracedOnFirstUse(self._merge, [vector, vector, vector, tf.TensorSpec([], tf.int32)])
        if self.ignore_merges:
            self._whole = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(*_byte_strings(vocab)), default_value=-1)

    def __call__(self, words: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """``(ids, char_starts, char_ends)``, each ``(U, (p))``: the pieces of every word of ``words`` ``(U,)``
        (UTF-8 strings) and the span of characters of the word each piece covers.

        In a graph this is all ops, inlined in the caller's graph. Eagerly, the merge loop runs as a small
        traced function (:class:`~kbert.tokenizer.tracing.TracedOnFirstUse`) and the rest op by op: the
        loop is ~30 ops a step and ~20 steps on real text, whose eager dispatch cost more than tracing it
        (10,000 sentences through ``RobertaTokenizer.encode``, eager: first call 0.52 -> 0.43 s, later
        calls 0.27 -> 0.21 s), while tracing every op of the tokenizer costs ~0.6 s up front.
        """
        return self._encode(tf.convert_to_tensor(words, tf.string))

    def _encode(self, words: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        num_words = tf.shape(words)[0]
        split = tf.strings.bytes_split(words)  # (U, (b)) one-byte strings
        byte = tf.reshape(tf.cast(tf.io.decode_raw(split.flat_values, tf.uint8), tf.int32), [-1])  # (Nb,)
        byte_word = ragged.row_ids(split.row_splits)
        width = tf.gather(self._byte_widths, byte)

        # Character index of every byte within its word, repeated over the byte's width: the map from a
        # position in the byte-level string to the character it belongs to.
        lead = tf.cast(tf.not_equal(tf.bitwise.bitwise_and(byte, 0xC0), 0x80), tf.int32)
        count = tf.cumsum(lead)
        before_word = tf.gather(tf.concat([[0], count], axis=0), tf.cast(split.row_starts(), tf.int32))  # (U,)
        char_of_byte = count - 1 - tf.gather(before_word, byte_word)
        char_of_position = tf.repeat(char_of_byte, width)
        word_base = tf.cumsum(tf.math.unsorted_segment_sum(width, byte_word, num_words), exclusive=True)

        symbol, symbol_width, symbol_word = self._initial_symbols(words, byte, width, byte_word)
        merge = self._traced_merge if tf.executing_eagerly() else self._merge
        ids, widths, piece_word = merge(symbol, symbol_width, symbol_word, num_words)

        # Offsets as tokenizers counts them: the running sum of the pieces' widths within the word.
        running = tf.cumsum(widths, exclusive=True)
        splits = ragged.splits_of_sorted_rows(piece_word, num_words)
        pieces = tf.RaggedTensor.from_row_splits(ids, splits, validate=False)
        first_piece = tf.gather(tf.cast(splits, tf.int32), piece_word)
        begin = tf.gather(word_base, piece_word) + running - tf.gather(running, first_piece)
        char_start = tf.gather(char_of_position, begin)
        char_end = tf.gather(char_of_position, begin + widths - 1) + 1
        return pieces, pieces.with_flat_values(char_start), pieces.with_flat_values(char_end)

    def _initial_symbols(self, words, byte, width, byte_word):
        """One symbol per byte (dropped or unknown bytes handled as tokenizers does): id, width, word."""
        symbol = tf.gather(self._byte_ids, byte)
        if self.missing_bytes:
            known = symbol >= 0
            if self.unk_id is None:
                symbol, width, byte_word = (tf.boolean_mask(t, known) for t in (symbol, width, byte_word))
            else:
                symbol = tf.where(known, symbol, self.unk_id)
                if self.fuse_unk:  # a run of unknown bytes of one word is one symbol
                    previous_unknown = tf.concat([[False], ~known[:-1]], axis=0) & \
                        tf.equal(tf.concat([[-1], byte_word[:-1]], axis=0), byte_word)
                    opens = known | ~previous_unknown
                    run = tf.cumsum(tf.cast(opens, tf.int32)) - 1
                    width = tf.math.segment_sum(width, run)
                    symbol, byte_word = (tf.boolean_mask(t, opens) for t in (symbol, byte_word))
        if self.ignore_merges:  # a word that is a token is that token, whole
            whole = self._whole.lookup(words)
            direct = tf.gather(whole, byte_word) >= 0
            first = tf.concat([[True], tf.not_equal(byte_word[1:], byte_word[:-1])], axis=0)
            total = tf.math.unsorted_segment_sum(width, byte_word, tf.shape(words)[0])
            symbol = tf.where(direct, tf.gather(whole, byte_word), symbol)
            width = tf.where(direct, tf.gather(total, byte_word), width)
            keep = ~direct | first
            symbol, width, byte_word = (tf.boolean_mask(t, keep) for t in (symbol, width, byte_word))
        return symbol, width, byte_word

    def _merge(self, symbol, width, word, num_words):
        """The merge loop over flat symbols (``word``: the word of each, sorted); returns the final symbols
        ``(ids, widths, word)``, sorted by word."""
        size = tf.constant(self.size, tf.int64)

        def cond(symbol, *_):
            return tf.size(symbol) > 0

        def body(symbol, width, word, out, step):
            pair_word = word[:-1]
            key = tf.cast(symbol[:-1], tf.int64) * size + tf.cast(symbol[1:], tf.int64)
            rank = tf.where(tf.equal(pair_word, word[1:]), self._ranks.lookup(key), _NO_RANK)  # (S - 1,)
            best = tf.math.unsorted_segment_min(rank, pair_word, num_words)  # (U,); no pair: int32 max
            position = tf.range(tf.shape(rank)[0])
            is_best = tf.equal(rank, tf.gather(best, pair_word)) & (rank < _NO_RANK)
            leftmost = tf.math.unsorted_segment_min(tf.where(is_best, position, _BIG), pair_word, num_words)
            merge = tf.equal(position, tf.gather(leftmost, pair_word))  # (S - 1,) where a pair merges
            done = tf.equal(tf.gather(best, word), _NO_RANK)  # (S,) symbols of words that cannot merge
            out = out.write(step, tf.boolean_mask(tf.stack([word, symbol, width], axis=1), done))
            left = tf.concat([merge, [False]], axis=0)
            symbol = tf.where(left, tf.gather(self._merged, tf.concat([tf.where(merge, rank, 0), [0]], axis=0)), symbol)
            width = width + tf.where(left, tf.concat([width[1:], [0]], axis=0), 0)
            keep = tf.reshape(tf.where(~tf.concat([[False], merge], axis=0) & ~done), [-1])
            return tf.gather(symbol, keep), tf.gather(width, keep), tf.gather(word, keep), out, step + 1

        out = tf.TensorArray(tf.int32, size=1, dynamic_size=True, infer_shape=False,
                             element_shape=tf.TensorShape([None, 3])).write(0, tf.zeros([0, 3], tf.int32))
        vector = tf.TensorShape([None])
        *_, out, _ = tf.while_loop(cond, body, (symbol, width, word, out, tf.constant(1)),
                                   shape_invariants=(vector, vector, vector, tf.TensorShape(None), tf.TensorShape([])))
        out = out.concat()
        out = tf.gather(out, tf.argsort(out[:, 0], stable=True))
        return out[:, 1], out[:, 2], out[:, 0]


def _byte_strings(vocab: Mapping[str, int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Keys (the bytes each byte-level token stands for) and ids, for tokens that are byte-level."""
    from kbert.tokenizer.byte_level import token_bytes

    pairs = [(token_bytes(t), i) for t, i in vocab.items()]
    pairs = [(b, i) for b, i in pairs if b]
    return tf.constant([b for b, _ in pairs], tf.string), tf.constant([i for _, i in pairs], tf.int32)
