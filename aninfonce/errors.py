"""Errors a user can act on. The CLI prints their message on one line and
exits 2; every other exception is a bug and keeps its traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, missing or damaged data, a diverged run: the message says what to do."""


class BadInput(UserError, ValueError):
    """An option or setting that cannot work (unknown device, preset, ...)."""
