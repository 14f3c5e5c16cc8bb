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
from dataclasses import replace
from typing import Any

import numpy as np

from nas._checks import Checker
from nas.interfaces import AUDIT, Decision

__all__ = ["DEFAULT_AUDIT", "StopAudit", "false_stop_summary", "false_stop_text", "wilson_interval"]

#: Default audit rate.  It costs about rate x (horizon - stop step) epochs per stop: 5% keeps the
#: cost of a study below a tenth of what early stopping saves, and after 100 stops it has about 5
#: audited trials, enough to see a false-stop rate far above the rule's delta.
DEFAULT_AUDIT = 0.05


def check_rate(rate: Any, key: str = "audit", where: str = "stop audit") -> float:
    """The audit rate, a number in [0, 1)."""
    return Checker(where).num(rate, key, lo=0.0, hi=1.0, hi_open=True)


class StopAudit:
    """Turns a share ``rate`` of STOP decisions into AUDIT decisions (see the module docstring)."""

    def __init__(self, rate: float = DEFAULT_AUDIT, seed: int = 0) -> None:
        self.rate = check_rate(rate)
        self.seed = int(seed)

    def __repr__(self) -> str:
        return f"StopAudit(rate={self.rate:g}, seed={self.seed})"

    def draw(self, trial_number: int) -> bool:
        """Whether trial ``trial_number``'s first stop is audited (deterministic per seed)."""
        if self.rate <= 0.0:
            return False
        u = np.random.default_rng([self.seed, 0x5A1D17, int(trial_number)]).random()
        return bool(u < self.rate)

    def review(self, decision: Decision, trial_number: int) -> Decision:
        """The decision to carry out: ``decision`` itself, or its AUDIT twin."""
        if not decision.stop or not self.draw(trial_number):
            return decision
        return replace(decision, action=AUDIT,
                       reason=f"audit: runs on to its horizon instead of stopping ({decision.reason})")


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


def false_stop_text(fs: dict[str, Any], *, short: bool = False) -> str:
    """The study's measured false-stop rate for people: ``2/31 (6.5%, 95% CI 1.8-21%)``."""
    if not fs["audited"]:
        pending = f" ({fs['pending']} pending)" if fs["pending"] else ""
        return "-" + pending if short else f"stop audit: no audited trial finished yet{pending}"
    lo, hi = fs["ci95"]
    body = (f"{fs['false_stops']}/{fs['audited']} ({100 * fs['rate']:.1f}%, 95% CI "
            f"{100 * lo:.1f}-{100 * hi:.1f}%)")
    return body if short else f"false stops {body} of the audited stops"
