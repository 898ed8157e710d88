"""How a sentence-transformers folder embeds a text: what its ``modules.json`` and module configs say.

A sentence-transformers model is a Hugging Face encoder folder plus a few small JSON files:

* ``modules.json`` -- the module chain, e.g. Transformer -> Pooling (``1_Pooling/config.json``) -> Normalize;
* ``sentence_bert_config.json`` -- the Transformer's ``max_seq_length`` (truncation) and ``do_lower_case``;
* ``config_sentence_transformers.json`` -- ``prompts``, ``default_prompt_name`` and ``similarity_fn_name``.

:meth:`SentenceEmbeddingConfig.from_folder` reads them (no TensorFlow). A folder without ``modules.json``
(a plain Hugging Face checkpoint) gets what ``SentenceTransformer(folder)`` builds for it: **mean pooling
over the attention mask, no normalisation**, truncation at the tokenizer's maximum. Modules other than
Transformer, Pooling and Normalize (Dense, LayerNorm, ...) are refused rather than skipped.

Example:
    >>> import json, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "modules.json").write_text(json.dumps([
    ...     {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    ...     {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ...     {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    >>> (folder / "1_Pooling").mkdir()
    >>> _ = (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    >>> _ = (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256, "do_lower_case": false}')
    >>> config = SentenceEmbeddingConfig.from_folder(folder)
    >>> config.pooling, config.normalize, config.max_seq_length
    (('cls',), True, 256)
    >>> SentenceEmbeddingConfig.from_folder(tempfile.mkdtemp()).pooling   # a plain HF folder
    ('mean',)
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

from kbert.errors import CorruptCheckpointError, UnsupportedModelError

# sentence-transformers' Pooling modes; several are concatenated in the order the config gives them.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# The legacy boolean keys of 1_Pooling/config.json, in the order sentence-transformers concatenates them.
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


@dataclasses.dataclass(frozen=True)
class SentenceEmbeddingConfig:
    """What turns an encoder's hidden states into one sentence vector (defaults: a plain HF folder)."""

    pooling: tuple[str, ...] = ("mean",)  # Pooling modes, concatenated in this order
    normalize: bool = False  # a Normalize module follows the pooling (L2, as torch F.normalize)
    max_seq_length: int | None = None  # tokens per text, special tokens included; None: the tokenizer's maximum
    do_lower_case: bool = False  # sentence_bert_config.json: lower-case texts (prompt included) before tokenizing
    include_prompt: bool = True  # Pooling: whether prompt tokens count in the pooling
    prompts: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> text put before every input
    default_prompt_name: str | None = None  # the prompt used when a call names none
    similarity: str = "cosine"  # similarity_fn_name (sentence-transformers' default: cosine)
    embedding_dimension: int | None = None  # what 1_Pooling/config.json declares (checked against the model)
    source: str = "default"  # "modules.json" or "default" (no modules.json)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> "SentenceEmbeddingConfig":
        """Read ``folder``'s sentence-transformers files (see the module docstring)."""
        folder = pathlib.Path(folder)
        values: dict[str, Any] = {}
        modules_file = folder / "modules.json"
        if modules_file.is_file():
            values.update(_read_modules(folder, modules_file))
            values["source"] = "modules.json"
        bert_config = _read_json(folder / "sentence_bert_config.json", optional=True) or {}
        if bert_config.get("max_seq_length") is not None:
            length = bert_config["max_seq_length"]
            if not isinstance(length, int) or isinstance(length, bool) or length < 3:
                raise CorruptCheckpointError(f"{folder / 'sentence_bert_config.json'}: max_seq_length must be an "
                                             f"integer of at least 3, got {length!r}")
            values["max_seq_length"] = length
        values["do_lower_case"] = bool(bert_config.get("do_lower_case", False))
        st_config = _read_json(folder / "config_sentence_transformers.json", optional=True) or {}
        prompts = st_config.get("prompts") or {}
        where = folder / "config_sentence_transformers.json"
        if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
            raise CorruptCheckpointError(f"{where}: 'prompts' must map names to strings, got {prompts!r:.80}")
        values["prompts"] = dict(prompts)
        default = st_config.get("default_prompt_name")
        if default is not None and default not in prompts:
            raise CorruptCheckpointError(f"{where}: default_prompt_name {default!r} is not one of the prompts "
                                         f"{sorted(prompts)}")
        values["default_prompt_name"] = default
        values["similarity"] = st_config.get("similarity_fn_name") or "cosine"
        return cls(**values)

    def prompt_for(self, prompt_name: str | None = None, prompt: str | None = None) -> str | None:
        """The prompt a call uses, as ``SentenceTransformer.encode`` resolves it: ``prompt``, else the prompt
        named ``prompt_name``, else the default prompt (``None``: no prompt)."""
        if prompt is not None:
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise KeyError(prompt_name)
            return self.prompts[prompt_name]
        return self.prompts.get(self.default_prompt_name) if self.default_prompt_name is not None else None

    def save(self, folder: str | os.PathLike, dimension: int) -> list[str]:
        """Write the sentence-transformers files that make ``folder`` (an HF encoder folder) load as this model
        in ``SentenceTransformer(folder)`` and in :meth:`from_folder`; ``dimension`` is the encoder's hidden
        size. Returns the files written (relative names)."""
        from kbert.atomic_files import write_json

        folder = pathlib.Path(folder)
        modules = [("", "sentence_transformers.models.Transformer"), ("1_Pooling", "sentence_transformers.models.Pooling")]
        if self.normalize:
            modules.append(("2_Normalize", "sentence_transformers.models.Normalize"))
        (folder / "1_Pooling").mkdir(parents=True, exist_ok=True)
        if self.normalize:
            (folder / "2_Normalize").mkdir(exist_ok=True)
        # word_embedding_dimension and a str pooling_mode: what sentence-transformers 2.x to 5.x all read.
        pooling = {"word_embedding_dimension": dimension,
                   "pooling_mode": self.pooling[0] if len(self.pooling) == 1 else list(self.pooling),
                   "include_prompt": self.include_prompt}
        files = {
            "modules.json": [{"idx": i, "name": str(i), "path": path, "type": kind}
                             for i, (path, kind) in enumerate(modules)],
            "1_Pooling/config.json": pooling,
            "sentence_bert_config.json": {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case},
            "config_sentence_transformers.json": {"prompts": self.prompts, "default_prompt_name": self.default_prompt_name,
                                                  "similarity_fn_name": self.similarity},
        }
        for name, content in files.items():
            write_json(folder / name, content)
        return list(files)

    def describe(self) -> dict:
        """JSON-safe summary (recorded with exports and vector indexes)."""
        return {"pooling": list(self.pooling), "normalize": self.normalize, "max_seq_length": self.max_seq_length,
                "do_lower_case": self.do_lower_case, "similarity": self.similarity, "source": self.source}


def _read_json(path: pathlib.Path, optional: bool = False) -> Any:
    if optional and not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CorruptCheckpointError(f"{path}: cannot read ({err.strerror or err})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptCheckpointError(f"{path}: not valid JSON ({err})") from None


def _read_modules(folder: pathlib.Path, modules_file: pathlib.Path) -> dict[str, Any]:
    modules = _read_json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules):
        raise CorruptCheckpointError(f"{modules_file}: expected a list of modules with a 'type' each")
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    unsupported = [m["type"] for m, kind in zip(modules, kinds) if kind not in SUPPORTED_MODULES]
    if unsupported:
        raise UnsupportedModelError(f"{modules_file}: module {unsupported[0]} is not supported (kbert runs "
                                    f"{' -> '.join(SUPPORTED_MODULES)} only)")
    if not kinds or kinds[0] != "Transformer" or kinds.count("Transformer") != 1:
        raise UnsupportedModelError(f"{modules_file}: the first and only encoder module must be a Transformer, "
                                    f"got {kinds}")
    if (modules[0].get("path") or "") not in ("", "."):
        raise UnsupportedModelError(f"{modules_file}: the Transformer is in the sub-folder {modules[0]['path']!r}; "
                                    f"kbert reads the encoder from {folder} itself")
    if kinds.count("Pooling") != 1 or kinds.index("Pooling") != 1:
        raise UnsupportedModelError(f"{modules_file}: expected one Pooling module right after the Transformer, "
                                    f"got {kinds}")
    if "Normalize" in kinds and kinds.index("Normalize") != len(kinds) - 1:
        raise UnsupportedModelError(f"{modules_file}: Normalize must be the last module, got {kinds}")
    values: dict[str, Any] = {"normalize": "Normalize" in kinds}
    values.update(_read_pooling(folder / (modules[1].get("path") or "") / "config.json"))
    return values


def _read_pooling(path: pathlib.Path) -> dict[str, Any]:
    """``1_Pooling/config.json``: the new ``pooling_mode`` (a name or a list) or the legacy booleans."""
    if not path.is_file():
        raise CorruptCheckpointError(f"{path}: missing (modules.json names a Pooling module there)")
    config = _read_json(path)
    if not isinstance(config, dict):
        raise CorruptCheckpointError(f"{path}: expected a JSON object")
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(name for key, name in LEGACY_POOLING_KEYS.items() if config.get(key, False)) or ("mean",)
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode) if isinstance(mode, list) else None
    if not modes or not all(isinstance(m, str) and m in POOLING_MODES for m in modes):
        raise UnsupportedModelError(f"{path}: pooling_mode {mode!r} is not one of {list(POOLING_MODES)}")
    dimension = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    return {"pooling": modes, "include_prompt": bool(config.get("include_prompt", True)),
            "embedding_dimension": dimension if isinstance(dimension, int) else None}
