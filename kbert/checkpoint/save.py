"""Save a Keras task model as a Hugging Face checkpoint folder that ``transformers`` loads unchanged.

Writes ``config.json`` (the family's keys; ``architectures``, ``id2label``/``label2id``, ``problem_type``, plus
a ``kbert`` section), ``model.safetensors`` with Hugging Face tensor names (family-prefixed encoder, task
head), and the tokenizer files of the checkpoint the model started from. Names and layouts come from the
family's weight slots (``family.backbone_slots``), the same that loading uses.

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
from kbert.checkpoint.safetensors_io import write_safetensors


def find_backbone(model):
    """The backbone (a keras-hub ``Backbone``) inside a task model."""
    from keras_hub.models import Backbone

    for layer in model.layers:
        if isinstance(layer, Backbone):
            return layer
    raise ValueError(f"model {model.name!r} contains no backbone")


def model_slots(task, model) -> list:
    """Every variable of a task model (backbone and head) with its canonical Hugging Face name."""
    return task.checkpoint.family.backbone_slots(find_backbone(model)) + task.head_slots(model)


def save_hf_checkpoint(task, model, output: str | os.PathLike, *, text_pair: bool = False,
                       kbert_info: dict | None = None) -> pathlib.Path:
    """Write ``model`` (built by ``task.build_model()``) to ``output`` as a Hugging Face checkpoint."""
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    family = task.checkpoint.family
    tensors = {family.checkpoint_name(s.hf_name): np.ascontiguousarray(s.to_hf(np.asarray(s.variable)))
               for s in model_slots(task, model)}
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
