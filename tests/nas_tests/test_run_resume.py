"""Resume after SIGKILL: a driver subprocess is killed mid-study, then the study is resumed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _run_helpers import descendants, kill_pids, toy_sections, write_study

from nas.runner import run_study
from nas.storage import Storage

TRIALS, EPOCHS = 6, 5


def _session_members(sid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and int(entry.name) != sid:
                out.append(int(entry.name))
    return out


@pytest.mark.usefixtures("ray_runtime")
def test_resume_after_sigkill_of_the_driver(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections(
        "resume", trials=TRIALS, policy="none", max_epochs=EPOCHS, epoch_s=0.4))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    short_tmp = tempfile.mkdtemp(prefix="nr-", dir="/tmp")
    env = dict(os.environ, TMPDIR=short_tmp, RAY_USAGE_STATS_ENABLED="0",
               RAY_AUTH_MODE="disabled", HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())",
         "run", str(path), "--storage", url, "--quiet", "--cpus", "2"],
        env=env, cwd=tmp_path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    st = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            if (tmp_path / "nas.db").exists():
                st = st or Storage(url)
                if "resume" in st.study_names():
                    sid = st.get_study("resume").id
                    states = [t.state for t in st.trials(sid)]
                    running = [t for t in st.trials(sid, states=["RUNNING"], with_curves=True)]
                    if states.count("COMPLETE") >= 2 and any(t.curve for t in running):
                        break
            time.sleep(0.3)
        else:
            pytest.fail("the driver did not get two trials done in time")
    finally:
        victims = descendants(proc.pid) + _session_members(proc.pid)
        kill_pids([proc.pid])
        proc.wait(timeout=30)
        kill_pids(sorted(set(victims) | set(_session_members(proc.pid))))
        shutil.rmtree(short_tmp, ignore_errors=True)

    assert st is not None
    sid = st.get_study("resume").id
    before = {t.number: t for t in st.trials(sid, with_curves=True)}
    running = {n for n, t in before.items() if t.state == "RUNNING"}
    assert running, "no trial was running when the driver was killed"
    points_before = {n: st.curve_points(t.id) for n, t in before.items()}

    s = run_study(path, storage=url, resume=True, ray_storage=str(tmp_path / "ray"))

    after = {t.number: t for t in st.trials(sid, with_curves=True)}
    assert s.trials.get("COMPLETE") == TRIALS  # the budget counts done trials only
    assert s.trials.get("INTERRUPTED") == len(running)
    assert st.get_study("resume").status == "COMPLETE"
    for n in running:
        assert after[n].state == "INTERRUPTED"
        # each interrupted trial was run again, with the same parameters
        reruns = [t for t in after.values() if t.distributions.get("rerun_of") == n]
        assert len(reruns) == 1 and reruns[0].state == "COMPLETE"
        assert reruns[0].distributions["params"] == after[n].distributions["params"]
    for n, t in after.items():
        pts = st.curve_points(t.id)
        steps = [p[0] for p in pts]
        assert steps == list(range(1, len(steps) + 1))  # no point stored twice
        if n in points_before:  # what was stored before the kill is untouched
            assert pts[: len(points_before[n])] == points_before[n]
            if before[n].state != "RUNNING":
                assert pts == points_before[n]
