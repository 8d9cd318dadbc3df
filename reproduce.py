#!/usr/bin/env python
"""Reproduce Rusak et al. (AISTATS 2025). See README.md, or run with --help."""

import sys

from aninfonce.cli import main

if __name__ == "__main__":
    sys.exit(main())
