"""``nas best STUDY``: the best configuration as a study file that re-runs it as it is.

The file keeps the study's task, training and objectives and runs the best trial's config
with :class:`search_spaces.FixedSpace` (one trial, no stopping); ``-o best.toml`` or
``-o best.json`` writes it, ``nas run best.toml`` runs it.  Query-only: no torch, no Ray.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from nas.cli._app import app
from nas.cli._db import STORAGE_OPTION
from nas.errors import ConfigError
from nas.interfaces import TrialState

__all__ = ["best_study_doc"]

FIXED_SPACE = "search_spaces:FixedSpace"


def best_study_doc(st: Any, study: str) -> tuple[dict[str, Any], Any]:
    """The study-file document (the TOML shape) that re-runs the best trial of ``study``, and
    that trial."""
    from nas.config import config_from_dict
    from nas.storage import best_of

    rec = st.get_study(study)
    stored = dict(rec.config or {})
    if "search" not in stored or "task" not in stored:
        raise ConfigError(f"study {study!r} has no stored study file (was it imported?); "
                          "nas best needs a study that `nas run` created")
    best = best_of(st.trials(rec.id, states=[TrialState.COMPLETE]), rec.direction)
    if best is None:
        raise ConfigError(f"study {study!r} has no COMPLETE trial with a value")
    search = dict(stored["search"])
    space, options = search["space"], dict(search.get("space_options") or {})
    if space == FIXED_SPACE:  # the best of a fixed study: the same space, the same config
        space, options = options.get("space", "seq_cells"), dict(options.get("space_options")
                                                                 or {})
    doc: dict[str, Any] = {
        "study": {"name": f"{rec.name}-best", "seed": stored.get("study", {}).get("seed", 0)},
        "search": {"space": FIXED_SPACE, "sampler": "random", "trials": 1, "concurrency": 1,
                   "objectives": search.get("objectives"),
                   "space_options": {"space": space, "space_options": options,
                                     "config": best.config}},
        "task": stored["task"],
        "training": stored.get("training", {}),
        "stopping": {"policy": "none"},
    }
    config_from_dict(doc, source=f"nas best {study}")  # what we write must load
    return doc, best


@app.command("best")
def best_cmd(
    study: str = typer.Argument(..., help="Study name."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the study file "
                                       "here: .toml or .json (default: TOML on stdout)."),
    fmt: str = typer.Option("toml", "--format", "-f", help="toml or json (stdout only)."),
    as_json: bool = typer.Option(False, "--json", help="Shorthand for --format json."),
    storage: str | None = STORAGE_OPTION,
) -> None:
    """The best trial's configuration as a study file that re-runs it: the study's task,
    training and objectives, one trial, no stopping (`nas run FILE` runs it)."""
    from nas._toml import dumps

    kind = "json" if as_json else fmt.lower()
    if output is not None:
        kind = output.suffix.lower().lstrip(".")
        if kind not in ("toml", "json"):
            raise ConfigError(f"-o {output}: name the file *.toml or *.json")
        if output.is_dir():
            raise ConfigError(f"-o {output}: is a directory; give the name of the file to write")
    elif kind not in ("toml", "json"):
        raise ConfigError(f"--format {fmt!r} is not supported by best; use toml or json")
    from nas.storage import Storage

    st = Storage.open(storage)
    doc, best = best_study_doc(st, study)
    rec = st.get_study(study)
    how = f"nas run {output}" if output is not None else "save it as best.toml, then nas run best.toml"
    header = (f"nas best {study}: trial {best.number}, {rec.objectives[0]['name']} "
              f"{best.value:.6g} ({rec.direction}), from {st.masked_url}\n"
              f"re-run it as it is: {how}")
    text = (json.dumps(doc, indent=2) + "\n" if kind == "json" else dumps(doc, header=header))
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"wrote trial {best.number} of study {study!r} to {output}; run it with: "
               f"nas run {output}", err=True)
