"""``python -m jcnn``: the ``jcnn`` command (see :mod:`jcnn.cli`)."""

import sys

from jcnn.cli import main

sys.exit(main())
