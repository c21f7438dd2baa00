"""``python -m peftlab`` is the ``peftlab`` command."""

import sys

from peftlab.tools.cli import main

sys.exit(main())
