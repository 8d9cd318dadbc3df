"""The reading half of each paper artefact (no torch): its claims with their
judging policy, its figure, reference table and report text. Importing a
module registers its analyses, in the order of the paper (the report and
--list follow it); the runs are :mod:`aninfonce.studies`, one module per
artefact of the same name."""

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
