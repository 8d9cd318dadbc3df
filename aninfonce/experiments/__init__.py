"""One module per paper artefact; importing a module registers its entries,
in the order of the paper (the report and --list follow it)."""

# isort: off
from . import fig2  # noqa: F401
from . import authors  # noqa: F401
from . import calibration  # noqa: F401
from . import fig3  # noqa: F401
from . import fig4  # noqa: F401
from . import fig5  # noqa: F401
from . import hardneg  # noqa: F401
from . import ensemble  # noqa: F401
from . import tables  # noqa: F401
# isort: on
