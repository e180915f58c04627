"""``python -m rnnx``: the ``rnnx`` command (see :mod:`rnnx.cli`)."""

import sys

from .cli import main

sys.exit(main())
