"""`python -m inference_ledger.cli`: the `ledger` command."""

import sys

from inference_ledger.cli import main

sys.exit(main())
