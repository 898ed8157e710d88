"""Encoder families, one package each (``kbert.models.<family>``): everything specific to a Hugging Face family.

The registry below is the one place that lists them; a family's package is imported the first time a
checkpoint of that ``model_type`` is read. See :mod:`kbert.models.family` for the contract a package fulfils.

Example:
    >>> from kbert.models import family_of, supported_model_types
    >>> family_of("roberta").weight_prefix, "distilbert" in supported_model_types()
    ('roberta.', True)
"""

from __future__ import annotations

import importlib

from kbert.errors import UnsupportedModelError

FAMILY_PACKAGES = {  # config.json model_type -> the package whose FAMILY reads it
    "bert": "kbert.models.bert",
    "roberta": "kbert.models.roberta",
    "distilbert": "kbert.models.distilbert",
    "electra": "kbert.models.electra",
    "mpnet": "kbert.models.mpnet",
    "xlm-roberta": "kbert.models.xlm_roberta",
    "albert": "kbert.models.albert",
    "deberta-v2": "kbert.models.deberta_v2",
    "modernbert": "kbert.models.modernbert",
}


def supported_model_types() -> tuple[str, ...]:
    return tuple(FAMILY_PACKAGES)


def family_of(model_type: str, source: str = "config.json"):
    """The :class:`~kbert.models.family.Family` of a ``config.json`` ``model_type``."""
    package = FAMILY_PACKAGES.get(model_type)
    if package is None:
        raise UnsupportedModelError(f"{source}: model_type {model_type!r} is not supported; kbert loads "
                                    f"{list(FAMILY_PACKAGES)}")
    return importlib.import_module(package).FAMILY
