"""Record families (c) and (d) of the early-stopping benchmarks: nas's own learning curves.

Runs study files of ``benchmarks/corpus/`` (seq_cells, random sampler, policy "none") into one
SQLite database, exports every study's curves with ``nas export --format npz`` and joins them
into one curve file (one task group per study):

* ``--family c`` (the default): 150 trials x 15 epochs on digits, parity, copy and
  delayed_match (``corpus/<task>.toml``) -> ``benchmarks/data/nas_corpus.npz``;
* ``--family d``: 30 epochs on lorenz96 (its validation MSE, minimised), regular_language and
  hmm (``corpus/d_<task>.toml``) -> ``benchmarks/data/nas_corpus_d.npz``.

    unshare -n bash .ci/in-netns.sh .venv/bin/python benchmarks/record_corpus.py [--family d]

Studies run one after the other; each resumes if it was cut short (``--resume``), and the curve
file is rewritten after every finished study, so a partial recording still yields the finished
tasks.  ``--trials N`` overrides the study files' trial count (a resumed study runs up to N).

A minimised objective (lorenz96's MSE) is mapped per group to [0, 1], higher better, the way
``taskset_dev.npz`` maps its losses: y = clip((L_ref - L) / (L_ref - min L), 0, 1), where
L_ref is the loss of the task's reference forecast (the validation split's ``reference_mse``:
lorenz96's persistence forecast, the zero of its skill) or, for a task without one, the
group's largest recorded loss, and min L the smallest loss recorded in the group.  So 0 is "no
better than the reference" and 1 the group's best value.  The raw values stay in
``raw_curves``, L_ref in ``reference`` and min L in ``best_raw`` (per curve).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
NAS = [sys.executable, "-m", "nas"] if (ROOT.parent / "nas" / "__main__.py").exists() else [
    str(Path(sys.executable).with_name("nas"))]
#: the study files of (d) name a task of this directory (benchmarks.corpus_tasks): the nas
#: processes and Ray's workers import it from the repository root
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(ROOT.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}

#: family -> (study files in corpus/ (stems), database, curve file)
FAMILIES = {
    "c": (["digits", "parity", "copy", "delayed_match"], "nas_corpus.db", "nas_corpus.npz"),
    "d": (["d_lorenz96", "d_regular_language", "d_hmm"], "nas_corpus_d.db", "nas_corpus_d.npz"),
}


if str(ROOT.parent) not in sys.path:  # nas and benchmarks.corpus_tasks, as in ENV
    sys.path.insert(0, str(ROOT.parent))

from nas.config import load_config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=sorted(FAMILIES), default="c")
    ap.add_argument("--db", default=None, help="Recording database (default: per family).")
    ap.add_argument("--out", default=None, help="Curve file (default: per family).")
    ap.add_argument("--studies", "--tasks", nargs="*", default=None, dest="studies",
                    help="Study files of benchmarks/corpus/ by stem (default: the family's).")
    ap.add_argument("--trials", type=int, default=None, help="Override search.trials.")
    ap.add_argument("--retries", type=int, default=3,
                    help="Resume a study this many times after nas run fails.")
    ap.add_argument("--export-only", action="store_true", help="Only export and join.")
    args = ap.parse_args()
    stems, db_name, out_name = FAMILIES[args.family]
    stems = args.studies or stems
    db = Path(args.db or ROOT / "data" / db_name)
    out = Path(args.out or ROOT / "data" / out_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{db}"
    parts: list[tuple[Path, str, Path]] = []
    for stem in stems:
        study_file = ROOT / "corpus" / f"{stem}.toml"
        study = load_config(study_file).study.name
        group = stem.removeprefix(f"{args.family}_")
        for attempt in range(0 if args.export_only else args.retries + 1):
            have = subprocess.run([*NAS, "studies", "--storage", storage, "--json"],
                                  capture_output=True, text=True, check=False, env=ENV)
            resume = db.exists() and f'"{study}"' in have.stdout
            cmd = [*NAS, "run", str(study_file), "--storage", storage]
            if args.trials is not None:
                cmd += ["--trials", str(args.trials)]
            rc = subprocess.run(cmd + (["--resume"] if resume else []), check=False,
                                env=ENV).returncode
            if rc == 0:
                break
            # e.g. Ray's memory monitor killed workers on a crowded machine: go on where it was
            print(f"{study}: nas run exited with {rc} (attempt {attempt + 1}); resuming",
                  file=sys.stderr)
        else:
            if not args.export_only:
                raise SystemExit(f"{study}: nas run failed {args.retries + 1} times")
        part = out.with_name(f"{out.stem}_{group}.npz")  # joined, then removed
        subprocess.run([*NAS, "export", study, "--storage", storage,
                        "--format", "npz", "-o", str(part)], check=True, env=ENV)
        parts.append((part, group, study_file))
        join(parts, out)  # after every study: a cut-short recording keeps the finished ones
    for part, _, _ in parts:
        part.unlink()
    return 0


def reference_loss(study_file: Path) -> float | None:
    """The loss of the task's reference forecast on the validation split (its
    ``reference_mse``, e.g. lorenz96's persistence forecast), None when the task has none."""
    from nas.registry import create

    cfg = load_config(study_file)
    task = create("task", cfg.task.name, dict(cfg.task.options))
    val = task.data(int(cfg.study.seed))[1]
    ref = getattr(val, "reference_mse", None)
    return None if ref is None else float(ref)


def to_unit(curves: np.ndarray, ref: float | None) -> tuple[np.ndarray, float, float]:
    """Losses of one group -> [0, 1], higher better (module docstring); NaN stays NaN."""
    finite = curves[np.isfinite(curves)]
    best = float(finite.min())
    ref = float(finite.max()) if ref is None else ref
    if not ref > best:
        raise ValueError(f"reference loss {ref} is not above the best loss {best}")
    with np.errstate(invalid="ignore"):
        y = np.clip((ref - curves) / (ref - best), 0.0, 1.0)
    return y, ref, best


def join(parts: list[tuple[Path, str, Path]], out: Path) -> None:
    """One curve file from the per-study exports: per-curve arrays concatenated, a ``task``
    group per study, file-level entries (feature names) from the first export; minimised
    studies mapped to [0, 1] higher better (module docstring)."""
    files = [dict(np.load(p, allow_pickle=False)) for p, _, _ in parts]
    width = max(f["curves"].shape[1] for f in files)
    for f in files:  # a study whose trials all ended early exports narrower curves
        c = f["curves"]
        f["curves"] = np.pad(c, ((0, 0), (0, width - c.shape[1])), constant_values=np.nan)
    extra: dict[str, list[np.ndarray]] = {"raw_curves": [], "reference": [], "best_raw": []}
    minimised = False
    for f, (_, group, study_file) in zip(files, parts):
        n = f["curves"].shape[0]
        raw = f["curves"].astype(np.float64)
        ref = best = np.nan
        if str(f.get("direction", "maximize")) == "minimize":
            minimised = True
            f["curves"], ref, best = to_unit(raw, reference_loss(study_file))
            f["direction"] = np.asarray("maximize")
            print(f"{group}: minimised objective mapped to [0, 1]: reference loss {ref:.4g}, "
                  f"best {best:.4g}")
        extra["raw_curves"].append(raw)
        extra["reference"].append(np.full(n, ref))
        extra["best_raw"].append(np.full(n, best))
    keys = set.intersection(*(set(f) for f in files))
    joined: dict[str, np.ndarray] = {}
    for k in sorted(keys):
        first = files[0][k]
        per_curve = first.ndim >= 1 and first.shape[0] == files[0]["curves"].shape[0]
        if not per_curve:
            joined[k] = first
            continue
        joined[k] = np.concatenate([f[k] for f in files])
    joined["task"] = np.concatenate([np.full(f["curves"].shape[0], group)
                                     for f, (_, group, _) in zip(files, parts)])
    if minimised:  # (c) keeps exactly the arrays it always had
        joined.update({k: np.concatenate(v) for k, v in extra.items()})
    np.savez_compressed(out, **joined)
    print(f"wrote {out}: {sum(len(f['curves']) for f in files)} curves from {len(files)} studies")


if __name__ == "__main__":
    raise SystemExit(main())
