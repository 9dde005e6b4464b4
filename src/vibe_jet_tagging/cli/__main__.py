"""``python -m vibe_jet_tagging.cli``: the same as ``vjt``."""

import sys

from . import main

sys.exit(main())
