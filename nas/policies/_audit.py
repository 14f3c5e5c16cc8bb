"""The stop audit: a random share of the stops a policy decides are not carried out.

With probability ``rate`` a trial that the policy would stop runs on to its horizon instead
(its decision is stored with action ``AUDIT``).  Its final value then shows whether the stop
would have been wrong: a *false stop* is an audited trial whose final beat the value the policy
said it would not beat (``Decision.threshold``: the study's best + epsilon at that moment; for
policies without a threshold, the study's best).  Because audited trials are a uniform random
sample of the stops, the share of false stops among them is an unbiased estimate of the policy's
false-stop rate, reported with a Wilson 95% interval (:func:`false_stop_summary`), and the
audited trials give the calibration (:mod:`nas.calibration`) data that does not come only from
the survivors: each one stands for ``1 / rate`` stopped trials.

Who calls it: the runner (``nas run``) and ``nas bench replay``, after the policy's decision;
the policy itself keeps no state.  The random draw is a function of the study seed and the trial
number, so a resumed or replayed study audits the same trials.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from nas._checks import Checker
from nas.interfaces import AUDIT, Decision, Direction, TrialState

__all__ = ["DEFAULT_AUDIT", "AuditedStop", "StopAudit", "audit_false_stops", "audit_verdict",
           "audit_verdicts", "false_stop_estimate", "false_stop_summary", "false_stop_text",
           "inclusion_from_reason", "wilson_interval"]

#: Default audit budget: the audit may spend at most this share of the epochs the study has
#: consumed (audited trials run on from the would-be stop to the horizon).  5% keeps its cost a
#: small part of what stopping saves and still audits several stops per hundred.
DEFAULT_AUDIT = 0.05

#: The largest inclusion probability of one stop (so that late, cheap stops do not take the
#: whole budget and every audited trial stands for at least two would-be stops).
MAX_INCLUSION = 0.5

#: The hard cap's slack, in horizons: audited epochs never exceed rate x consumed + this many
#: horizons.  A tighter cap refuses more early (costly, often wrong) stops outright, which
#: biases the estimate; three horizons keep that bias below half a point in our checks.
CAP_SLACK = 3

_P_IN_REASON = re.compile(r"^audit \(p ([0-9.eE+-]+)\)")


def check_rate(rate: Any, key: str = "audit", where: str = "stop audit") -> float:
    """The audit rate, a number in [0, 1)."""
    return Checker(where).num(rate, key, lo=0.0, hi=1.0, hi_open=True)


def inclusion_from_reason(reason: str | None) -> float | None:
    """The inclusion probability an ``AUDIT`` decision's reason records (None: not recorded)."""
    m = _P_IN_REASON.match(reason or "")
    return float(m.group(1)) if m else None


class StopAudit:
    """Turns some STOP decisions into AUDIT decisions, within an epoch budget.

    A would-be stop at step t of a trial with horizon T costs ``T - t`` epochs if audited.  It
    is audited with probability ``p = min(MAX_INCLUSION, rate * e / (T - t))``, where ``e`` is
    the epochs the study consumed per trial so far: each would-be stop then costs ``rate * e``
    audited epochs in expectation, and since a study has no more stops than trials, the
    expected audited epochs stay below ``rate`` times the epochs the study consumed.  A hard cap refuses an audit that
    would take the audited epochs beyond ``rate`` x consumed + :data:`CAP_SLACK` horizons.  Each audited trial
    stands for ``1 / p`` would-be stops (its inclusion probability is kept in its decision's
    reason), so the weighted share of false stops among the audited ones estimates the policy's
    false-stop rate without bias from the unequal probabilities (:func:`false_stop_estimate`).

    Without a ``horizon`` every stop is audited with probability ``rate`` (no budget).  The
    random draw is a function of the seed and the trial number only.
    """

    def __init__(self, rate: float = DEFAULT_AUDIT, seed: int = 0, *,
                 horizon: int | None = None) -> None:
        self.rate = check_rate(rate)
        self.seed = int(seed)
        self.horizon = horizon
        self.consumed = 0  # epochs the study has consumed (every report)
        self.trials = 0  # trials the study has started
        self.stops = 0  # would-be stops reviewed
        self.spent = 0  # epochs promised to audited trials (horizon - stop step each)

    def __repr__(self) -> str:
        return f"StopAudit(rate={self.rate:g}, seed={self.seed}, horizon={self.horizon})"

    def u(self, trial_number: int) -> float:
        return float(np.random.default_rng([self.seed, 0x5A1D17, int(trial_number)]).random())

    def draw(self, trial_number: int) -> bool:
        """Whether trial ``trial_number``'s stop is audited at probability ``rate``."""
        return self.rate > 0.0 and self.u(trial_number) < self.rate

    def probability(self, step: int) -> float:
        """The inclusion probability of a would-be stop at ``step`` now."""
        if self.rate <= 0.0:
            return 0.0
        if self.horizon is None:
            return self.rate
        cost = self.horizon - step
        if cost <= 0:
            return 0.0
        if self.spent + cost > self.rate * self.consumed + CAP_SLACK * self.horizon:
            return 0.0  # the hard cap
        per_trial = self.consumed / max(1, self.trials, self.stops)
        return min(MAX_INCLUSION, self.rate * per_trial / cost)

    def review(self, decision: Decision, trial_number: int, step: int | None = None) -> Decision:
        """The decision to carry out: ``decision`` itself, or its AUDIT twin."""
        if not decision.stop:
            return decision
        self.stops += 1
        p = self.probability(step if step is not None else 0)
        if p <= 0.0 or self.u(trial_number) >= p:
            return decision
        if self.horizon is not None and step is not None:
            self.spent += self.horizon - step
        return replace(decision, action=AUDIT,
                       reason=f"audit (p {p:.4g}): runs on to its horizon instead of stopping "
                              f"({decision.reason})")


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n (95% for z = 1.96)."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def false_stop_summary(audited: int, false_stops: int, pending: int = 0) -> dict[str, Any]:
    """The JSON block of a study's measured false-stop rate."""
    lo, hi = wilson_interval(false_stops, audited)
    return {"audited": audited, "false_stops": false_stops, "pending": pending,
            "rate": (false_stops / audited) if audited else None,
            "ci95": [lo, hi] if audited else None}


def false_stop_estimate(outcomes: Sequence[tuple[bool, float]], pending: int = 0,
                        ) -> dict[str, Any]:
    """The false-stop rate from audited trials of unequal inclusion probability p: each
    ``(wrong, 1/p)`` pair weighs 1/p (a Hajek ratio), and the 95% Wilson interval uses Kish's
    effective sample size.  Equal weights give :func:`false_stop_summary`'s numbers."""
    n = len(outcomes)
    k = sum(1 for wrong, _ in outcomes if wrong)
    if n == 0:
        return false_stop_summary(0, 0, pending)
    w = np.array([wt for _, wt in outcomes], dtype=np.float64)
    bad = np.array([wrong for wrong, _ in outcomes], dtype=np.float64)
    rate = float((w * bad).sum() / w.sum())
    n_eff = float(w.sum() ** 2 / (w * w).sum())
    lo, hi = wilson_interval(round(rate * n_eff), max(1, round(n_eff)))
    lo, hi = min(lo, rate), max(hi, rate)
    return {"audited": n, "false_stops": k, "pending": pending, "rate": rate,
            "ci95": [lo, hi], "effective_n": n_eff}


def false_stop_text(fs: dict[str, Any], *, short: bool = False) -> str:
    """The study's measured false-stop rate for people: ``2/31 (6.5%, 95% CI 1.8-21%)``."""
    if not fs["audited"]:
        pending = f" ({fs['pending']} pending)" if fs["pending"] else ""
        return "-" + pending if short else f"stop audit: no audited trial finished yet{pending}"
    lo, hi = fs["ci95"]
    body = (f"{fs['false_stops']}/{fs['audited']} ({100 * fs['rate']:.1f}%, 95% CI "
            f"{100 * lo:.1f}-{100 * hi:.1f}%)")
    return body if short else f"false stops {body} of the audited stops"


class AuditedStop(Protocol):
    """An ``AUDIT`` decision as stored, with its trial's outcome (``nas.storage.AuditRecord``):
    what the audit's verdict is made of.  ``value`` and ``threshold`` are None where missing."""

    @property
    def number(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def direction(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


def audit_verdict(a: AuditedStop) -> str:
    """``"false stop"`` (complete, and the final value beat the decision's threshold: stopping
    would have lost it), ``"right stop"`` (complete, it did not), ``"pending"`` (still
    running) or ``"lost"`` (failed or interrupted before its final value, or unreadable)."""
    if a.state == TrialState.RUNNING:
        return "pending"
    if a.state != TrialState.COMPLETE or a.value is None or a.threshold is None:
        return "lost"
    beat = a.value < a.threshold if a.direction == Direction.MINIMIZE else a.value > a.threshold
    return "false stop" if beat else "right stop"


def audit_verdicts(audited: Iterable[AuditedStop]) -> dict[int, tuple[int, str]]:
    """The audited trials by number: the step of the (first) ``AUDIT`` decision and its
    :func:`audit_verdict`.  ``audited`` is in trial number and step order."""
    out: dict[int, tuple[int, str]] = {}
    for a in audited:
        if a.number not in out:
            out[a.number] = (a.step, audit_verdict(a))
    return out


def audit_false_stops(audited: Sequence[AuditedStop]) -> dict[str, Any]:
    """A study's measured false-stop rate: among the audited trials that finished, the share
    whose stop would have been wrong, each weighted by 1/p with p its inclusion probability
    (recorded in its AUDIT decision's reason; older studies: equal weights), with a 95%
    Wilson interval (:func:`false_stop_estimate`)."""
    p = {a.number: inclusion_from_reason(a.reason) for a in audited}
    got = audit_verdicts(audited)
    done = [(outcome == "false stop", 1.0 / (p.get(n) or 1.0))
            for n, (_, outcome) in got.items() if outcome in ("false stop", "right stop")]
    pending = sum(1 for _, outcome in got.values() if outcome == "pending")
    return false_stop_estimate(done, pending)
