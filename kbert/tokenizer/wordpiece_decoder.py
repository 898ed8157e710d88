"""The ``tokenizers`` WordPiece decoder: what a BERT fast tokenizer's ``convert_tokens_to_string`` returns.

Pure Python (no TensorFlow): token classification joins the tokens of an entity with it.

Example:
    >>> from kbert.tokenizer.wordpiece_decoder import wordpiece_decode
    >>> wordpiece_decode(["##s", "San", "Fran", "##cisco", "'", "s", "."])
    "##s San Francisco ' s."
"""

from __future__ import annotations

from collections.abc import Sequence

DECODER_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                   (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def wordpiece_decode(tokens: Sequence[str], prefix: str = "##", cleanup: bool = True) -> str:
    """Tokens joined by spaces, ``prefix`` pieces glued to the one before, then the decoder's clean-up."""
    pieces = []
    for i, token in enumerate(tokens):
        if i:
            token = token.replace(prefix, "", 1) if token.startswith(prefix) else " " + token
        if cleanup:
            for dirty, clean in DECODER_CLEANUP:
                token = token.replace(dirty, clean)
        pieces.append(token)
    return "".join(pieces)
