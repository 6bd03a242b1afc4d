"""The training job: the jitted step and ``fit`` (:mod:`.train`), safetensors checkpoints
(:mod:`.checkpoint`) and the run's figures (:mod:`.plots`); the ``jcnn`` command (:mod:`jcnn.cli`) and
the data sets (:mod:`jcnn.data`) drive it.

``jcnn.train`` and ``jcnn.checkpoint`` (the contract's names) are these modules.
"""

from jcnn.training import checkpoint, train

__all__ = ["checkpoint", "train"]
