"""Stopping policies: decide CONTINUE or STOP after every epoch of a trial.

Used alike by the runner's Ray scheduler adapter and by ``nas bench replay``.  Each is a plain
object built from validated keyword options (entry-point group ``nas.policies``):

- ``none`` (:class:`NoStopping`),
- ``median`` (:class:`MedianPolicy`, Optuna's MedianPruner),
- ``asha`` (:class:`ASHAPolicy`, Ray Tune's asynchronous successive halving),
- ``predictive`` (:class:`PredictivePolicy`, P(y_T > y_best) < delta with the study's predictor).

:func:`should_refit` is the refit schedule of learning predictors, :func:`make_policy` builds one.
"""

from nas.policies._audit import DEFAULT_AUDIT, StopAudit, false_stop_summary, wilson_interval
from nas.policies._predictive import DEFAULT_DELTA, DEFAULT_EPSILON, PredictivePolicy
from nas.policies._rank import ASHAPolicy, MedianPolicy, NoStopping
from nas.policies._regret import RegretPolicy
from nas.policies._schedule import REFIT_FIRST, make_policy, should_refit
from nas.policies._view import StudyCurves

__all__ = [
    "DEFAULT_AUDIT",
    "DEFAULT_DELTA",
    "DEFAULT_EPSILON",
    "REFIT_FIRST",
    "ASHAPolicy",
    "MedianPolicy",
    "NoStopping",
    "PredictivePolicy",
    "RegretPolicy",
    "StopAudit",
    "StudyCurves",
    "false_stop_summary",
    "make_policy",
    "should_refit",
    "wilson_interval",
]
