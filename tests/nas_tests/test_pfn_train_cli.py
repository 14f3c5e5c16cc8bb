"""``nas pfn train`` off a terminal and in the background: a loss
line at least every NAS_PROGRESS_EVERY_S seconds (10 by default) however many steps that is;
SIGINT (ignored by a background job unless handled) and SIGTERM end it with a checkpoint of the
last whole step, the ``--resume`` line and exit 130/143; the resume line continues it."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--batch", "4", "--d-model", "16", "--layers", "1", "--threads", "1", "--no-progress",
        "--log-every", "1000000"]  # no step-count lines: every loss line is a timed one


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NAS_PROGRESS_EVERY_S": "0.3"}
    # SIGINT ignored, as `cmd &` in a script starts it: the command must handle it itself
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "nas", *args])
    return subprocess.Popen(["bash", "-c", f"trap '' INT; exec {cmd}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _stop_after_loss_lines(proc: subprocess.Popen[str], n: int, sig: int) -> tuple[int, str]:
    import threading

    assert proc.stderr is not None
    guard = threading.Timer(120, proc.kill)  # a run that logs nothing or ignores the signal
    guard.start()
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if sum(" loss " in x for x in seen) >= n:
                break
        proc.send_signal(sig)
        _, rest = proc.communicate()
    finally:
        guard.cancel()
    return proc.returncode, "".join(seen) + rest


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_and_prints_the_resume_line(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "ck"
    proc = _start(["pfn", "train", "--out", str(out), "--steps", "1000000", *TINY])
    code, err = _stop_after_loss_lines(proc, 2, sig)
    assert code == 128 + sig, err
    # timed loss lines: step/total, though --log-every is never reached
    assert len(re.findall(r"step \d+/1000000 loss", err)) >= 2, err
    m = re.search(r"nas: interrupted by (\w+): checkpoint at step (\d+) in (.+); resume "
                  r"with: (.+)", err)
    assert m is not None, err
    assert m[1] == signal.Signals(sig).name
    step = int(m[2])
    assert step > 0 and json.loads((out / "config.json").read_text())["step"] == step
    again = shlex.split(m[4])
    assert again[:3] == ["nas", "pfn", "train"] and again[-1] == "--resume"
    assert "--batch" in again and "--threads" in again
    if sig == signal.SIGTERM:  # the printed line resumes it, from that step
        proc = _start([*again[1:], "--no-progress", "--log-every", "1000000"])
        code, err = _stop_after_loss_lines(proc, 1, signal.SIGTERM)
        assert code == 143, err
        later = json.loads((out / "config.json").read_text())["step"]
        assert later > step and f"checkpoint at step {later} in" in err
