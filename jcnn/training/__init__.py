"""The training job: the jitted step (:mod:`.step`) and ``fit``, the epoch loop (:mod:`.fit`), both
re-exported by :mod:`.train`; safetensors checkpoints (:mod:`.checkpoint`) and the run's figures
(:mod:`.plots`). The ``jcnn`` command (:mod:`jcnn.cli`) and the data sets (:mod:`jcnn.data`) drive it.

``jcnn.train`` and ``jcnn.checkpoint`` (the contract's names) are :mod:`.train` and :mod:`.checkpoint`.
"""

from jcnn.training import checkpoint, train

__all__ = ["checkpoint", "train"]
