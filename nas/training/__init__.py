"""The worker's training: build a configuration, train it epoch by epoch, report each epoch.

Modules: :mod:`~nas.training._options` (:class:`TrainingOptions`, :class:`HyperParams` and the
names they accept), :mod:`~nas.training._schedules` (curriculum and pruning schedules),
:mod:`~nas.training._pruning`, :mod:`~nas.training._metrics` (loss, objective,
:func:`evaluate`) and :mod:`~nas.training._loop` (:func:`train`, :func:`train_final`).
Everything is imported from ``nas.training``; torch is imported only when training starts.

Who calls what, when:

* :func:`train` runs inside a Ray worker (the runner's trainable) for one trial; it is the
  default :class:`nas.interfaces.Trainer` (``training.trainer`` names another).  It builds
  ``space.build(config, task.spec())``, trains for at most ``options.max_epochs`` epochs and,
  after every epoch, evaluates on the validation split and calls
  ``report(epoch, {objective: value, "train_loss": ..., "val_loss": ..., "params": ...})``.
  If ``report`` returns ``True`` the loop stops at once (the stopping policy said STOP).
  A trial that is at fault -- a NaN/inf loss or objective, or its time limit -- raises
  :class:`TrialFailed`; anything else that escapes is a bug in a plug-in or in nas.
* :func:`train_final` is what ``nas evaluate`` calls: retrain a chosen configuration on
  train + validation and score it once on the test split (:func:`evaluate_test`).
  :func:`evaluate` scores a model on any split (also used by ``nas.testing``).

Training keys read from ``config`` (written by the space's ``sample``; defaults when absent):

==================  ===========================================  =================
key                 meaning                                      default
==================  ===========================================  =================
``optimizer``       ``adam`` | ``adamw`` | ``sgd`` (momentum 0.9)   ``adam``
                    | ``rmsprop``
``lr``              learning rate (> 0)                          ``1e-3``
``weight_decay``    L2 / decoupled weight decay (>= 0)           ``0``
``grad_clip``       max global gradient norm; 0/None = off       ``None``
``curriculum``      ``none`` | ``easy_to_hard`` | ``cyclical``   ``none``
``prune_sparsity``  target fraction of zero weights, in [0, 1)   ``0``
``dropout``         read by the *model* (the space applies it)   --
==================  ===========================================  =================

Curricula.  The fraction of the training set used in an epoch follows a schedule: with
``easy_to_hard`` it grows linearly from 25 % to 100 % over the first half of the epochs,
taking examples in order of the training dataset's ``difficulty`` attribute when it has one
(the built-in tasks expose e.g. the delay of delayed-match or the number of DFA states) and
in a fixed random order otherwise; with ``cyclical`` it follows a triangle wave between 25 %
and 100 % with a period of 4 epochs (random order), so it grows and shrinks in cycles.

Pruning.  Global magnitude pruning of the model's ``prunable_parameters()`` when it has that
method, else of every parameter with two or more dimensions, ramped
with the cubic schedule of Zhu & Gupta (2017), s_e = s_f (1 - (1 - e/E_r)^3), over the first
half of the epochs (E_r); masks are recomputed after each epoch and re-applied after every
optimiser step, so pruned weights stay zero.

Model contract.  ``model(x)`` with ``x`` of shape (B, T, input_size) returns (B, output_size)
for ``output_mode == "last"`` (a (B, T, output_size) output is accepted too and its last step
used) and (B, T, output_size) for ``"sequence"``.  Sequence targets equal to -100 are ignored
(loss and accuracy).  If the model has an ``aux_loss`` attribute holding a tensor after the
forward pass (e.g. the ponder cost of adaptive computation time), it is added to the loss.

Bayes limit.  A dataset with a ``bayes_accuracy`` attribute (the built-in ``hmm`` task) adds
the extra metric ``val_bayes_accuracy`` after every epoch (``test_bayes_accuracy`` on the test
split): the accuracy of the Bayes-optimal predictor on that split, for comparison.

Objective.  ``cross_entropy`` tasks score accuracy; ``mse`` tasks score the skill
``max(0, 1 - MSE / reference_mse)`` where ``reference_mse`` is an attribute of the evaluated
dataset (the built-in ``lorenz96`` task uses the persistence forecast), else ``-MSE``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.training._loop import (
    FinalResult,
    Report,
    TrialFailed,
    resolve_device,
    train,
    train_final,
)
from nas.training._loop import _make_optimizer as make_optimizer
from nas.training._metrics import IGNORE_INDEX, compute_loss, evaluate, evaluate_test
from nas.training._metrics import _objective_of as objective_of
from nas.training._metrics import _tensors as tensors_of
from nas.training._options import (
    CURRICULA,
    DEFAULT_TRAINER,
    DEVICES,
    MAX_EPOCHS,
    OPTIMIZERS,
    HyperParams,
    TrainingKeys,
    TrainingOptions,
)
from nas.training._schedules import curriculum_fraction, prune_schedule

if TYPE_CHECKING:
    from nas.interfaces import Trainer

    _DEFAULT: Trainer = train  # the default trainer keeps the Trainer protocol (mypy checks)

__all__ = [
    "CURRICULA",
    "DEFAULT_TRAINER",
    "DEVICES",
    "IGNORE_INDEX",
    "MAX_EPOCHS",
    "OPTIMIZERS",
    "FinalResult",
    "HyperParams",
    "Report",
    "TrainingKeys",
    "TrainingOptions",
    "TrialFailed",
    "compute_loss",
    "curriculum_fraction",
    "evaluate",
    "evaluate_test",
    "make_optimizer",
    "objective_of",
    "prune_schedule",
    "resolve_device",
    "tensors_of",
    "train",
    "train_final",
]
