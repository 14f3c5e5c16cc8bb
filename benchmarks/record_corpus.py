"""Record family (c) of the early-stopping benchmarks: nas's own learning curves.

Runs the study files in ``benchmarks/corpus/`` (seq_cells, random sampler, policy "none",
150 trials x 15 epochs on digits, parity, copy and delayed_match) into one SQLite database and
exports every study's curves with ``nas export --format npz``, then joins them into
``benchmarks/data/nas_corpus.npz`` (one task group per study).

    unshare -n bash .ci/in-netns.sh .venv/bin/python benchmarks/record_corpus.py

Each study resumes if it was cut short (``--resume``).  About an hour on 2 CPUs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
NAS = [sys.executable, "-m", "nas"] if (ROOT.parent / "nas" / "__main__.py").exists() else [
    str(Path(sys.executable).with_name("nas"))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default=str(ROOT / "data" / "nas_corpus.db"))
    ap.add_argument("--out", default=str(ROOT / "data" / "nas_corpus.npz"))
    ap.add_argument("--tasks", nargs="*", default=["digits", "parity", "copy", "delayed_match"])
    ap.add_argument("--export-only", action="store_true", help="Only export and join.")
    args = ap.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{args.db}"
    parts = []
    for task in args.tasks:
        study = ROOT / "corpus" / f"{task}.toml"
        if not args.export_only:
            have = subprocess.run([*NAS, "studies", "--storage", storage, "--json"],
                                  capture_output=True, text=True)
            resume = Path(args.db).exists() and f'"corpus_{task}"' in have.stdout
            cmd = [*NAS, "run", str(study), "--storage", storage]
            subprocess.run(cmd + (["--resume"] if resume else []), check=True)
        part = Path(args.out).with_name(f"nas_corpus_{task}.npz")  # joined, then removed
        subprocess.run([*NAS, "export", f"corpus_{task}", "--storage", storage,
                        "--format", "npz", "-o", str(part)], check=True)
        parts.append(part)
    join(parts, Path(args.out))
    for part in parts:
        part.unlink()
    return 0


def join(parts: list[Path], out: Path) -> None:
    """One curve file from the per-study exports: per-curve arrays concatenated, a ``task``
    group per study (the file name's task), file-level entries (feature names, direction) from
    the first export."""
    files = [dict(np.load(p, allow_pickle=False)) for p in parts]
    keys = set.intersection(*(set(f) for f in files))
    joined: dict[str, np.ndarray] = {}
    for k in sorted(keys):
        first = files[0][k]
        per_curve = first.ndim >= 1 and first.shape[0] == files[0]["curves"].shape[0]
        if not per_curve:
            joined[k] = first
            continue
        joined[k] = np.concatenate([f[k] for f in files])
    joined["task"] = np.concatenate([
        np.full(f["curves"].shape[0], p.stem.removeprefix("nas_corpus_")) for f, p in zip(files, parts)])
    np.savez_compressed(out, **joined)
    print(f"wrote {out}: {sum(len(f['curves']) for f in files)} curves from {len(files)} studies")

if __name__ == "__main__":
    raise SystemExit(main())
