"""Two-node Ray cluster (head + one worker, one CPU each, started with `ray start` inside the
private network namespace): `nas run --address` runs a study with trials on both nodes and its
results in PostgreSQL.  Every process is stopped by its PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _run_helpers import descendants, kill_pids, toy_sections, write_study

from nas.storage import Storage

RAY = Path(sys.executable).with_name("ray")


def _private_netns() -> bool:
    # /proc/net/dev lists the interfaces of this process's network namespace
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [ln.split(":")[0].strip() for ln in lines] == ["lo"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"{path.name}: exited {proc.returncode}: {path.read_text()[-2000:]}")
        time.sleep(0.3)
    pytest.fail(f"{path.name}: no {text!r} after {timeout} s")


def _stop(procs: list[subprocess.Popen]) -> None:
    victims: set[int] = set()
    for p in procs:
        victims |= set(descendants(p.pid))
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # `ray start --block` stops its node on SIGTERM
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    kill_pids([p.pid for p in procs] + sorted(victims))


@pytest.mark.skipif(not RAY.exists(), reason="the ray command is not installed")
def test_two_node_cluster_with_postgresql(tmp_path: Path) -> None:
    admin = os.environ.get("NAS_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip(reason="NAS_TEST_POSTGRES_URL is not set (run under .ci/in-netns.sh as root)")
    if not _private_netns():
        pytest.skip(reason="needs a private network namespace (only loopback): unshare -n")
    from nas.testing.storage import postgres_database

    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               HOME=str(tmp_path))
    short = tempfile.mkdtemp(prefix="ncl-", dir="/tmp")
    port = _free_port()
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--block",
              "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []
    try:
        head_log, worker_log = tmp_path / "head.log", tmp_path / "worker.log"
        with open(head_log, "w") as out:
            procs.append(subprocess.Popen(
                [str(RAY), "start", "--head", f"--port={port}", f"--temp-dir={short}",
                 "--include-dashboard=false", *common],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        _wait_for(head_log, "Ray runtime started", procs[0])
        with open(worker_log, "w") as out:
            procs.append(subprocess.Popen(
                [str(RAY), "start", f"--address=127.0.0.1:{port}", *common],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        _wait_for(worker_log, "Ray runtime started", procs[1])

        path = write_study(tmp_path / "s.toml", toy_sections(
            "cluster", trials=6, policy="none", max_epochs=3, epoch_s=1.0))
        with postgres_database(admin) as url:
            run = subprocess.run(
                [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())",
                 "run", str(path), "--address", f"127.0.0.1:{port}", "--storage", url,
                 "--json"],
                check=False, env=env, cwd=tmp_path, capture_output=True, text=True,
                timeout=300)
            assert run.returncode == 0, run.stderr[-3000:]
            doc = json.loads(run.stdout)
            assert doc["trials"] == {"COMPLETE": 6}
            assert "***" in doc["storage"] or "@" not in doc["storage"] or \
                ":" not in doc["storage"].split("@")[0].split("//")[-1]
            st = Storage(url)
            trials = st.trials(st.get_study("cluster").id, with_curves=True)
            assert len(trials) == 6 and all(len(t.curve or []) == 3 for t in trials)
            nodes = {t.node for t in trials}
            assert None not in nodes
            assert len(nodes) == 2, f"trials ran on {nodes}"  # both the head and the worker
    finally:
        _stop(procs)
        shutil.rmtree(short, ignore_errors=True)
