#!/usr/bin/env python
"""Reproduce Rusak et al. (AISTATS 2025). See README.md, or run with --help."""

import sys

if __name__ == "__main__":
    # imported here, not above: a pool worker re-imports this file at its start, and must reach its
    # initializer (which binds it to this process) before the slow imports (aninfonce.lifecycle)
    from aninfonce.cli import main

    sys.exit(main())
