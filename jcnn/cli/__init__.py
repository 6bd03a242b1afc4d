"""The ``jcnn`` command: ``jcnn train``, ``predict``, ``export``, ``inspect``, ``summary`` and ``verify``.

``jcnn train`` trains a zoo model on a data set (the digits that ship with scikit-learn by default, no
download, or a folder of your own images with ``--dataset folder``) and writes into ``--out``:
``checkpoint.safetensors``, ``metrics.json``, ``metrics.csv`` and the PNG figures ``curves.png``,
``filters.png``, ``feature_maps.png``, ``confusion_matrix.png``. ``jcnn predict`` classifies image files
with a run's checkpoint; ``jcnn export`` writes the run as a ``jax.export`` artifact for serving.

Results go to stdout (train: one line per epoch and the final line; predict: the classes; export: what
was written), progress and logs to stderr; ``--quiet`` keeps only results, warnings and errors. Exit
status: see :data:`jcnn.cli.common.EXIT_STATUS` (bad input gives one line on stderr, no traceback; set
``JCNN_DEBUG=1`` to see one).

The modules: :mod:`.app` (the parser, :func:`main`, ``jcnn summary``), :mod:`.common` (what the
commands share), :mod:`.train_options` and :mod:`.train` (``jcnn train``), :mod:`.serve` (``predict``,
``export``, ``inspect``); ``jcnn verify`` is :mod:`jcnn.interop.verify`.
"""

from jcnn.cli.app import build_parser, main, run_summary
from jcnn.cli.common import EXIT_STATUS, CLIError

__all__ = ["CLIError", "EXIT_STATUS", "build_parser", "main", "run_summary"]
