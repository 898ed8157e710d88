"""kbert's error hierarchy.

Every error a user can cause by bad input is a :class:`KbertError`, raised where the input enters
(a file, a CLI flag, a pipeline call, a serving request) with a message that names what was received
and where. Callers catch ``KbertError`` to handle all of them; the CLI turns it into a one-line
message and a non-zero exit code instead of a traceback.

Example:
    >>> from kbert.errors import KbertError, CheckpointNotFoundError
    >>> try:
    ...     raise CheckpointNotFoundError("/nowhere: no such file or directory")
    ... except KbertError as err:
    ...     print(err)
    /nowhere: no such file or directory
"""


class KbertError(Exception):
    """Base class of every error kbert raises on purpose."""


# --- checkpoints ---------------------------------------------------------------------------------
class CheckpointError(KbertError):
    """A model checkpoint could not be used."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A model folder or one of its required files does not exist."""


class NotAnEncoderCheckpointError(CheckpointError):
    """A folder exists but its ``config.json`` is not one of a Hugging Face encoder checkpoint."""


NotABertCheckpointError = NotAnEncoderCheckpointError  # the name before kbert loaded other families


class UnsupportedModelError(CheckpointError):
    """The checkpoint's ``model_type`` or a config value is one kbert does not support."""


class CorruptCheckpointError(CheckpointError):
    """A weights file is truncated, malformed or inconsistent with ``config.json``."""


class UnsafeCheckpointError(CorruptCheckpointError):
    """A pickle (``pytorch_model.bin``) asked to run code that a plain tensor file never needs."""


# --- tokenizer and inputs ------------------------------------------------------------------------
class TokenizerError(KbertError):
    """The tokenizer files are missing or invalid, or tokenizer options contradict each other."""


class InputError(KbertError, ValueError):
    """Inputs given to a pipeline, the CLI or a serving signature are of the wrong type or shape."""


class UnknownTaskError(KbertError, ValueError):
    """A task name that no kbert task is registered under."""


# --- training data and training -----------------------------------------------------------------
class DataError(KbertError, ValueError):
    """A training / evaluation data source is missing, malformed or inconsistent (names file and line)."""


class TrainingError(KbertError):
    """A training run cannot start or continue (bad options, output folder conflicts, head mismatch)."""


class TuningError(TrainingError):
    """A hyperparameter search cannot start: a bad search space, tuner name or option (names what was given)."""


class UnsupportedPrecisionError(InputError):
    """An inference ``precision`` this machine cannot run natively (bfloat16 without avx512_bf16 / AMX or a GPU)."""


# --- export --------------------------------------------------------------------------------------
class ExportError(KbertError):
    """A SavedModel could not be written."""


# --- serving -------------------------------------------------------------------------------------
class ServingError(KbertError):
    """Talking to a model server (TF Serving) or writing its configuration failed."""


class ServingConfigError(ServingError, ValueError):
    """A model base folder, model name or batching setting of a TF Serving configuration is unusable."""


class ServingConnectionError(ServingError, ConnectionError):
    """The model server could not be reached or did not answer in time (names the address)."""


class ServingResponseError(ServingError):
    """The model server answered with an error: ``status`` is the HTTP status or gRPC code name, the
    message is the server's."""

    def __init__(self, message: str, status: str | int | None = None):
        super().__init__(message)
        self.status = status


# --- warnings ------------------------------------------------------------------------------------
class DataWarning(UserWarning):
    """Suspicious but usable data (a label that occurs once, likely a typo); names file and line."""
