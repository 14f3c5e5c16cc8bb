"""Stopping policies: decide CONTINUE or STOP after every epoch of a trial.

Used alike by the runner's Ray scheduler adapter and by ``nas bench replay``.  Each is a plain
object built from validated keyword options (entry-point group ``nas.policies``):

- ``none`` (:class:`NoStopping`),
- ``median`` (:class:`MedianPolicy`, Optuna's MedianPruner),
- ``asha`` (:class:`ASHAPolicy`, Ray Tune's asynchronous successive halving),
- ``predictive`` (:class:`PredictivePolicy`, P(y_T > y_best) < delta with the study's predictor).

:class:`StoppingSession` is the one per-epoch stopping step that the engine, the Optuna and
Tune integrations, the replay benchmark and the race all drive.  :func:`should_refit` is the
refit schedule of learning predictors, :func:`make_policy` builds one.
"""

from nas.policies._audit import (
    DEFAULT_AUDIT,
    AuditedStop,
    StopAudit,
    audit_false_stops,
    audit_verdict,
    audit_verdicts,
    check_rate,
    false_stop_estimate,
    false_stop_summary,
    false_stop_text,
    inclusion_from_reason,
    wilson_interval,
)
from nas.policies._predictive import DEFAULT_DELTA, DEFAULT_EPSILON, PredictivePolicy
from nas.policies._rank import ASHAPolicy, MedianPolicy, NoStopping
from nas.policies._regret import RegretPolicy
from nas.policies._schedule import REFIT_FIRST, make_policy, should_refit
from nas.policies._session import (
    InlineRefits,
    Refits,
    StoppingSession,
    ThreadRefits,
    policy_caps,
)
from nas.policies._view import StudyCurves, forecast

__all__ = [
    "DEFAULT_AUDIT",
    "DEFAULT_DELTA",
    "DEFAULT_EPSILON",
    "REFIT_FIRST",
    "ASHAPolicy",
    "AuditedStop",
    "InlineRefits",
    "MedianPolicy",
    "NoStopping",
    "PredictivePolicy",
    "Refits",
    "RegretPolicy",
    "StopAudit",
    "StoppingSession",
    "StudyCurves",
    "ThreadRefits",
    "audit_false_stops",
    "audit_verdict",
    "audit_verdicts",
    "check_rate",
    "false_stop_estimate",
    "false_stop_summary",
    "false_stop_text",
    "forecast",
    "inclusion_from_reason",
    "make_policy",
    "policy_caps",
    "should_refit",
    "wilson_interval",
]
