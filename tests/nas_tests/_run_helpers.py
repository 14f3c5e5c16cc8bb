"""Study files for the runner tests: the synthetic space/task/trainer of :mod:`nas.testing.toy`."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any


def _toml_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def write_study(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write ``sections`` as a TOML study file (only the value types the tests use)."""
    lines = []
    for sec, body in sections.items():
        lines.append(f"[{sec}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def toy_sections(name: str, *, trials: int = 10, modes: list[str] | None = None,
                 policy: str = "asha", max_epochs: int = 6, epoch_s: float = 0.0,
                 concurrency: int = 2, sampler: str = "tpe",
                 extra: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    s: dict[str, dict[str, Any]] = {
        "study": {"name": name, "seed": 3},
        "search": {"space": "nas.testing.toy:ToySpace",
                   "space_options": {"modes": modes or ["ok"], "epoch_s": epoch_s},
                   "sampler": sampler, "trials": trials, "concurrency": concurrency},
        "task": {"name": "nas.testing.toy:ToyTask"},
        "training": {"max_epochs": max_epochs, "trainer": "nas.testing.toy:toy_train"},
        "stopping": {"policy": policy},
    }
    for sec, body in (extra or {}).items():
        s.setdefault(sec, {}).update(body)
    return s


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (read from /proc; no psutil needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_pids(pids: list[int], timeout: float = 10.0) -> None:
    """SIGKILL each PID and wait until it is gone (zombies of ours are reaped)."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for p in pids:
        while time.monotonic() < deadline:
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                os.kill(p, 0)
            except ProcessLookupError:
                break
            if Path(f"/proc/{p}/stat").exists() and \
                    Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.05)


def drive_trial(eng: Any, key: str, values: list[float]) -> None:
    """Drive one trial through a runner Engine as the Tune adapters would (no Ray): ask, one
    result per value (``val_accuracy``; the first names a node, device and threads), complete."""
    assert eng.next_trial(key) is not None
    for e, v in enumerate(values, 1):
        eng.on_result(key, {"val_accuracy": v, "epoch": e, "nas_elapsed_s": 0.01 * e,
                            **({"nas_node": "host:abc", "nas_device": "cpu", "nas_threads": 2}
                               if e == 1 else {})})
    eng.on_complete(key)


def run_cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    """``nas ARGS`` in this process: (exit code, stdout, stderr) of that call alone."""
    from nas.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
