"""`python -m polyhead` (and `accelerate launch -m polyhead ...`) runs the command line."""

import sys

from .cli import main

sys.exit(main())
