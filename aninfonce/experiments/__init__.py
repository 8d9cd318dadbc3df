"""One module per paper artefact; importing a module registers its entries."""

from . import fig2  # noqa: F401
