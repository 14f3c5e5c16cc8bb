"""``nas bench replay``: replay recorded curves as a sequential random search under a policy.

Protocol, implemented exactly:

* per task group and seed s = 0..seeds-1: the group's complete curves (length = the file's T,
  every value finite) in file order, run one at a time in the order
  ``numpy.random.default_rng(s).permutation(n)``; the other curves (a stopped or unfinished
  trial's, shorter than T; or one with a missing value) are dropped and counted in the
  document (``curves_used``, ``curves_dropped``, ``dropped_why``, also per group);
* after each epoch t < T the policy decides on the prefix ``y_1..y_t`` with a
  :class:`nas.policies.StudyCurves` that holds every earlier trial's values (up to where it
  stopped) and ``best_value`` = the best final value among completed trials (None before the
  first);
* a learning predictor is refit on the runner's schedule (:func:`nas.policies.should_refit`:
  after the 5th, 10th, 20th, 40th, ... completion) on the completed curves;
* per group: speedup = n*T / epochs consumed (a trial stopped after t epochs consumed t),
  regret = best final value in the group - best final value among completed trials; means over
  seeds, then over groups; ``worst_regret`` is the largest regret of any (group, seed) run.

Speed: forecasts are computed in batches (the early prefixes of the next trials in the seed's
order, then the rest of a trial's prefixes when it survives) and cached until the predictor is
refit; a predictor that does not learn from the study (``learns_from_curves = False``, e.g. a
pre-trained PFN) is never refit and its cache is shared by every seed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.curvefile import CurveSet
from nas.errors import ConfigError
from nas.interfaces import (
    Action,
    Curve,
    Decision,
    Forecast,
    LearningCurvePredictor,
    StoppingPolicy,
    TrialState,
    predictor_caps,
)
from nas.policies import (
    DEFAULT_AUDIT,
    StopAudit,
    StoppingSession,
    StudyCurves,
    false_stop_estimate,
    inclusion_from_reason,
    policy_caps,
)

__all__ = ["GroupRun", "add_trial", "file_stopping", "replay_group", "run_replay"]

Progress = Callable[[str, int, int], None]
_EARLY = 5  # prefixes 1.._EARLY are batched across upcoming trials


class _ForecastCache:
    """Forecasts of (curve index, prefix length) under one fitted predictor state."""

    def __init__(self, predictor: LearningCurvePredictor, curves: np.ndarray,
                 features: np.ndarray | None, group: str, block: int = 64) -> None:
        self.predictor = predictor
        self.curves = curves
        self.features = features
        self.group = group
        self.block = block
        self.T = curves.shape[1]
        self._rows: dict[tuple[int, int], tuple[Any, int]] = {}

    def clear(self) -> None:
        self._rows.clear()

    def _compute(self, items: list[tuple[int, int]]) -> None:
        batch = [Curve(self.curves[i, :t], None if self.features is None else self.features[i],
                       self.group) for i, t in items]
        fc = self.predictor.predict(batch, self.T)
        for r, key in enumerate(items):
            self._rows[key] = (fc, r)

    def get(self, i: int, t: int, upcoming: Sequence[int]) -> tuple[Any, int]:
        key = (i, t)
        if key not in self._rows:
            if t <= _EARLY:
                trials = [i] + [j for j in upcoming if (j, 1) not in self._rows][: self.block - 1]
                ts = range(1, min(_EARLY, self.T - 1) + 1)
                self._compute([(j, s) for j in trials for s in ts])
            else:
                self._compute([(i, s) for s in range(t, self.T)])
        return self._rows[key]


class _CachedPredictor:
    """What a policy sees as ``study.predictor`` during replay: answers the current trial's
    one-curve query from the cache (through the study's calibration maps when it has them),
    anything else from the real predictor."""

    def __init__(self, cache: _ForecastCache, cursor: _Cursor) -> None:
        self.cache = cache
        self.cursor = cursor
        self.name = getattr(cache.predictor, "name", type(cache.predictor).__name__)
        caps = predictor_caps(cache.predictor)
        self.learns_from_curves = caps["learns_from_curves"]

    def fit(self, curves: Sequence[Curve]) -> _CachedPredictor:
        self.cache.predictor = self.cache.predictor.fit(curves) or self.cache.predictor
        self.cache.clear()
        return self

    def predict(self, curves: Sequence[Curve], horizon: int) -> Forecast:
        cur = self.cursor.current
        if cur is not None and len(curves) == 1 and len(curves[0]) == cur[1] \
                and horizon == self.cache.T:
            fc, row = self.cache.get(cur[0], cur[1], self.cursor.upcoming)
            return fc.take([row]) if hasattr(fc, "take") else _Row(fc, row)  # type: ignore[no-any-return]
        return self.cache.predictor.predict(curves, horizon)


class _Row:
    """One row of a batched forecast that has no ``take`` (evaluates all rows, keeps one)."""

    def __init__(self, base: Forecast, row: int) -> None:
        self._base, self._row = base, row
        self._n = int(np.asarray(base.mean).shape[0])

    def _at(self, y: float | np.ndarray) -> np.ndarray:
        return np.full(self._n, float(np.asarray(y).reshape(-1)[0]))

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self._base.mean)[[self._row]]

    def quantile(self, q: float) -> np.ndarray:
        return np.asarray(self._base.quantile(q))[[self._row]]

    def cdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(self._base.cdf(self._at(y)))[[self._row]]

    def logpdf(self, y: float | np.ndarray) -> np.ndarray:
        return np.asarray(self._base.logpdf(self._at(y)))[[self._row]]


def add_trial(study: StudyCurves, values: np.ndarray, complete: bool) -> None:
    """Record the next finished trial of a replay in ``study`` (its values up to where it
    stopped; the final value counts for ``best_value`` when it ran to the end)."""
    number = len(study.curves)
    study.curves[number] = [float(v) for v in values]
    if complete:
        study.complete[number] = float(values[-1])


@dataclass
class GroupRun:
    """What one replay of one group did: epochs consumed, the best completed final, and the
    audit's record: per would-be stop (STOP or AUDIT), whether the trial's true final (known in
    a replay) beat the decision's threshold, and for the audited ones what the study saw."""

    consumed: int
    best: float
    stops: int = 0
    audited: int = 0
    audited_false: int = 0
    true_false: int = 0  # among all would-be stops, by the file's finals (unknowable live)
    audit_epochs: int = 0  # epochs the audited trials ran beyond their would-be stop
    #: per audited trial: whether its stop would have been wrong, and its weight 1/p
    outcomes: list[tuple[bool, float]] = field(default_factory=list)


class _Cursor:
    """Which (curve index, prefix length) the replay is asking about, and the trials to come:
    what every cache-backed predictor of one replay reads."""

    def __init__(self) -> None:
        self.current: tuple[int, int] | None = None
        self.upcoming: Any = ()


def replay_group(
    curves: np.ndarray,
    features: np.ndarray | None,
    group: str,
    policy: StoppingPolicy,
    order: np.ndarray,
    predictor: LearningCurvePredictor | None = None,
    cache: _ForecastCache | None = None,
    *,
    audit: StopAudit | None = None,
    calibrate: bool = False,
    new_predictor: Callable[[], LearningCurvePredictor] | None = None,
    explain: list[dict[str, Any]] | None = None,
) -> GroupRun:
    """Replay one group in ``order`` (see the module docstring) through one
    :class:`~nas.policies.StoppingSession`, as ``nas run`` would decide.

    ``predictor``: a fitted predictor that does not learn from the study (its forecasts are
    cached in ``cache``, shared across seeds); ``new_predictor``: builds a fresh predictor for
    each refit of a learning one.  ``explain``: receives one record per trial (its number in
    the order, its row in the group, stop step, the stop's forecast and its true final)."""
    T = curves.shape[1]
    cursor = _Cursor()
    if predictor is not None and cache is None and not predictor_caps(predictor)["learns_from_curves"]:
        cache = _ForecastCache(predictor, curves, features, group)

    live = new_predictor is not None and predictor_caps(new_predictor())["reads_study"]

    def proxy() -> LearningCurvePredictor:
        if live:
            assert new_predictor is not None
            return new_predictor()
        if new_predictor is not None:  # a learning predictor: fresh, with a fresh cache
            c = _ForecastCache(new_predictor(), curves, features, group)
        else:
            assert cache is not None
            c = cache
        return _CachedPredictor(c, cursor)  # type: ignore[return-value]

    caps = predictor_caps(predictor) if predictor is not None else {}
    if predictor is not None and new_predictor is None and caps["reads_study"] \
            and not caps["learns_from_curves"]:
        # its forecasts depend on the study so far: asked live, through the session, uncached
        fixed = predictor
        new_predictor, predictor, cache = (lambda: fixed), None, None
    elif predictor is not None and new_predictor is None and caps["learns_from_curves"]:
        template = predictor
        new_predictor, predictor, cache = (lambda: copy.deepcopy(template)), None, None
    needs = predictor is not None or new_predictor is not None
    session = StoppingSession(policy, horizon=T, new_predictor=proxy if needs else None,
                              audit=audit, calibrate=calibrate)
    run = GroupRun(0, 0.0)
    for pos, i in enumerate(order):
        i = int(i)
        row = curves[i]
        feat = None if features is None else features[i]
        cursor.upcoming = order[pos + 1:]
        stopped_at = T
        stop: Decision | None = None
        for t in range(1, T + 1):
            cursor.current = (i, t)
            d = session.report(pos, t, float(row[t - 1]), features=feat)
            if d.action == Action.CONTINUE:
                continue
            stop = d
            wrong = d.threshold is not None and float(row[-1]) > d.threshold
            run.stops += 1
            run.true_false += int(wrong)
            if d.action == Action.AUDIT:
                run.audited += 1
                run.audited_false += int(wrong)
                run.outcomes.append((wrong, 1.0 / (inclusion_from_reason(d.reason) or 1.0)))
                run.audit_epochs += T - t
                continue
            stopped_at = t
            break
        run.consumed += stopped_at
        if stopped_at < T:
            session.stopped(pos)
        else:
            session.complete(pos)
        if explain is not None:
            f = None if stop is None else stop.forecast
            explain.append({"trial": pos, "row": i, "stop_step": None if stop is None else
                            (stopped_at if stopped_at < T else None),
                            "action": TrialState.COMPLETE if stopped_at == T else Action.STOP,
                            "audited": stop is not None and stop.action == Action.AUDIT,
                            "forecast_mean": None if f is None else f.mean,
                            "threshold": None if stop is None else stop.threshold,
                            "final": float(row[-1]),
                            "reason": None if stop is None else stop.reason})
    best = session.mirror.best_value
    run.best = 0.0 if best is None else best
    return run


def _constant(p: LearningCurvePredictor) -> Callable[[], LearningCurvePredictor]:
    return lambda: p


def _factory(name: str, options: dict[str, Any]) -> Callable[[], LearningCurvePredictor]:
    from nas import registry

    return lambda: registry.create("predictor", name, options)  # type: ignore[no-any-return]


def run_replay(
    cs: CurveSet,
    policy: str | None = None,
    *,
    policy_options: Mapping[str, Any] | None = None,
    predictor: str | None = None,
    predictor_options: Mapping[str, Any] | None = None,
    seeds: int = 5,
    audit: float | None = None,
    calibrate: bool | None = None,
    progress: Progress | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    """Run the replay protocol and return the JSON document (see the module docstring).

    ``audit``: the stop audit's rate (default :data:`nas.policies.DEFAULT_AUDIT` for nas's own
    predictive policies, as in ``nas run``; the peers -- none, median, asha -- run without it,
    as their users run them; 0 turns it off).  ``explain``: add, per group and seed whose
    regret is not 0, the trial that decided the regret (``explain`` in the document).  ``calibrate``: recalibrate the predictor on
    the replayed study's own trials before the stop rule reads it (default off, as in
    ``nas run``: ``stopping.calibrate``).

    ``policy=None``: the settings of the file's ``stopping`` entry (what ``nas export`` writes
    from the study's ``[stopping]`` table: policy, predictor, options, audit, calibrate), each
    overridden by an argument given here (``policy_options`` key by key); the document names
    the settings taken from the file (``from_file``).  With a ``policy`` the file's settings
    are not used."""
    from nas import registry
    from nas.policies import check_rate, make_policy

    cs.require_unit_range()
    if seeds < 1:
        raise ConfigError(f"--seeds = {seeds}: must be >= 1")
    from_file: list[str] = []
    if policy is None:
        fs = file_stopping(cs)
        policy = fs["policy"]
        from_file.append("policy")
        if predictor is None and fs["predictor"] is not None:
            predictor = fs["predictor"]
            from_file.append("predictor")
        given = dict(policy_options or {})
        taken = {k: v for k, v in fs["options"].items() if k not in given}
        from_file += sorted(taken)
        policy_options = {**taken, **given}
        if audit is None and fs["audit"] is not None:
            audit = fs["audit"]
            from_file.append("audit")
        if calibrate is None:
            calibrate = fs["calibrate"]
            from_file.append("calibrate")
    assert policy is not None
    opts = dict(policy_options or {})
    pol = make_policy(policy, opts)
    needs_predictor = policy_caps(pol)["needs_predictor"]
    if needs_predictor and predictor is None:
        raise ConfigError(f"policy {policy!r} needs --predictor (e.g. baker)")
    if hasattr(pol, "summarise"):
        pol = make_policy(policy, {**opts, "summarise": False})  # same actions, fewer quantiles
    rate = check_rate((DEFAULT_AUDIT if needs_predictor else 0.0) if audit is None else audit,
                      "--audit", where="")
    if policy == "none":
        rate = 0.0
    cal = bool(calibrate) and needs_predictor
    T = cs.horizon
    groups = cs.groups()
    names = list(dict.fromkeys(groups.tolist()))
    full = cs.lengths == T
    finite = np.isfinite(cs.curves).all(axis=1)
    usable = full & finite
    counts: dict[str, dict[str, Any]] = {}
    for g in names:
        in_g = groups == g
        counts[g] = {"curves_used": int((in_g & usable).sum()),
                     "curves_dropped": int((in_g & ~usable).sum()),
                     "dropped_why": {"shorter_than_horizon": int((in_g & ~full).sum()),
                                     "not_finite": int((in_g & full & ~finite).sum())}}
    n_used = int(usable.sum())
    if n_used == 0:
        raise ConfigError(f"{cs.source}: no curve to replay: {_dropped_text(cs.n, 0, T, counts)}")
    per_group: dict[str, dict[str, Any]] = {}
    worst = 0.0
    jobs, job = sum(1 for g in names if counts[g]["curves_used"]) * seeds, 0
    totals = {"stops": 0, "audited": 0, "audited_false": 0, "true_false": 0,
              "audit_epochs": 0, "consumed": 0}
    outcomes: list[tuple[bool, float]] = []
    explained: list[dict[str, Any]] = []
    for g in names:
        idx = np.flatnonzero((groups == g) & usable)
        if idx.size == 0:
            continue
        curves = cs.curves[idx]
        feats = None if cs.config_features is None else cs.config_features[idx]
        best_all = float(curves[:, -1].max())
        shared = None
        fresh: Callable[[], LearningCurvePredictor] | None = None
        if needs_predictor:
            assert predictor is not None
            popts = dict(predictor_options or {})
            pred0 = registry.create("predictor", predictor, popts)
            caps = predictor_caps(pred0)
            if caps["reads_study"]:  # fitted once; its forecasts read the replayed study
                fresh = _constant(pred0)
            elif caps["learns_from_curves"]:  # a fresh one for every refit
                fresh = _factory(predictor, popts)
            else:  # forecasts do not depend on the study: one cache for every seed
                shared = _ForecastCache(pred0, curves, feats, g)
        speed, regret = [], []
        for s in range(seeds):
            order = np.random.default_rng(s).permutation(idx.shape[0])
            records: list[dict[str, Any]] | None = [] if explain else None
            run = replay_group(curves, feats, g, pol, order,
                               None if shared is None else shared.predictor, shared,
                               audit=StopAudit(rate, seed=s) if rate > 0 else None,
                               calibrate=cal, new_predictor=fresh, explain=records)
            speed.append(idx.shape[0] * T / run.consumed)
            regret.append(best_all - run.best)
            worst = max(worst, best_all - run.best)
            if records is not None and best_all - run.best > 0:
                lost = [r for r in records if r["action"] == Action.STOP and r["final"] > run.best]
                if lost:
                    top = max(lost, key=lambda r: r["final"])
                    explained.append({**top, "group": g, "seed": s,
                                      "regret": best_all - run.best,
                                      "row": int(idx[top["row"]])})  # the file's row
            for k in totals:
                totals[k] += int(getattr(run, k))
            outcomes.extend(run.outcomes)
            job += 1
            if progress is not None:
                progress(f"replay {g[:40]} seed {s}", job, jobs)
        per_group[g] = {"speedup": float(np.mean(speed)), "regret": float(np.mean(regret)),
                        **counts[g]}
    delta = getattr(pol, "delta", None)
    stops = totals["stops"]
    return {
        "policy": policy,
        "predictor": predictor if needs_predictor else None,
        "delta": delta,
        "epsilon": getattr(pol, "epsilon", None),
        "calibrated": cal,
        "audit": rate,
        "speedup": float(np.mean([v["speedup"] for v in per_group.values()])),
        "regret": float(np.mean([v["regret"] for v in per_group.values()])),
        "worst_regret": float(worst),
        "false_stops": {
            **false_stop_estimate(outcomes),
            # the audit's cost: epochs audited trials ran past their would-be stop, as a share
            # of all the epochs the replays consumed
            "audit_epochs": totals["audit_epochs"],
            "audit_cost": totals["audit_epochs"] / max(1, totals["consumed"]),
            "stops": stops,
            # known only in a replay: every would-be stop's true outcome
            "true_rate": (totals["true_false"] / stops) if stops else None,
        },
        "file": os.fspath(cs.source),
        "seeds": seeds,
        "options": {k: v for k, v in vars(pol).items() if not k.startswith("_") and k != "summarise"},
        # the settings taken from the file's ``stopping`` entry, and that entry
        "from_file": from_file,
        "file_stopping": cs.stopping,
        # a replay needs full curves: the others are dropped, and counted
        "horizon": T,
        "curves_used": n_used,
        "curves_dropped": cs.n - n_used,
        "dropped_why": {k: sum(c["dropped_why"][k] for c in counts.values())
                        for k in ("shorter_than_horizon", "not_finite")},
        "dropped_text": _dropped_text(cs.n, n_used, T, counts),
        "groups": per_group,
        # groups none of whose curves could be replayed (no speedup or regret)
        "groups_dropped": {g: c for g, c in counts.items() if not c["curves_used"]},
        **({"explain": explained} if explain else {}),
    }


def _dropped_text(n: int, used: int, T: int, counts: Mapping[str, Mapping[str, Any]]) -> str:
    """``used 11 of 32 curves; dropped 21 (a replay needs full curves): 21 shorter than the
    horizon 9 (stopped or unfinished)`` (and the groups with nothing to replay)."""
    short = sum(c["dropped_why"]["shorter_than_horizon"] for c in counts.values())
    bad = sum(c["dropped_why"]["not_finite"] for c in counts.values())
    text = f"used {used} of {n} curves"
    if n > used:
        why = []
        if short:
            why.append(f"{short} shorter than the horizon {T} (stopped or unfinished)")
        if bad:
            why.append(f"{bad} not finite (a missing value)")
        text += f"; dropped {n - used} (a replay needs full curves): {', '.join(why)}"
    empty = [g for g, c in counts.items() if not c["curves_used"]]
    if empty and len(counts) > 1:
        text += f"; groups with none to replay: {', '.join(empty)}"
    return text


def file_stopping(cs: CurveSet) -> dict[str, Any]:
    """The replay settings of the file's ``stopping`` entry (a study's ``[stopping]`` table as
    ``nas export`` writes it): ``policy``, ``predictor``, ``options`` (as ``nas run`` builds
    them: :func:`nas.plugins.stopping_options`), ``audit`` and ``calibrate``."""
    from nas.errors import CurveFileError
    from nas.plugins import stopping_options
    from nas.policies import DEFAULT_DELTA, DEFAULT_EPSILON

    st = cs.stopping
    if st is None:
        raise ConfigError(f"{cs.source}: the file carries no stopping settings (a `nas export "
                          "--format npz` of a study does): pass --policy, e.g. --policy asha")

    def get(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        v = st.get(key, default)
        if v is None and default is None:
            return None
        if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
            raise CurveFileError(f"{cs.source}: stopping.{key} is {v!r}, not a "
                                 f"{getattr(kind, '__name__', 'number')}")
        return v

    policy = get("policy", str, None)
    if policy is None:
        raise CurveFileError(f"{cs.source}: the file's stopping settings name no policy")
    options = get("options", dict, {})
    return {
        "policy": policy,
        "predictor": get("predictor", str, None),
        "options": stopping_options(policy, options,
                                    delta=get("delta", (int, float), DEFAULT_DELTA),
                                    min_epochs=get("min_epochs", int, 1),
                                    epsilon=get("epsilon", (int, float), DEFAULT_EPSILON)),
        "audit": get("audit", (int, float), None),
        "calibrate": get("calibrate", bool, False),
    }
