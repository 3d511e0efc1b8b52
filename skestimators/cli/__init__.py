"""The ``skestimators`` command line: score, train, info, demo.

A thin layer over the public API (:func:`skestimators.scoring.score`,
:func:`skestimators.save`, :func:`skestimators.recipes.exoplanet_pipeline`,
:func:`skestimators.model_selection.compare_variants`); nothing imports it.

Exit codes: 0 success; 1 error (one line says what; the output file is left
as it was; ``skestimators -vv <command>`` shows the traceback); 2 wrong usage;
3 ``score`` wrote the output but some rows could not be scored (NaN values,
unreadable images): they have null predictions and are listed in
``<OUT>.invalid.csv``, the first ones on stderr; 4 ``score`` or ``train`` did
not start because another run is writing the same output; 130 ``score`` or
``train`` was interrupted (Ctrl-C): the chunks scored so far are kept and the
same ``score`` command resumes (``train`` starts again).
"""

from ._common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_ROWS,
    EXIT_OUTPUT_LOCKED,
    EXOPLANET_VARIANTS,
    main,
)
from ._score import info, score  # registers the commands with main
from ._train import demo, train

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_INVALID_ROWS",
    "EXIT_OUTPUT_LOCKED",
    "EXOPLANET_VARIANTS",
    "demo",
    "info",
    "main",
    "score",
    "train",
]
