"""Save a Keras task model as a Hugging Face checkpoint folder that ``transformers`` loads unchanged.

Writes ``config.json`` (``architectures``, ``id2label``/``label2id``, ``problem_type``, plus a ``kbert``
section), ``model.safetensors`` with Hugging Face tensor names (``bert.``-prefixed encoder, task head),
and the tokenizer files of the checkpoint the model started from. Names and layouts come from the one
table in :mod:`kbert.checkpoint.hf_names`, the same that loading uses.

Example:
    >>> import tempfile
    >>> from kbert.checkpoint import load_checkpoint
    >>> from kbert.checkpoint.save import save_hf_checkpoint
    >>> from kbert.tasks import get_task
    >>> task = get_task("text-classification")(load_checkpoint("tests/fixtures/checkpoints/tiny-uncased-cls"))
    >>> folder = save_hf_checkpoint(task, task.build_model(), tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())[:3]
    ['config.json', 'model.safetensors', 'special_tokens_map.json']
"""

from __future__ import annotations

import os
import pathlib
import shutil

import numpy as np

from kbert.atomic_files import write_json
from kbert.checkpoint.hf_names import backbone_slots, hf_checkpoint_name
from kbert.checkpoint.safetensors_io import write_safetensors
from kbert.modeling.backbone import BertBackbone


def find_backbone(model) -> BertBackbone:
    """The BertBackbone inside a task model."""
    for layer in model.layers:
        if isinstance(layer, BertBackbone):
            return layer
    raise ValueError(f"model {model.name!r} contains no BertBackbone")


def save_hf_checkpoint(task, model, output: str | os.PathLike, *, text_pair: bool = False,
                       kbert_info: dict | None = None) -> pathlib.Path:
    """Write ``model`` (built by ``task.build_model()``) to ``output`` as a Hugging Face checkpoint."""
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    backbone = find_backbone(model)
    slots = backbone_slots(backbone) + task.head_slots(model)
    family = task.config.family
    tensors = {hf_checkpoint_name(s, family.weight_prefix): np.ascontiguousarray(s.to_hf(np.asarray(s.variable)))
               for s in slots}
    write_safetensors(output / "model.safetensors", tensors, metadata={"format": "pt"})

    config = task.config.replace(
        id2label=dict(task.id2label), problem_type=task.problem_type or (_problem_type(task) if task.id2label else None),
        architectures=(task.checkpoint.architecture(task.hf_head),)).to_dict()
    config["kbert"] = {"task": task.name, "text_pair": bool(text_pair), **(kbert_info or {})}
    write_json(output / "config.json", config)
    task.write_extra_files(output)
    source = task.checkpoint.path
    for name in family.tokenizer_files:
        if (source / name).is_file() and (source / name).resolve() != (output / name).resolve():
            shutil.copyfile(source / name, output / name)
    return output


def _problem_type(task) -> str:
    return "single_label_classification" if task.num_labels > 1 else "regression"
