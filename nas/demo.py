"""The ``make demo`` job (``python -m nas.demo``): an end-to-end tour of the study database
that needs no data download and no GPU.

1. generates a small, seeded curve file (``out/demo/curves.npz``: 60 synthetic learning
   curves of 3 tasks, some ending early);
2. imports it as study ``demo-curves`` into the storage (``--storage``, else ``$NAS_STORAGE``,
   else ``sqlite:///nas.db`` in the working directory), replacing an earlier demo import so
   that a re-run gives the same result;
3. prints the studies and the leaderboard (the 5 best trials), as ``nas studies`` and
   ``nas trials demo-curves --top 5`` would;
4. writes the best trial's curve plot to ``out/demo/best_curve.png``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["DEMO_STUDY", "main"]

DEMO_STUDY = "demo-curves"
log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code (2 on a user error, e.g. an unusable --storage)."""
    parser = argparse.ArgumentParser(prog="python -m nas.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--storage", default=None, help="database URL (default: sqlite:///nas.db)")
    parser.add_argument("--out", default="out/demo", help="folder for the curve file and plot")
    args = parser.parse_args(argv)

    from nas.cli import main as cli_main
    from nas.cli import plot_curve
    from nas.curvefile import save_curves
    from nas.errors import NasError
    from nas.storage import Storage, import_curves
    from nas.testing.storage import synthetic_study_curves

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        curves = out / "curves.npz"
        save_curves(curves, synthetic_study_curves(n=60, horizon=25, seed=7,
                                               tasks=("parity", "copy", "lorenz96")))
        st = Storage.open(args.storage, create=True)
        if DEMO_STUDY in st.study_names():
            st.delete_study(DEMO_STUDY)
        res = import_curves(st, curves, DEMO_STUDY)
        print(f"[1/3] generated {curves} and imported {res.trials} curves ({res.points} points) "
              f"into study {DEMO_STUDY!r} in {st.masked_url} ({res.seconds:.2f} s)")
        storage_args = ["--storage", st.url]
        print("[2/3] nas studies; nas trials demo-curves --top 5")
        sys.stdout.flush()
        for cmd in (["studies"], ["trials", DEMO_STUDY, "--top", "5"]):
            code = cli_main(cmd + storage_args)
            if code:
                return code
        rec = st.get_study(DEMO_STUDY)
        best = st.trial_rows(rec.id, sort="value", direction=rec.direction, limit=1)[0]
        tid = st.trial_id(rec.id, best["number"])
        png = out / "best_curve.png"
        plot_curve(png, st.curve_points(tid), title=f"{DEMO_STUDY}: best trial {best['number']}",
                   direction=rec.direction)
        print(f"[3/3] wrote the best trial's curve to {png} "
              f"(also: nas curve {DEMO_STUDY} {best['number']} --plot FILE.png)")
    except NasError as exc:
        print(f"nas demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
