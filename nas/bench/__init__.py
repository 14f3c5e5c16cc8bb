"""Benchmarks: predictor quality (``run_predict``) and stopping policies (``run_replay``).

Both implement the protocols of issue 5 exactly (see their modules) and back the commands
``nas bench predict`` and ``nas bench replay``; they take a loaded :class:`nas.curvefile.CurveSet`
and return the JSON document as a dict.  (``nas.bench.overhead`` belongs to the runner.)
"""

from nas.bench._documents import check_predict_document, check_replay_document
from nas.bench._predict import LOGLIK_BIN, binned_loglik, cutoff_length, run_predict
from nas.bench._race_report import (
                                    plot_races,
                                    race_markdown,
                                    race_overview_markdown,
                                    race_tables,
                                    resummarize,
                                    summarize_by_direction,
                                    summarize_races,
)
from nas.bench._replay import add_trial, replay_group, run_replay

__all__ = [
           "LOGLIK_BIN",
           "add_trial",
           "binned_loglik",
           "check_predict_document",
           "check_replay_document",
           "cutoff_length",
           "plot_races",
           "race_markdown",
           "race_overview_markdown",
           "race_tables",
           "replay_group",
           "resummarize",
           "run_predict",
           "run_replay",
           "summarize_by_direction",
           "summarize_races",
]
