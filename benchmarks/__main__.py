"""`python -m benchmarks`: run the benchmark suite (see benchmarks/README.md)."""

import sys

from benchmarks.suite import main

sys.exit(main())
