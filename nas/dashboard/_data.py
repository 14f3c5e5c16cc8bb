"""What the dashboard's pages and JSON endpoints show, computed from a :class:`Storage`.

Pure functions of the storage (no web framework here) so that they are easy to test.  Every
value is JSON-ready: datetimes as ISO strings, non-finite floats as None.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import threading
from typing import Any, cast

from nas._format import layer_params, short_config
from nas.dashboard import _queries as q
from nas.interfaces import Direction, TrialState, better
from nas.policies import false_stop_text
from nas.storage import UNREADABLE, Storage, StudyRecord

__all__ = [
    "best_so_far",
    "compare_curves",
    "importances",
    "studies_table",
    "study_summary",
    "trial_view",
]

log = logging.getLogger(__name__)

#: Trials drawn per state colour (stopped vs completed differ; the JS uses the same names).
COLORS = {TrialState.COMPLETE: "#1f77b4", TrialState.STOPPED: "#ff7f0e",
          TrialState.FAILED: "#d62728", TrialState.RUNNING: "#2ca02c",
          TrialState.INTERRUPTED: "#7f7f7f"}


def iso(v: Any) -> str | None:
    """A time as text; a stored value that is not a time is shown as ``unreadable``."""
    if v is None:
        return None
    if not isinstance(v, _dt.datetime):
        return UNREADABLE
    return v.replace(microsecond=0).isoformat(sep=" ")


def num(v: Any) -> float | None:
    """A finite float, else None (missing, non-finite, or a stored value that is not a number:
    plots skip it)."""
    if v is None or isinstance(v, (str, bytes)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def cell(v: Any) -> float | str | None:
    """A number for a table cell: like :func:`num`, but a stored value that is not a number
    shows as ``unreadable``."""
    return UNREADABLE if isinstance(v, (str, bytes)) else num(v)


def unreadable(rec: Any, name: str, value: Any) -> Any:
    """``value``, or ``unreadable`` when the record could not read its column ``name``."""
    return UNREADABLE if name in getattr(rec, "unreadable", ()) else value


def config_summary(cfg: Any, width: int = 120) -> str:
    """The leaderboard's one-line config; ``unreadable`` when it is not an object."""
    return short_config(cfg, width=width) if isinstance(cfg, dict) else UNREADABLE


def _max_epochs(study: StudyRecord) -> int | None:
    training = study.config.get("training") if isinstance(study.config, dict) else None
    m = training.get("max_epochs") if isinstance(training, dict) else None
    return int(m) if isinstance(m, (int, float)) and m > 0 else None


# ---------------------------------------------------------------------------- studies page
def studies_table(st: Storage) -> list[dict[str, Any]]:
    activity = q.study_activity(st)
    rows = []
    for s in st.study_summaries():
        rec: StudyRecord = s["study"]
        states = s["states"]
        fs = st.false_stops(rec.id)
        rows.append({
            "id": rec.id, "name": rec.name, "space": rec.space, "task": rec.task,
            "direction": unreadable(rec, "objectives", rec.direction), "status": rec.status,
            "trials": sum(states.values()), "states": states, "best_value": cell(s["best_value"]),
            "false_stops": fs, "false_stop_text": false_stop_text(fs, short=True),
            "created": unreadable(rec, "created", iso(rec.created)),
            "last_activity": iso(activity.get(rec.id) or rec.created),
        })
    return rows


# ---------------------------------------------------------------------------- study page
def study_summary(st: Storage, study: StudyRecord) -> dict[str, Any]:
    """Counts, best value and the epochs saved by stopping.  Without stopping, every finished
    trial would have run ``training.max_epochs`` (else the longest trial's epochs)."""
    ov = q.study_overview(st, study.id, study.direction)
    full = _max_epochs(study) or ov["longest"] or 0
    done = ov["states"].get(TrialState.COMPLETE, 0) + ov["states"].get(TrialState.STOPPED, 0)
    run_done = ov["epochs_by_state"].get(TrialState.COMPLETE, 0) + \
        ov["epochs_by_state"].get(TrialState.STOPPED, 0)
    budget = done * full
    saved = max(0, budget - run_done)
    fs = st.false_stops(study.id)
    return {
        "id": study.id, "name": study.name, "space": study.space, "task": study.task,
        "direction": unreadable(study, "objectives", study.direction), "status": study.status,
        "created": unreadable(study, "created", iso(study.created)),
        "last_activity": iso(ov["last_activity"] or study.created), "trials": ov["trials"],
        "states": ov["states"], "best_value": cell(ov["best_value"]),
        "epochs_run": ov["epochs_run"], "max_epochs": full, "epochs_budget": budget,
        "epochs_saved": saved, "saved_share": (saved / budget) if budget else None,
        "false_stops": fs, "false_stop_text": false_stop_text(fs),
    }


def leaderboard_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "value": cell(r["value"]), "summary": config_summary(r["config"]),
             "config": r["config"] if isinstance(r["config"], dict) else UNREADABLE,
             "started": iso(r["started"]), "finished": iso(r["finished"])} for r in rows]


def best_so_far(st: Storage, study: StudyRecord) -> dict[str, Any]:
    """Every finished trial's value by number and by wall time (hours since the study was
    created), its state, and the best COMPLETE value so far in both orders."""
    direction = study.direction
    rows = [r for r in q.trial_progress(st, study.id) if num(r[2]) is not None]
    t0 = study.created

    def hours(t: _dt.datetime | None) -> float | None:
        ok = isinstance(t, _dt.datetime) and isinstance(t0, _dt.datetime)
        return (t - t0).total_seconds() / 3600 if ok else None  # type: ignore[operator]

    def running_best(order: list[tuple[int, str, float | None, Any, Any]]) -> list[float | None]:
        best: float | None = None
        out: list[float | None] = []
        for _, state, v, _, _ in order:
            if state == TrialState.COMPLETE and v is not None and better(v, best, direction):
                best = float(v)
            out.append(best)
        return out

    by_time = sorted((r for r in rows if isinstance(r[4], _dt.datetime)),
                     key=lambda r: cast(_dt.datetime, r[4]))
    return {
        "direction": study.direction, "colors": COLORS,
        "number": [r[0] for r in rows], "state": [r[1] for r in rows],
        "value": [num(r[2]) for r in rows], "best": running_best(rows),
        "time_h": [hours(r[4]) for r in by_time], "time_state": [r[1] for r in by_time],
        "time_value": [num(r[2]) for r in by_time], "time_number": [r[0] for r in by_time],
        "time_best": running_best(by_time),
    }


_importance_cache: dict[tuple[str, int], tuple[tuple[int, float | None], float, dict[str, Any]]] = {}
_importance_lock = threading.Lock()
#: fANOVA on the latest completed trials (16 trees: ~2 s for 500 trials on a busy core).
IMPORTANCE_TRIALS = 500
IMPORTANCE_TREES = 16
#: While a study runs, recompute at most this often (the plot polls; fANOVA is not free).
IMPORTANCE_MIN_AGE_S = 30.0


def importances(st: Storage, study: StudyRecord) -> dict[str, Any]:
    """Optuna's parameter importances (fANOVA) on an in-memory Optuna study rebuilt from the
    latest COMPLETE trials that carry Optuna distributions (as the runner's ``_rebuild``
    does); cached until a trial completes, and recomputed at most every 30 s."""
    import time

    rows = q.importance_inputs(st, study.id, limit=IMPORTANCE_TRIALS)
    key = (st.url, study.id)  # never shown: only the cache's key
    stamp = (len(rows), rows[0][0] if rows else None)
    with _importance_lock:  # one computation at a time; the others wait and reuse it
        hit = _importance_cache.get(key)
        if hit is not None and (hit[0] == stamp or time.monotonic() - hit[1] < IMPORTANCE_MIN_AGE_S):
            return hit[2]
        result = _compute_importances(rows, study.direction)
        _importance_cache[key] = (stamp, time.monotonic(), result)
    return result


def _with_layers(parsed: list[tuple[float, dict[str, Any], dict[str, Any], dict[str, Any]]]
                 ) -> list[tuple[float, dict[str, Any], dict[str, Any]]]:
    """Add each trial's per-layer parameters (``layer0.cell``, ...: the config's ``layers``
    flattened as ``to_pandas()`` does) as categorical parameters.  An Optuna parameter that
    holds the same value as one of them in every trial (``l0_cell`` = ``layer0.cell``) gives
    way to it, so that one choice is not counted twice."""
    from optuna.distributions import CategoricalDistribution

    flat = [layer_params(cfg) or {} for _, _, _, cfg in parsed]
    choices: dict[str, list[Any]] = {}
    for f in flat:
        for k, v in f.items():
            if (v is None or isinstance(v, (bool, int, float, str))) \
                    and v not in choices.setdefault(k, []):
                choices[k].append(v)
    same = {p for p in parsed[0][2] for k in choices
            if all(params.get(p) == f.get(k, object())
                   for (_, _, params, _), f in zip(parsed, flat))}
    out = []
    for (value, dists, params, _), f in zip(parsed, flat):
        d = {k: v for k, v in dists.items() if k not in same}
        p = {k: v for k, v in params.items() if k not in same}
        for k, v in f.items():
            if k in choices and k not in d:
                d[k], p[k] = CategoricalDistribution(choices[k]), v
        out.append((value, d, p))
    return out


def _compute_importances(rows: list[tuple[float, Any, Any]], direction: str) -> dict[str, Any]:
    import optuna
    from optuna.distributions import json_to_distribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parsed = []
    for value, payload, config in rows:
        payload = payload or {}
        try:
            dists = {k: json_to_distribution(v)
                     for k, v in (payload.get("distributions") or {}).items()}
            params = dict(payload.get("params") or {})
            if not dists or set(params) != set(dists):
                continue
            parsed.append((value, dists, params, config if isinstance(config, dict) else {}))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # imported, malformed
            log.debug("trial skipped for importances: %s", exc)
    trials = []
    for value, dists, params in (_with_layers(parsed) if parsed else []):
        try:
            trials.append(optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE, params=params, distributions=dists,
                value=value))
        except (ValueError, TypeError) as exc:  # a value outside its distribution
            log.debug("trial skipped for importances: %s", exc)
    base = {"trials": len(trials), "limit": IMPORTANCE_TRIALS, "params": [], "importance": []}
    if len(trials) < 2:
        return {**base, "note": "needs at least 2 completed trials with Optuna parameters"}
    minimize = direction == Direction.MINIMIZE
    study = optuna.create_study(direction=(Direction.MINIMIZE if minimize
                                           else Direction.MAXIMIZE).value)
    study.add_trials(trials)
    try:
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        imp = get_param_importances(study, evaluator=FanovaImportanceEvaluator(
            n_trees=IMPORTANCE_TREES, seed=0))
    except (RuntimeError, ValueError) as exc:
        return {**base, "note": f"importances unavailable: {exc}"}
    items = sorted(imp.items(), key=lambda kv: kv[1])
    return {**base, "params": [k for k, _ in items], "importance": [float(v) for _, v in items],
            "note": ""}


# ---------------------------------------------------------------------------- trial page
def trial_view(st: Storage, study: StudyRecord, trial: Any) -> dict[str, Any]:
    """The trial's curve, each forecast (q05-q95 and mean of the value at its horizon, and
    the step after which it was made), where the trial ran (node, device, threads), each
    decision with its reason and the best value it was compared against: the decision's
    stored threshold, else the study's best COMPLETE value when the decision was made."""
    points, forecasts, decisions = st.trial_detail(trial.id)
    missing = [i for i, d in enumerate(decisions)
               if num(d.threshold) is None and isinstance(d.created, _dt.datetime)]
    fallback = q.best_completed_at(st, study.id, [decisions[i].created for i in missing],
                                    direction=study.direction, exclude_trial=trial.id)
    best_at = dict(zip(missing, fallback))
    ds = []
    for i, d in enumerate(decisions):
        stored = num(d.threshold)
        ds.append({"step": d.step, "policy": d.policy, "action": d.action, "reason": d.reason,
                   "created": iso(d.created),
                   "compared_to": stored if stored is not None else num(best_at.get(i)),
                   "compared_source": ("threshold" if stored is not None else
                                       ("study best then" if best_at.get(i) is not None
                                        else ""))})
    fs = [{"step": f.step, "predictor": f.summary.predictor, "horizon": f.summary.horizon,
           "mean": num(f.summary.mean), "q05": num(f.summary.q05), "q50": num(f.summary.q50),
           "q95": num(f.summary.q95), "p_improve": num(f.summary.p_improve)}
          for f in forecasts]
    return {
        "study": study.name, "number": trial.number, "state": trial.state,
        "direction": study.direction, "value": num(trial.value), "epochs": trial.epochs,
        "steps": [p[0] for p in points], "values": [num(p[1]) for p in points],
        "wall": [num(p[2]) for p in points], "forecasts": fs, "decisions": ds,
        "node": trial.node, "device": trial.device, "threads": trial.threads,
        "colors": COLORS,
    }


def compare_curves(st: Storage, study: StudyRecord, numbers: list[int]) -> dict[str, Any]:
    curves = q.curves_of(st, study.id, numbers)
    return {"direction": study.direction,
            "curves": [{"number": n, "steps": [p[0] for p in pts],
                        "values": [num(p[1]) for p in pts]}
                       for n, pts in sorted(curves.items())]}
