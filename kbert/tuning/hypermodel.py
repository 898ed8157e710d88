"""kbert's training run as a ``keras_tuner.HyperModel``: every trial is a ``kbert.train`` run whose
hyperparameters the tuner picks.

``build(hp)`` declares the search space's hyperparameters, makes the trial's
:class:`~kbert.training.config.TrainConfig` (the base config with the picked values) and returns the task
model compiled with kbert's AdamW and schedule (:class:`~kbert.training.trainer.TrainingRun`);
``fit(hp, model, ...)`` trains it on the trial's batches with kbert's evaluation callback first, so the
tuner's own callbacks (the oracle's reports, the best epoch's weights) see the task's ``val_*`` metrics.
The checkpoint is read once, and the data is read and validated once per batch size, for all trials.

Under Hyperband, ``fit`` gets the bracket's ``epochs`` and ``initial_epoch`` from the tuner and a trial
that continues an earlier one starts from that trial's best weights (Keras Tuner loads them); the
learning-rate schedule spans ``schedule_epochs`` (Hyperband's ``max_epochs``) and restarts with each
continued trial (a new optimizer).

Example:
    >>> import keras_tuner, tempfile
    >>> from kbert.training.config import TrainConfig
    >>> from kbert.tuning.hypermodel import KbertHyperModel
    >>> from kbert.tuning.search_space import SearchSpace
    >>> config = TrainConfig(train="kbert/data/demo/sentiment_train.tsv", eval="kbert/data/demo/sentiment_test.tsv",
    ...                      output=tempfile.mkdtemp(), model="tests/fixtures/checkpoints/tiny-uncased-qa",
    ...                      epochs=1, verbose=0)
    >>> hypermodel = KbertHyperModel(config, SearchSpace.from_table({"learning_rate": [1e-4, 1e-3]}))
    >>> hp = keras_tuner.HyperParameters()
    >>> model = hypermodel.build(hp)
    >>> history = hypermodel.fit(hp, model)
    >>> hypermodel.objective.name, "val_macro_f1" in history.history
    ('val_macro_f1', True)
"""

from __future__ import annotations

import keras
import keras_tuner

from kbert.errors import TuningError
from kbert.training.config import TrainConfig
from kbert.training.strategy import make_strategy
from kbert.training.trainer import TrainingRun
from kbert.tuning.search_space import SearchSpace


class KbertHyperModel(keras_tuner.HyperModel):
    """A search over ``space`` around the base ``config`` (which must have ``eval`` data: the objective).

    Args:
        config: the base run; ``output`` is unused (trials live in the tuner's project folder).
        space: the hyperparameters to search.
        schedule_epochs: epochs the learning-rate schedule spans (default: the trial's ``epochs``).
    """

    def __init__(self, config: TrainConfig, space: SearchSpace, *, schedule_epochs: int | None = None):
        super().__init__(name="kbert")
        self.config, self.space, self.schedule_epochs = config, space, schedule_epochs
        if config.eval is None:
            raise TuningError("a search needs evaluation data (eval / --eval): its metric is the objective")
        base = TrainingRun(config)  # reads and checks all data once, before any trial
        self.checkpoint = base.checkpoint
        self._prepared = {config.batch_size: base.prepared}  # batch size -> PreparedTraining (batches depend on it)
        self.run: TrainingRun | None = None  # the latest trial's run (its task, model and batches)
        self.objective = keras_tuner.Objective(base.monitor, base.monitor_mode)

    def trial_config(self, hp) -> TrainConfig:
        """The base config with the values ``hp`` picks (declaring them on first use)."""
        return self.config.replace(**self.space.declare(hp))

    def build(self, hp) -> keras.Model:
        config = self.trial_config(hp)
        self.run = TrainingRun(config, checkpoint=self.checkpoint, prepared=self._prepared.get(config.batch_size))
        self._prepared[config.batch_size] = self.run.prepared
        self.run.build(make_strategy(config.strategy, config.tpu), schedule_epochs=self.schedule_epochs)
        return self.run.trainable

    def fit(self, hp, model, *args, callbacks=(), epochs: int | None = None, initial_epoch: int = 0, **kwargs):
        """Train ``model`` (built by :meth:`build` for ``hp``) and return its Keras ``History``."""
        run = self.run
        if run is None or model is not run.trainable:
            raise RuntimeError("KbertHyperModel.fit() takes the model its build() returned last")
        return model.fit(run.plan.train.dataset, epochs=epochs or run.config.epochs, initial_epoch=initial_epoch,
                         callbacks=run.scoring_callbacks() + list(callbacks),
                         verbose=kwargs.get("verbose", run.config.verbose), shuffle=False)
