"""Faults of a real ``nas run`` driver: SIGINT and SIGTERM mid-study (running trials become
INTERRUPTED, one line says how to resume, exit 130 / 143, then ``--resume`` finishes with no
trial left RUNNING and no point stored twice); a bogus ``--address`` fails fast; a resource
request the cluster cannot meet fails at start.  Ray on loopback only (``.ci/in-netns.sh``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _run_helpers import descendants, kill_pids, toy_sections, write_study

from nas.runner import run_study
from nas.storage import Storage

TRIALS, EPOCHS = 5, 5
CLI = [sys.executable, "-m", "nas"]


def _env(tmp_path: Path, short_tmp: str) -> dict[str, str]:
    return dict(os.environ, TMPDIR=short_tmp, RAY_USAGE_STATS_ENABLED="0",
                RAY_AUTH_MODE="disabled", HOME=str(tmp_path))


@pytest.mark.usefixtures("ray_runtime")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_then_resume(tmp_path: Path, sig: signal.Signals) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections(
        "sig", trials=TRIALS, policy="none", max_epochs=EPOCHS, epoch_s=0.4))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    short_tmp = tempfile.mkdtemp(prefix="ns-", dir="/tmp")
    proc = subprocess.Popen([*CLI, "run", str(path), "--storage", url, "--quiet", "--cpus", "2"],
                            env=_env(tmp_path, short_tmp), cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    st = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            if (tmp_path / "nas.db").exists():
                st = st or Storage(url)
                if "sig" in st.study_names():
                    sid = st.get_study("sig").id
                    running = st.trials(sid, states=["RUNNING"], with_curves=True)
                    if st.trials(sid, states=["COMPLETE"]) and any(t.curve for t in running):
                        break
            time.sleep(0.3)
        else:
            pytest.fail("the driver did not get a trial done in time")
        victims = descendants(proc.pid)
        os.kill(proc.pid, sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver did not exit within 60 s of {sig.name}")
    finally:
        if proc.poll() is None:
            victims = descendants(proc.pid)
            kill_pids([proc.pid])
            proc.wait(timeout=30)
        kill_pids(victims)
        shutil.rmtree(short_tmp, ignore_errors=True)

    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert "PC: @" not in err and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "--resume" in ln]
    assert len(lines) == 1 and sig.name in lines[0], err
    assert f"nas run {path} --resume" in lines[0]
    assert st is not None
    sid = st.get_study("sig").id
    before = {t.number: t for t in st.trials(sid)}
    interrupted = {n for n, t in before.items() if t.state == "INTERRUPTED"}
    assert interrupted and "RUNNING" not in {t.state for t in before.values()}
    assert st.get_study("sig").status == "INTERRUPTED"
    points_before = {n: st.curve_points(t.id) for n, t in before.items()}

    s = run_study(path, storage=url, resume=True, ray_storage=str(tmp_path / "ray"))

    after = {t.number: t for t in st.trials(sid)}
    assert s.trials.get("COMPLETE") == TRIALS and "RUNNING" not in s.trials
    assert st.get_study("sig").status == "COMPLETE"
    for n in interrupted:
        reruns = [t for t in after.values() if t.distributions.get("rerun_of") == n]
        assert len(reruns) == 1 and reruns[0].state == "COMPLETE"
    for n, t in after.items():
        steps = [p[0] for p in st.curve_points(t.id)]
        assert steps == list(range(1, len(steps) + 1))  # no point stored twice
        if n in points_before:
            assert st.curve_points(t.id) == points_before[n]  # nothing rewritten


def test_bogus_address_fails_fast(tmp_path: Path) -> None:
    path = write_study(tmp_path / "s.toml", toy_sections("addr", trials=1))
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    short_tmp = tempfile.mkdtemp(prefix="na-", dir="/tmp")
    t0 = time.monotonic()
    try:
        res = subprocess.run([*CLI, "run", str(path), "--storage", url, "-q",
                              "--address", "not-a-host:99999"],
                             env=_env(tmp_path, short_tmp), cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(short_tmp, ignore_errors=True)
    took = time.monotonic() - t0
    assert res.returncode == 2, res.stderr
    assert took <= 30, took
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not-a-host:99999" in lines[0], res.stderr


@pytest.mark.usefixtures("ray_runtime")
@pytest.mark.parametrize(("resources", "needle"), [
    ({"cpu": 1000, "gpu": 0}, "1000 CPU"), ({"cpu": 1, "gpu": 3}, "3 GPU")])
def test_impossible_resources_fail_at_start(tmp_path: Path, resources: dict[str, int],
                                            needle: str) -> None:
    from nas.errors import ConfigError

    path = write_study(tmp_path / "s.toml", toy_sections(
        "res", trials=2, extra={"training": {"resources": resources}}))
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=needle):
        run_study(path, storage=f"sqlite:///{tmp_path / 'nas.db'}",
                  ray_storage=str(tmp_path / "ray"))
    assert time.monotonic() - t0 < 60


def test_python_api_run_exits_without_ray_noise(tmp_path: Path) -> None:
    """``nas.run`` from a script: exit 0 and no ``PlacementGroupResourceManager.__del__``
    TypeError printed at interpreter exit."""
    path = write_study(tmp_path / "s.toml", toy_sections("api", trials=2, max_epochs=2))
    short_tmp = tempfile.mkdtemp(prefix="np-", dir="/tmp")
    script = (f"import nas; s = nas.run({str(path)!r}, storage='sqlite:///{tmp_path}/a.db', "
              f"cpus=2, ray_storage={str(tmp_path / 'ray')!r}); print(s.summary.trials)")
    try:
        res = subprocess.run([sys.executable, "-c", script], env=_env(tmp_path, short_tmp),
                             cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             check=False)
    finally:
        shutil.rmtree(short_tmp, ignore_errors=True)
    assert res.returncode == 0, res.stderr
    assert "COMPLETE" in res.stdout
    assert "PlacementGroupResourceManager" not in res.stderr, res.stderr
    assert "Exception ignored" not in res.stderr and "Traceback" not in res.stderr, res.stderr
