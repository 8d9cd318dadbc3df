"""The producing half of each paper artefact: its grid of runs per profile,
the trainer of one run (module level, so it pickles), its cost and data
check. Importing a module registers its studies, in the order of the paper;
each reads the science it sweeps from the analysis of the same name
(:mod:`aninfonce.analyses`), never the other way round. No study imports torch
until a run executes (:mod:`.trainers`)."""

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
