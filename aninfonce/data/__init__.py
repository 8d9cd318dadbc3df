"""Datasets: where they are looked for, and the one message a user sees when
one is missing. The data root is --data-root, else $ANINFONCE_DATA, else
~/.cache/aninfonce/data (:func:`data_root`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError

DATA_ENV = "ANINFONCE_DATA"


def data_root(arg: Path | None = None) -> Path:
    """Where datasets are looked for: ``arg`` (--data-root), else
    $ANINFONCE_DATA, else ~/.cache/aninfonce/data."""
    if arg is not None:
        return Path(arg)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path.home() / ".cache" / "aninfonce" / "data"


class DatasetMissing(UserError, FileNotFoundError):
    """Raised with one sentence naming the folder searched and how to fix it."""

    def __init__(self, name: str, searched: Path, how: str = ""):
        self._init_args = (name, searched, how)
        hint = how or ("download it there (the run does this itself where the internet is reachable), "
                       "or point --data-root / $ANINFONCE_DATA at a folder that holds it")
        super().__init__(f"{name} not found in {searched}: {hint}")

    def __reduce__(self):
        # rebuilt from its own arguments, so it crosses a process boundary (pool workers) intact
        return (type(self), self._init_args)
