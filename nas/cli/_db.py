"""Study-database commands: ``nas db upgrade|info``, ``nas import``, ``nas export``,
``nas studies``, ``nas trials``, ``nas curve``, ``nas delete``.

Query commands import only SQLAlchemy, typer and rich (never torch or ray) so that they answer
fast; matplotlib loads only for ``nas curve --plot``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import typer

from nas._format import printable, short_reason
from nas.cli._app import app, db_app
from nas.cli._output import (
    FORMAT_OPTION,
    JSON_OPTION,
    Format,
    check_output_file,
    emit,
    emit_json,
    resolve_format,
)
from nas.errors import ConfigError
from nas.interfaces import DIRECTIONS, TRIAL_STATES, Action, Direction, ForecastSummary, TrialState
from nas.policies import false_stop_text

STORAGE_OPTION = typer.Option(
    None, "--storage", "-s",
    help="Database URL (default: $NAS_STORAGE, else sqlite:///nas.db in the working directory).",
)
_TRIAL_COLUMNS = ["number", "state", "value", "epochs", "group", "params"]
#: the forecast columns of ``nas curve``: the fields of a forecast summary, in order
_FORECAST_COLUMNS = tuple(f.name for f in fields(ForecastSummary))


def _created(v: Any) -> str:
    return v.replace(microsecond=0).isoformat(sep=" ") if v is not None else ""


# ---------------------------------------------------------------------------- nas db ...
_SCHEMA_STATUS = {"empty": "empty (created on first use)", "ok": "ok",
                  "old": "old: run `nas db upgrade`", "foreign": "not a nas database",
                  "newer": "newer than this nas: upgrade nas"}
_COUNTED = ("studies", "trials", "curve_points", "forecasts", "decisions")


@db_app.command("upgrade")
def db_upgrade(storage: str | None = STORAGE_OPTION) -> None:
    """Create the database, or bring an older one to this nas's schema revision."""
    from nas.storage import Storage

    st = Storage.open(storage, check_schema=False, create=True)
    before, after = st.upgrade_schema()
    if before == after:
        typer.echo(f"{st.masked_url}: schema already at revision {after}")
    else:
        typer.echo(f"{st.masked_url}: schema upgraded from {before or 'empty'} to revision {after}")


@db_app.command("info")
def db_info(
    storage: str | None = STORAGE_OPTION,
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the database URL (password masked), back end, schema revision and row counts."""
    out = resolve_format(fmt, as_json)
    from nas.storage import Storage

    st = Storage.open(storage, check_schema=False)
    schema = st.schema_info()
    status = _SCHEMA_STATUS[schema.state]
    info: dict[str, Any] = {"url": st.masked_url, "backend": st.dialect,
                            "revision": schema.revision, "head": schema.head, "status": status}
    info.update({name: schema.counts.get(name) for name in _COUNTED})
    if out == "json":
        emit_json(info)
    else:
        emit([{"key": k, "value": v} for k, v in info.items()], out, columns=["key", "value"],
             title="study database")


# ---------------------------------------------------------------------------- import/export
@app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="Curve file (.npz, see the curve-file format)."),
    study: str = typer.Option(..., "--study", help="Name of the new study."),
    direction: str | None = typer.Option(
        None, "--direction", help="maximize or minimize (default: the file's, else maximize)."),
    storage: str | None = STORAGE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import recorded learning curves as a study (one transaction): each trial in the file's
    `state` (COMPLETE when it has none), a STOPPED one with its `stop_step` as a decision."""
    from nas.storage import Storage, import_curves

    if direction is not None and direction not in DIRECTIONS:
        raise ConfigError(f"--direction = {direction!r}: must be maximize or minimize")
    st = Storage.open(storage, create=True)
    res = import_curves(st, file, study, direction=direction)
    if as_json:
        emit_json(res.to_dict())
    else:
        typer.echo(f"imported {res.trials} curves ({res.points} points, {res.missing} missing) "
                   f"into study {res.study!r} in {st.masked_url} in {res.seconds:.2f} s")


@app.command("export")
def export_cmd(
    study: str = typer.Argument(..., help="Study name."),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, json or npz."),
    curves: bool = typer.Option(False, "--curves", help="Include every trial's curve (csv/json; "
                                "npz always holds the curves, with each trial's state and stop "
                                "step)."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="File to write (default: stdout; npz needs one)."),
    storage: str | None = STORAGE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Export a study: trials as csv/json, or the curve-file format (npz) that imports back."""
    from nas.storage import Storage, export_curves, export_rows

    out = "json" if as_json else fmt.lower()
    if out not in ("csv", "json", "npz"):
        raise ConfigError(f"--format {fmt!r} is not supported by export; use csv, json or npz")
    if out == "npz" and output is None:
        raise ConfigError("--format npz needs -o FILE.npz (binary output is not written to stdout)")
    if output is not None and output.is_dir():
        raise ConfigError(f"-o {output}: is a directory; give the name of the file to write")
    st = Storage.open(storage)
    if out == "npz" and output is not None:
        n = export_curves(st, study, output)
        typer.echo(f"wrote {n} curves of study {study!r} to {output}", err=True)
        return
    rec = st.get_study(study)
    rows = export_rows(st.trials(rec.id, with_curves=curves), curves=curves)
    if output is None:
        emit(rows, out)
        return
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        emit(rows, out)
    try:
        output.write_text(buf.getvalue())
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {len(rows)} trials of study {study!r} to {output}", err=True)


@app.command("delete")
def delete_cmd(
    study: str = typer.Argument(..., help="Study name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    storage: str | None = STORAGE_OPTION,
) -> None:
    """Delete a study with its trials, curve points, forecasts and decisions (one transaction)."""
    from nas.storage import Storage

    st = Storage.open(storage, write=True)
    rec = st.get_study(study)
    n = len(st.trial_rows(rec.id))
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"deleting study {study!r} ({n} trials) from {st.masked_url} "
                              "needs --yes")
        if not typer.confirm(f"delete study {study!r} ({n} trials) from {st.masked_url}?"):
            raise ConfigError(f"study {study!r} not deleted")
    st.delete_study(study)
    typer.echo(f"deleted study {study!r} ({n} trials) from {st.masked_url}", err=True)


# ---------------------------------------------------------------------------- listings
@app.command("studies")
def studies_cmd(
    storage: str | None = STORAGE_OPTION,
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the studies: space, task, direction, trials by state, best value, created."""
    from nas.storage import Storage

    out = resolve_format(fmt, as_json)
    st = Storage.open(storage)
    rows = []
    for s in st.study_summaries():
        rec = s["study"]
        states = s["states"]
        row: dict[str, Any] = {
            "name": rec.name, "space": rec.space, "task": rec.task, "direction": rec.direction,
            "status": rec.status, "trials": sum(states.values()),
        }
        for state in TRIAL_STATES:
            row[state.lower()] = states.get(state, 0)
        row["best_value"] = s["best_value"]
        row["false_stops"] = st.false_stops(rec.id)
        row["created"] = _created(rec.created) if out != "json" else rec.created
        rows.append(row)
    columns = ["name", "space", "task", "direction", "status", "trials",
               *[x.lower() for x in TRIAL_STATES], "best_value", "false_stops", "created"]
    if out == "csv":  # flat cells: the rate and its interval
        for row in rows:
            fs = row.pop("false_stops")
            row["false_stop_rate"] = fs["rate"]
            row["false_stop_ci95"] = ("" if fs["ci95"] is None else
                                      f"{fs['ci95'][0]:.4f}-{fs['ci95'][1]:.4f}")
            row["audited"] = fs["audited"]
        columns[columns.index("false_stops"):columns.index("false_stops") + 1] = [
            "audited", "false_stop_rate", "false_stop_ci95"]
    if out == "table":  # people: one compact "trials by state" column
        for row in rows:
            by_state = [f"{row[x.lower()]} {x.lower()}" for x in TRIAL_STATES if row[x.lower()]]
            row["trials"] = f"{row['trials']}" + (f" ({', '.join(by_state)})" if by_state else "")
            row["created"] = str(row["created"])[:16]
            fs = row["false_stops"]  # empty (the column goes) when no study has an audit
            row["false_stops"] = false_stop_text(fs, short=True) if fs["audited"] or \
                fs["pending"] else ""
            row["direction"] = row["direction"][:3]  # max | min
        columns = ["name", "space", "task", "direction", "trials", "best_value", "false_stops",
                   "created"]
    emit(rows, out, columns=columns, title=f"studies in {st.masked_url}", keep=("name",),
         optional=("created", "space", "false_stops"))


def _parse_states(state: list[str] | None) -> list[str] | None:
    if not state:
        return None
    out = []
    for item in state:
        for s in item.split(","):
            s = s.strip().upper()
            if s == "PRUNED":
                s = TrialState.STOPPED
            if s not in TRIAL_STATES:
                raise ConfigError(f"--state {s!r} is not one of {', '.join(TRIAL_STATES)}")
            out.append(s)
    return out


@app.command("trials")
def trials_cmd(
    study: str = typer.Argument(..., help="Study name."),
    top: int | None = typer.Option(None, "--top", help="Only the K best trials (sorted by value)."),
    state: list[str] | None = typer.Option(None, "--state", help="Only trials in this state (repeat or comma-separate)."),
    sort: str | None = typer.Option(None, "--sort", help="value (best first) or number (default; value with --top)."),
    wide: bool = typer.Option(False, "--wide", help="Also where each trial ran: node, device and torch threads (JSON and CSV always have them)."),
    storage: str | None = STORAGE_OPTION,
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List a study's trials: number, state, value, epochs, group, params (the config); and
    values (every objective) for multi-objective studies; where each ran with --wide."""
    out = resolve_format(fmt, as_json)
    if top is not None and top < 0:
        raise ConfigError(f"--top = {top}: must be >= 0")
    if sort is not None and sort not in ("value", "number"):
        raise ConfigError(f"--sort = {sort!r}: must be value or number")
    states = _parse_states(state)
    from nas.storage import Storage

    st = Storage.open(storage)
    rec = st.get_study(study)
    multi = len(rec.objectives) > 1
    rows = st.trial_rows(rec.id, states=states, sort=sort or ("value" if top is not None else "number"),
                         direction=rec.direction, limit=top, with_values=multi)
    title = f"{rec.name} ({rec.direction}): {len(rows)} trials"
    columns = list(_TRIAL_COLUMNS)
    if multi:  # every objective, after the primary one
        columns.insert(3, "values")
    stops = st.stops(rec.id)
    audits = st.audits(rec.id)
    for r in rows:  # where and why a trial stopped (the audit: where it would have)
        d = stops.get(r["number"])
        r["stop_step"] = d.step if d is not None else None
        r["stop_reason"] = d.reason if d is not None else None
        if d is not None:
            r["why"] = short_reason(d.policy, d.reason)
        elif r["number"] in audits and out == "table":  # the step it would have stopped at
            r["stop_step"], outcome = audits[r["number"]]
            r["why"] = f"audit: {outcome}"
    columns.insert(columns.index("epochs") + 1, "stop_step")
    columns.insert(columns.index("stop_step") + 1, "why" if out == "table" else "stop_reason")
    if audits:  # the stop audit: which trials it let run on, and what they showed
        for r in rows:
            r["audit_step"], r["audit"] = audits.get(r["number"], (None, None))
        if out != "table":  # the table says it in the why column
            columns[columns.index("stop_reason") + 1:columns.index("stop_reason") + 1] = [
                "audit_step", "audit"]
        title += "; " + false_stop_text(st.false_stops(rec.id))
    if wide or out != "table":  # where it ran: the Ray node, the device, the torch threads
        columns[columns.index("params"):columns.index("params")] = ["node", "device", "threads"]
    # --wide at 80 columns: the config and then the node give way (named below the table)
    _emit_listing(rows, out, columns=columns, title=title,
                  optional=("group", "params", "node") if wide else ("group",))


def _compact(v: Any, nested: bool = False) -> str:
    """A config for a table cell: ``key=value`` pairs, floats to 4 significant digits; nested
    mappings in braces, sequences in brackets."""
    if isinstance(v, dict):
        body = " ".join(f"{k}={_compact(x, True)}" for k, x in v.items())
        return "{" + body + "}" if nested else body
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_compact(x, True) for x in v) + "]"
    return str(v)


def _best_at_decisions(st: Any, rec: Any, decisions: list[Any]) -> dict[int, float | None]:
    """The study's best final value (COMPLETE trials finished by then) at each decision's
    time, by step: the value a forecast had to beat."""
    done = [(t.finished, t.value) for t in st.trials(rec.id, states=[TrialState.COMPLETE])
            if t.finished is not None and t.value is not None]
    pick = min if rec.direction == Direction.MINIMIZE else max
    out: dict[int, float | None] = {}
    for d in decisions:
        seen = [v for f, v in done if d.created is None or f <= d.created]
        out[d.step] = pick(seen) if seen else None
    return out


def _emit_listing(rows: list[dict[str, Any]], out: str, *, columns: list[str], title: str,
                  optional: tuple[str, ...] = ("group",)) -> None:
    """Like ``emit``, but fast for long listings: JSON through the C encoder (one row per
    line), and plain aligned text instead of rich past a screenful."""
    if out == "json":
        try:
            body = ",\n".join("  " + json.dumps({c: r.get(c) for c in columns}, allow_nan=False)
                              for r in rows)
        except (TypeError, ValueError):  # datetimes, NaN: the general path handles them
            emit(rows, out, columns=columns)
            return
        sys.stdout.write("[\n" + body + "\n]\n" if rows else "[]\n")
        sys.stdout.flush()
        return
    if out == "csv":
        emit(rows, out, columns=columns)
        return
    from nas._format import short_config
    from nas.cli._output import _cell
    from nas.cli._table import layout, render, terminal_width

    # params: the live view's one-line summary, cut to what the terminal leaves (the full
    # config is in --json / --format csv); every other column in full
    cells = {c: [_cell(_compact(r.get(c)) if isinstance(r.get(c), dict) else r.get(c))
                 for r in rows] for c in columns if c != "params"}
    configs = [r.get("params") for r in rows]
    if "params" in columns:
        cells["params"] = [short_config(x, 10**6) if isinstance(x, dict) else _cell(x)
                           for x in configs]
    plan = layout(columns, cells, terminal_width(), keep=("number", "state", "value", "epochs"),
                  flexible="params" if "params" in columns else None, flexible_min=16,
                  optional=optional)
    if "params" in plan.columns:
        cells["params"] = [short_config(x, plan.widths["params"]) if isinstance(x, dict)
                           else _cell(x) for x in configs]
    if len(rows) <= 200:
        render(plan, cells, title=title)
        return
    _plain_table(plan.columns, cells, title)


def _plain_table(columns: list[str], cells: dict[str, list[str]], title: str) -> None:
    """Plain aligned text: rich takes seconds for thousands of rows."""
    from nas.cli._table import header

    widths = [max([len(header(c))] + [len(x) for x in cells[c]]) for c in columns[:-1]]
    fmt_row = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    lines = [printable(title), fmt_row.format(*[header(c) for c in columns])]
    lines.extend(fmt_row.format(*[cells[c][i] for c in columns])
                 for i in range(len(cells[columns[0]])))
    sys.stdout.write("\n".join(lines) + "\n")


@app.command("curve")
def curve_cmd(
    study: str = typer.Argument(..., help="Study name."),
    number: int = typer.Argument(..., help="Trial number."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write a PNG plot of the curve and forecast bands."),
    storage: str | None = STORAGE_OPTION,
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One trial's curve: step and value, plus forecast and decision columns where stored."""
    out = resolve_format(fmt, as_json)
    if plot is not None and plot.suffix.lower() != ".png":
        raise ConfigError(f"--plot {plot}: the plot is a PNG file; name it *.png")
    if plot is not None:
        check_output_file(plot, "--plot")
    from nas.storage import Storage

    st = Storage.open(storage)
    rec = st.get_study(study)
    tid = st.trial_id(rec.id, number)
    points = st.curve_points(tid)
    forecasts = {f.step: f for f in st.forecasts(tid)}  # the last forecast made after each step
    decisions = {d.step: d for d in st.decisions(tid)}
    columns = ["step", "value", "wall_time"]
    if forecasts:
        columns += list(_FORECAST_COLUMNS)
    best_at = _best_at_decisions(st, rec, list(decisions.values())) if decisions else {}
    if decisions:
        columns += ["best", "action", "reason"]
    rows = []
    for step, value, wall in points:
        row: dict[str, Any] = {"step": step, "value": value, "wall_time": wall}
        f = forecasts.get(step)
        if forecasts:
            row.update(asdict(f.summary) if f is not None else dict.fromkeys(_FORECAST_COLUMNS))
        d = decisions.get(step)
        if decisions:
            row.update({"best": best_at.get(step), "action": d and d.action,
                        "reason": d and d.reason})
        rows.append(row)
    if plot is not None:
        from nas.cli._plot import plot_curve

        plot_curve(plot, points, list(forecasts.values()), list(decisions.values()),
                   title=f"{rec.name} trial {number}", direction=rec.direction,
                   best=sorted(best_at.items()))
        typer.echo(f"wrote {plot}", err=True)
    if out == "table":  # people: the columns that fit a terminal; the reason below them
        columns = [c for c in columns if c not in ("wall_time", "predictor", "horizon", "q50", "reason")]
        title = f"{rec.name} trial {number}"
        if forecasts:
            f0 = next(iter(forecasts.values()))
            title += f" (forecasts of step {f0.summary.horizon} by {f0.summary.predictor})"
        for row in rows:  # 4 significant digits fit 80 columns (json and csv keep them all)
            row.update({k: float(f"{v:.4g}") for k, v in row.items()
                        if isinstance(v, float) and k != "wall_time"})
        emit(rows, out, columns=columns, title=title, optional=("q05", "q95", "mean"))
        from rich.console import Console

        for d in decisions.values():  # wrapped at spaces to the terminal
            if d.action == Action.STOP:
                Console().print(printable(f"stopped after step {d.step} by {d.policy}: {d.reason}"),
                                markup=False, highlight=False)
        return
    emit(rows, out, columns=columns)
