"""Benchmarks: predictor quality (``run_predict``), stopping policies (``run_replay``), the race
of ``nas bench race`` (``run_race``) and the simulated driver load of
``nas bench overhead --simulated-trials`` (``run_simulated``).

``run_predict`` and ``run_replay`` implement the protocols described in their modules and back
the commands ``nas bench predict`` and ``nas bench replay``; they take a loaded
:class:`nas.curvefile.CurveSet` and return the JSON document as a dict.  (``nas.bench.overhead``
belongs to the runner.)
"""

from nas.bench._documents import check_predict_document, check_replay_document
from nas.bench._predict import LOGLIK_BIN, binned_loglik, cutoff_length, run_predict
from nas.bench._race import (
    DEFAULT_ENTRANTS,
    ENTRANTS,
    check_race_options,
    race_direction,
    run_race,
)
from nas.bench._race_report import (
    plot_races,
    race_markdown,
    race_overview_markdown,
    race_tables,
    resummarize,
    summarize_by_direction,
)
from nas.bench._replay import add_trial, file_stopping, replay_group, run_replay
from nas.bench._simulate import run_simulated

__all__ = [
    "DEFAULT_ENTRANTS",
    "ENTRANTS",
    "LOGLIK_BIN",
    "add_trial",
    "binned_loglik",
    "check_predict_document",
    "check_race_options",
    "check_replay_document",
    "cutoff_length",
    "file_stopping",
    "plot_races",
    "race_direction",
    "race_markdown",
    "race_overview_markdown",
    "race_tables",
    "replay_group",
    "resummarize",
    "run_predict",
    "run_race",
    "run_replay",
    "run_simulated",
    "summarize_by_direction",
]
