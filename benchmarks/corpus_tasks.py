"""Task variants used only to record the early-stopping corpus (``benchmarks/corpus/d_*.toml``).

``lorenz96_loss``: the built-in ``lorenz96`` task with its *validation MSE* as the objective,
minimised, instead of the skill over persistence.  A study's first objective must be the one
the task reports, so family (d) names this class as its task (``task.name =
"benchmarks.corpus_tasks:Lorenz96Loss"``) to record a minimised loss curve.  The trainer
reports ``metrics[spec.objective]`` and then ``metrics["val_loss"] = MSE``, so the recorded
value is the MSE on the standardised states.  ``benchmarks/record_corpus.py`` maps it to
[0, 1], higher better, per group when it joins the exports.
"""

from __future__ import annotations

import dataclasses

from nas.interfaces import TaskSpec
from nas.tasks import Lorenz96Task

__all__ = ["Lorenz96Loss"]


class Lorenz96Loss(Lorenz96Task):
    """``lorenz96`` with objective ``val_loss`` (MSE on standardised states), minimised."""

    name = "lorenz96"

    def spec(self) -> TaskSpec:
        # range: a constant forecast of the (standardised) mean has MSE ~1; 4 covers diverging
        # starts; only a stopping policy would read it (the corpus records with policy "none")
        return dataclasses.replace(super().spec(), objective="val_loss", direction="minimize",
                                   objective_range=(0.0, 4.0))
