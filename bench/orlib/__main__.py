"""`python -m bench.orlib`: see `bench.orlib.cli`."""

import sys

from bench.orlib.cli import main

sys.exit(main())
