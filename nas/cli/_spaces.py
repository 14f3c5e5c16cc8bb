"""``nas spaces`` (list installed spaces and tasks) and ``nas spaces check`` (conformance).

The checks themselves live in :mod:`nas.testing.spaces` so that third parties run the same
ones in their test suites.  torch and optuna are imported inside the commands only.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from typing import Any

import typer

from nas.cli._app import spaces_app
from nas.cli._output import FORMAT_OPTION, JSON_OPTION, Format, emit, emit_json, resolve_format
from nas.errors import ConfigError, PluginError
from nas.registry import GROUPS

#: the kinds ``nas spaces`` lists, with their entry-point groups (from :data:`GROUPS`)
_KINDS = tuple((kind, GROUPS[kind]) for kind in ("space", "task"))


def _first_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    if not doc:
        return ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "")


def _listing() -> list[dict[str, Any]]:
    from nas import registry

    rows: list[dict[str, Any]] = []
    for kind, group in _KINDS:
        eps = sorted({ep.name: ep for ep in entry_points(group=group)}.values(),
                     key=lambda ep: ep.name)
        for ep in eps:
            row: dict[str, Any] = {"kind": kind, "name": ep.name, "target": ep.value,
                                   "description": "", "details": None}
            try:
                obj = registry.load(kind, ep.name)
            except Exception as exc:  # noqa: BLE001  (a broken plug-in is listed, not fatal)
                row["description"] = f"(cannot load: {exc})"
                rows.append(row)
                continue
            row["description"] = _first_line(obj)
            if kind == "task":
                try:  # the spec of the default options (a task may require options)
                    spec = obj().spec()
                except Exception:  # noqa: BLE001
                    spec = None
                if spec is not None:
                    row["details"] = {
                        "objective": spec.objective, "direction": spec.direction,
                        "objective_range": list(spec.objective_range),
                        "input_size": spec.input_size, "output_size": spec.output_size,
                        "seq_len": spec.seq_len, "output_mode": spec.output_mode,
                        "loss": spec.loss}
                    if spec.extra:  # e.g. the Bayes limit of ``hmm``
                        row["details"]["extra"] = dict(spec.extra)
            rows.append(row)
    return rows


def _details_text(d: Any) -> str:
    if not isinstance(d, dict):
        return ""
    extra = "".join(f", {k} {v}" for k, v in (d.get("extra") or {}).items())
    return (f"{d['objective']} ({d['direction']}), T={d['seq_len']}, in {d['input_size']}, "
            f"out {d['output_size']}, {d['output_mode']}, {d['loss']}{extra}")


@spaces_app.callback(invoke_without_command=True)
def spaces_cmd(
    ctx: typer.Context,
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the installed search spaces and tasks (entry points) with their descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    out = resolve_format(fmt, as_json)
    rows = _listing()
    if out == "json":
        emit_json(rows)
        return
    for r in rows:
        r["details"] = _details_text(r["details"])
    columns = ["kind", "name", "description", "details"] if out == "table" else \
        ["kind", "name", "target", "description", "details"]
    emit(rows, out, columns=columns,
         title="installed spaces and tasks")


def _options(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object, e.g. '{{\"cells\": [\"lstm\"]}}'")
    return value


def _layers_text(config: Any) -> str:
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        return ""
    parts = []
    for layer in config["layers"]:
        if isinstance(layer, dict):
            bits = [str(layer.get("cell"))]
            if layer.get("hypernet") not in (None, "none"):
                bits.append(str(layer["hypernet"]))
            if layer.get("activation"):
                bits.append(str(layer["activation"]))
            parts.append("/".join(bits))
    return ", ".join(parts)


@spaces_app.command("check")
def check_cmd(
    name: str = typer.Argument(..., help="Space: an entry-point name or 'module:attr'."),
    samples: int = typer.Option(8, "--samples", "-n", help="Configurations to sample."),
    task: str = typer.Option("parity", "--task", "-t", help="Task whose batch is used."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler, the data and the builds."),
    space_options: str | None = typer.Option(
        None, "--space-options", help="Space constructor options as a JSON object."),
    task_options: str | None = typer.Option(
        None, "--task-options", help="Task constructor options as a JSON object."),
    batch_size: int = typer.Option(32, "--batch-size", help="Batch size of the checks."),
    threads: int = typer.Option(1, "--threads", help="CPU threads for torch (default 1, like "
                                "the benchmarks; torch's default slows a shared machine)."),
    fmt: Format = FORMAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Sample configurations of a space; build each and check shapes, finite gradients,
    causality, determinism and the config's JSON round trip.  Exits 1 if any sample fails."""
    out = resolve_format(fmt, as_json, allowed=("table", "json"))
    if samples < 1:
        raise ConfigError(f"--samples = {samples}: must be >= 1")
    if batch_size < 1:
        raise ConfigError(f"--batch-size = {batch_size}: must be >= 1")
    if seed < 0:
        raise ConfigError(f"--seed = {seed}: must be >= 0")
    if threads < 1:
        raise ConfigError(f"--threads = {threads}: must be >= 1")
    import torch

    torch.set_num_threads(threads)
    from nas import registry
    from nas.testing.spaces import SampleCheck, check_space

    registry.add_import_path(".")  # "module:attr" in the working directory, as in a study
    space_obj = registry.create("space", name, _options(space_options, "--space-options"))
    task_obj = registry.create("task", task, _options(task_options, "--task-options"))
    need = registry.PROTOCOLS["space"]
    if not all(hasattr(space_obj, m) for m in need):
        raise PluginError(f"space {name!r} has no {'/'.join(need)} methods")

    from nas.cli._progress import task_progress

    with task_progress(f"nas spaces check {name}") as progress:
        def tick(i: int, res: SampleCheck) -> None:
            progress(f"sample {i + 1}", i + 1, samples)

        progress("sample 1", 0, samples)
        report = check_space(space_obj, task_obj, samples, seed, batch_size=batch_size,
                             space_name=name, task_name=task, on_sample=tick)
    doc = report.to_dict()
    if out == "json":
        emit_json(doc)
    else:
        from nas._format import short_config

        # the sampled config: its layers (cell/hypernet/activation) when it has a list of
        # them, else its keys and values (a custom space's config)
        rows = [{"#": i, "ok": "ok" if s["ok"] else "FAIL",
                 "config": _layers_text(s["config"]) or (
                     short_config(s["config"], 10**6) if isinstance(s["config"], dict)
                     else str(s["config"])),
                 "n_params": s["n_params"], "ms_per_step": s["ms_per_step"],
                 "error": s["error"] or ""} for i, s in enumerate(doc["samples"])]
        emit(rows, out, columns=["#", "ok", "config", "n_params", "ms_per_step", "error"],
             title=f"nas spaces check {name} --task {task} --seed {seed}")
        summ = doc["summary"]
        typer.echo(f"{summ['n']} samples, {summ['failures']} failures")
        for key, counts in summ["coverage"].items():
            if counts:  # a space without layers has no cell/hypernet/activation to count
                typer.echo(f"  {key}: {', '.join(f'{k} {v}' for k, v in counts.items())}")
    if not report.ok:
        raise typer.Exit(1)
