"""The built-in tasks (entry-point group ``nas.tasks``); all are generated from a seed, offline.

==========================  ==================================================  =============
name                        what                                                objective
==========================  ==================================================  =============
``parity``                  XOR of N random bits, read one per step             val_accuracy
``delayed_match``           delayed match-to-sample with a random delay         val_accuracy
``copy``                    copy a sequence of symbols after a delimiter        val_accuracy
``associative_recall``      recall the value stored under a query key           val_accuracy
``regular_language``        in-context learning of a random DFA per sequence    val_accuracy
``lorenz96``                forecast the Lorenz-96 ODE (RK4) ``lead`` steps     val_skill
``digits``                  scikit-learn's bundled 8x8 digits, row by row       val_accuracy
``hmm``                     next emission of a seeded random HMM (Bayes limit)  val_accuracy
==========================  ==================================================  =============

A study file names a task and its options (``[task] name = "parity"``, ``[task.options]
bits = 8``); the engine constructs ``cls(**options)``, which validates them.  See
``docs/tasks.md`` for every option.  ``nas.testing.check_task`` checks any task, built-in or not.
"""

from __future__ import annotations

from nas.tasks._algorithmic import AssociativeRecallTask, CopyTask, DelayedMatchTask, ParityTask
from nas.tasks._base import BaseTask
from nas.tasks._digits import DigitsTask
from nas.tasks._hmm import HMMTask
from nas.tasks._lorenz import Lorenz96Task
from nas.tasks._regular import RegularLanguageTask

__all__ = [
    "BUILTIN_TASKS",
    "AssociativeRecallTask",
    "BaseTask",
    "CopyTask",
    "DelayedMatchTask",
    "DigitsTask",
    "HMMTask",
    "Lorenz96Task",
    "ParityTask",
    "RegularLanguageTask",
]

BUILTIN_TASKS = {
    "parity": ParityTask,
    "delayed_match": DelayedMatchTask,
    "copy": CopyTask,
    "associative_recall": AssociativeRecallTask,
    "regular_language": RegularLanguageTask,
    "lorenz96": Lorenz96Task,
    "digits": DigitsTask,
    "hmm": HMMTask,
}
