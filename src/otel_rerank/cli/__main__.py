"""``python -m otel_rerank.cli``."""

import sys

from otel_rerank.cli import main

sys.exit(main())
