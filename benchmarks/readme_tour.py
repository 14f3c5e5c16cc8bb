"""The README's first hour, scripted: run the command-line tour and the Python snippet exactly
as the README writes them, after ``make demo``, and report each command's exit code and time.

Usage (from a clone)::

    python benchmarks/readme_tour.py --fresh         # git clone this checkout, make demo, tour
    python benchmarks/readme_tour.py                 # here, where `make demo` already ran
    python benchmarks/readme_tour.py --quick         # skip the slow lines (evaluate, bench
                                                     # overhead, pfn train): a minute, not ten

Run it once per ``make demo``: the tour imports a study ``recorded`` into ``demo.db``, which a
second run finds already there (``make demo`` starts a fresh ``demo.db``).

Every line of the tour's code block runs in one bash session (so ``source .venv/bin/activate``
and ``export`` carry over), in the clone's directory; the Python block runs with the clone's
``.venv/bin/python``.  A line fails when it exits non-zero or prints a traceback; the Python
block also fails on Ray's ``PlacementGroupResourceManager.__del__`` noise at exit.  Exit code:
0 when every line passed, 1 otherwise.  Run it as root inside ``unshare -n`` (``make demo``
does that itself) or on a machine where Ray may bind its ports.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW = ("nas evaluate", "nas bench overhead", "nas pfn train", "nas bench race")
SERVERS = ("nas dashboard",)  # run until stopped: started, probed over HTTP, then stopped
NOISE = ("Traceback (most recent call last)", "PlacementGroupResourceManager.__del__",
         "internal error")


def blocks(readme: str) -> tuple[list[str], str]:
    """The tour's command lines (comments stripped) and the Python section's code block."""
    tour = readme.split("## A tour of the command line", 1)[1]
    code = re.search(r"```bash\n(.*?)```", tour, re.DOTALL)
    py_sec = readme.split("\n## Python\n", 1)[1]
    py = re.search(r"```python\n(.*?)```", py_sec, re.DOTALL)
    if code is None or py is None:
        raise SystemExit("readme_tour: the README has no tour or no Python block")
    lines = []
    for raw in code.group(1).splitlines():
        line = raw.split("  #", 1)[0].strip() if "  #" in raw else raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines, py.group(1)


def run_tour(clone: Path, quick: bool) -> list[dict[str, object]]:
    lines, py = blocks((clone / "README.md").read_text())
    results: list[dict[str, object]] = []
    prelude: list[str] = []
    for line in lines:
        if quick and line.startswith(SLOW):
            results.append({"line": line, "rc": None, "s": 0.0, "note": "skipped (--quick)"})
            continue
        if line.startswith(("source ", "export ")):
            prelude.append(line)
        script = "set -e\n" + "\n".join(prelude) + ("\n" + line if line not in prelude else "")
        t0 = time.monotonic()
        if line.startswith(SERVERS):
            res = _serve(script, clone)
        else:
            res = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True,
                                 text=True, check=False)
        results.append(_result(line, res, t0))
    t0 = time.monotonic()
    res = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", py], cwd=clone,
                         capture_output=True, text=True, check=False)
    results.append(_result("README Python block", res, t0))
    return results


def _serve(script: str, clone: Path, url: str = "http://127.0.0.1:8080/",
           timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Start a server line, wait until ``url`` answers 200, stop it (by its PID): rc 0 when it
    answered, 1 when it exited or never answered."""
    import urllib.request

    proc = subprocess.Popen(["bash", "-c", script], cwd=clone,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    rc, deadline = 1, time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    rc = 0
                    break
        except OSError:
            time.sleep(0.5)
    if proc.poll() is None:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, rc, out, err)


def _result(line: str, res: subprocess.CompletedProcess[str], t0: float) -> dict[str, object]:
    noise = [n for n in NOISE if n in res.stderr]
    last = (res.stderr.strip().splitlines() or [""])[-1]
    rc = res.returncode or (1 if noise else 0)
    return {"line": line, "rc": rc, "s": round(time.monotonic() - t0, 1),
            "note": ", ".join(noise) or (last if rc else "")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fresh", action="store_true", help="clone this checkout, run make demo")
    ap.add_argument("--quick", action="store_true", help="skip " + ", ".join(SLOW))
    ap.add_argument("--clone", type=Path, default=None, help="where (default: here, or a "
                    "temporary directory with --fresh)")
    args = ap.parse_args(argv)
    clone = args.clone or ROOT
    made = None
    if args.fresh:
        made = Path(tempfile.mkdtemp(prefix="nas-tour-"))
        clone = args.clone or made / "nas"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["make", "demo"], cwd=clone, check=True)
    elif not (clone / "demo.db").exists():
        print(f"readme_tour: {clone}/demo.db is missing; run `make demo` first (or --fresh)",
              file=sys.stderr)
        return 2
    try:
        results = run_tour(clone, args.quick)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    bad = 0
    for r in results:
        ok = r["rc"] in (0, None)
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {r['s']:>6}s  {r['line']}  {r['note'] or ''}")
    print(f"{len(results) - bad}/{len(results)} passed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
