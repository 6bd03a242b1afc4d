"""Training (the contract's ``jcnn.train``): a ``TrainState`` pytree, one jitted pure step, evaluation
(:mod:`jcnn.training.step`) and ``fit``, the epoch loop with early stopping, resuming and the run's
files (:mod:`jcnn.training.fit`). Their public names are re-exported here.
"""

from jcnn.training.fit import (
    CHECKPOINT_NAME,
    METRICS_FILES,
    EarlyStopping,
    FitResult,
    fit,
    write_metrics,
)
from jcnn.training.step import (
    LossFn,
    TrainState,
    evaluate,
    init_train_state,
    make_eval_step,
    make_train_step,
    predict,
)

__all__ = [
    "CHECKPOINT_NAME",
    "METRICS_FILES",
    "EarlyStopping",
    "FitResult",
    "LossFn",
    "TrainState",
    "evaluate",
    "fit",
    "init_train_state",
    "make_eval_step",
    "make_train_step",
    "predict",
    "write_metrics",
]
