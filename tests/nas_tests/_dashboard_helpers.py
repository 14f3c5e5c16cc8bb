"""Databases and a real server for the dashboard tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nas.cli import main
from nas.curvefile import save_curves
from nas.storage import Storage
from nas.testing.storage import synthetic_study_curves

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('x')</script>"


def _optuna_payload(params: dict[str, Any]) -> dict[str, Any]:
    """trials.distributions as the runner writes it: the params and their Optuna distributions."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        distribution_to_json,
    )

    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True),
             "cell": CategoricalDistribution(["gru", "lstm", SCRIPT])}
    return {"params": params, "distributions": {k: distribution_to_json(d)
                                                for k, d in dists.items()}}


def build_db(url: str, tmp: Path) -> dict[str, int]:
    """Study 'syn' (30 curves imported with `nas import`), study 'live' (minimize, Optuna
    distributions, forecasts, STOP/CONTINUE decisions with and without a threshold, a FAILED
    trial with a hostile error) and a study named like an XSS payload.  Returns study ids."""
    src = tmp / "syn.npz"
    save_curves(src, synthetic_study_curves(n=30, horizon=10, seed=4))
    assert main(["import", str(src), "--study", "syn", "--storage", url]) == 0
    st = Storage(url)
    sid = st.create_study("live", space="seq_cells", task="parity",
                          objectives=[{"name": "val_loss", "direction": "minimize"}],
                          config={"training": {"max_epochs": 10}})
    import random

    rng = random.Random(0)
    for n in range(12):
        cell = ["gru", "lstm", SCRIPT][n % 3]
        lr = 10 ** rng.uniform(-4, -1)
        params = {"lr": lr, "cell": cell}
        tid = st.create_trial(sid, n, config={"cell": cell, "lr": lr, "hidden": 32},
                              distributions=_optuna_payload(params))
        final = 0.2 + 0.05 * n + (0.1 if cell == "lstm" else 0.0)
        epochs = 10 if n % 4 != 3 else 4
        st.add_points(tid, [(s, final + 0.5 / s, float(s)) for s in range(1, epochs + 1)])
        if n % 4 == 3:  # stopped after a forecast that could not beat the best
            for s in range(2, epochs + 1):
                st.add_forecast(tid, s, predictor="baker", horizon=10, mean=final + 0.05,
                                q05=final - 0.02, q50=final + 0.05, q95=final + 0.12,
                                p_improve=0.3 / s)
                last = s == epochs
                st.add_decision(tid, s, policy="predictive", action="STOP" if last else "CONTINUE",
                                reason=(f"P(improve)={0.3 / s:.3f} < 0.1 {SCRIPT}" if last
                                        else "still plausible"),
                                threshold=0.25 if s % 2 == 0 else None)
            st.finish_trial(tid, state="STOPPED", value=final + 0.5 / epochs)
        elif n == 5:
            st.finish_trial(tid, state="FAILED", error=f"RuntimeError: boom {SCRIPT}")
        else:
            st.finish_trial(tid, state="COMPLETE", value=final + 0.05)
    xid = st.create_study("xss", space=XSS, task=SCRIPT,
                          objectives=[{"name": "acc", "direction": "maximize"}], config={})
    # nas refuses such a name (one study-name rule), but a database written by an older nas or
    # another tool can hold one: the dashboard must still render it as text
    from sqlalchemy import text

    with st.transaction("naming the XSS study") as conn:
        conn.execute(text("UPDATE studies SET name = :n WHERE id = :i"), {"n": XSS, "i": xid})
    t0 = st.create_trial(xid, 0, config={"cell": XSS, "note": SCRIPT}, distributions={})
    st.add_points(t0, [(1, 0.1, 1.0), (2, 0.2, 2.0)])
    st.finish_trial(t0, state="FAILED", error=XSS)
    out = {"syn": st.get_study("syn").id, "live": sid, "xss": xid}
    st.close()
    return out


@contextmanager
def running_dashboard(url: str, *extra: str, timeout: float = 60.0) -> Iterator[str]:
    """`nas dashboard --storage URL --port 0` as a real process (the console script's main);
    yields its base URL (read from its startup line) and stops it by its PID afterwards."""
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from nas.cli import _console_main; _console_main()",
         "dashboard", "--storage", url, "--port", "0", *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        deadline = time.monotonic() + timeout
        base = None
        lines = []
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r" at (http://\S+/) ", line)
            if m:
                base = m.group(1)
                break
        if base is None:
            raise AssertionError(f"the dashboard did not start: {''.join(lines)}")
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chrome(url: str, *, screenshot: Path | None = None,
           budget_ms: int = 5000) -> str:
    """Load ``url`` in headless Chromium, let its scripts run ``budget_ms`` of virtual time,
    and return the rendered DOM (``--dump-dom``) or write ``screenshot``."""
    exe = chromium()
    assert exe is not None
    profile = tempfile.mkdtemp(prefix="nas-chrome-")
    args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}", "--hide-scrollbars"]
    if screenshot is not None:
        args += [f"--screenshot={screenshot}", "--window-size=1280,900"]
    else:
        args += ["--dump-dom"]
    try:
        res = subprocess.run([*args, url], capture_output=True, text=True, timeout=120,
                             check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


#: The boxes (CSS pixels) of each drawn plot's parts, measured in the page by Chromium.
_GEOMETRY_JS = r"""
(function () {
  function box(el) {
    if (!el) { return null; }
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 ? [r.left, r.top, r.right, r.bottom] : null;
  }
  function all(root, sel) { return Array.from(root.querySelectorAll(sel)).map(box).filter(Boolean); }
  const out = {};
  document.querySelectorAll("[data-plot]").forEach(function (el) {
    out[el.id] = {div: box(el), title: box(el.querySelector(".gtitle")),
      modebar: box(el.querySelector(".modebar")), legend: box(el.querySelector("g.legend")),
      xtitle: box(el.querySelector(".g-xtitle")), ytitle: box(el.querySelector(".g-ytitle")),
      area: box(el.querySelector(".nsewdrag")),
      legend_items: all(el, "g.legend g.traces"),
      data: (el.data || []).map(function (t) {
        return {name: t.name, x: t.x, text: t.text}; })};
  });
  return JSON.stringify({drawn: document.body.getAttribute("data-plots-drawn"), plots: out});
})()
"""


def plot_geometry(url: str, *, width: int = 1280, height: int = 900,
                  timeout_s: float = 60.0) -> dict[str, Any]:
    """Load ``url`` in headless Chromium driven over the DevTools protocol (``--remote-debugging
    -pipe``: JSON messages on file descriptors 3 and 4, no extra package), wait until the page
    says its plots are drawn, and return the bounding boxes of each plot's title, toolbar,
    legend, axis titles and plot area (``[left, top, right, bottom]``, None when absent), and
    its traces' names, x and hover texts."""
    import json
    import select

    exe = chromium()
    assert exe is not None
    profile = tempfile.mkdtemp(prefix="nas-chrome-")
    import fcntl

    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    for_child = []
    for fd in (to_chrome_r, from_chrome_w):  # above 4, so that `3<&r 4>&w` cannot clash
        for_child.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    to_chrome_r, from_chrome_w = for_child

    args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--hide-scrollbars", f"--window-size={width},{height}", "--remote-debugging-pipe",
            "about:blank"]
    # Chromium reads our messages on its fd 3 and answers on its fd 4: the shell puts the
    # pipes there (bash: dash refuses fds above 9; no preexec_fn, unsafe with threads)
    proc = subprocess.Popen(
        ["bash", "-c", f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}', *args],
        pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    buf = b""
    ids = iter(range(1, 10**6))
    deadline = time.monotonic() + timeout_s

    def call(method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        nonlocal buf
        mid = next(ids)
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(to_chrome_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in buf:
                left = deadline - time.monotonic()
                assert left > 0, f"Chromium did not answer {method} in time"
                ready, _, _ = select.select([from_chrome_r], [], [], left)
                if ready:
                    chunk = os.read(from_chrome_r, 1 << 16)
                    assert chunk, "Chromium closed the DevTools pipe"
                    buf += chunk
            raw, buf = buf.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == mid:
                assert "error" not in answer, answer
                return dict(answer["result"])

    try:
        target = call("Target.createTarget", url=url)["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        while True:
            res = call("Runtime.evaluate", session, expression=_GEOMETRY_JS, returnByValue=True)
            value = res["result"].get("value")  # none while the page has no body yet
            doc = json.loads(value) if isinstance(value, str) else {}
            if doc.get("drawn") == "1":
                return dict(doc["plots"])
            assert time.monotonic() < deadline, f"the plots of {url} were not drawn in time"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        shutil.rmtree(profile, ignore_errors=True)
