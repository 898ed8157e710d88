"""What every reader produces: one raw example, with where it came from for error messages.

Example:
    >>> from kbert.data.examples import RawExample
    >>> RawExample("great movie", label="positive", where="train.tsv:2")
    RawExample(text='great movie', text_pair=None, label='positive', where='train.tsv:2')
"""

from __future__ import annotations

import dataclasses
from typing import Union

# A label as read: a class name (str), a regression target (float), a list of class names
# (several labels per text), or None for unlabelled data.
RawLabel = Union[str, float, tuple[str, ...], None]


@dataclasses.dataclass(frozen=True)
class RawExample:
    """One example before label encoding and tokenization.

    ``where`` names the source for error messages: ``"path/train.csv:17"`` (1-based line numbers
    as a text editor shows them), ``"tfds:glue/sst2[train]#12"`` or ``"list[3]"``.
    """

    text: str
    text_pair: str | None = None
    label: RawLabel = None
    where: str = ""
