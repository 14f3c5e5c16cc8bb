"""Write the race tables of docs/race.md and README.md (and the plot) from a ``nas bench race
--json`` file.

    python benchmarks/race/render.py benchmarks/race/result-seeds5.json --write
    python benchmarks/race/render.py benchmarks/race/result-seeds5.json            # print
    python benchmarks/race/render.py benchmarks/race/result-seeds5.json --overview # README's
    python benchmarks/race/render.py benchmarks/race/result-seeds5.json --plot docs/race.png

``--write`` replaces the blocks between ``<!-- race-tables: FILE -->`` and
``<!-- /race-tables -->`` in docs/race.md and between ``<!-- race-overview: FILE -->`` and
``<!-- /race-overview -->`` in README.md, and names FILE in their opening tags.  The summary
is recomputed from the races; each study's direction is the file's ``directions`` (older files
without it: give the study files after the JSON file)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nas.bench import race_direction, race_markdown, race_overview_markdown, resummarize

ROOT = Path(__file__).resolve().parents[2]
#: (file, tag, overview?) of the blocks that --write replaces
BLOCKS = (("docs/race.md", "race-tables", False), ("README.md", "race-overview", True))


def load(json_path: str | Path, study_files: Sequence[str | Path] = ()) -> dict:
    """The race file with its summary recomputed."""
    doc = json.loads(Path(json_path).read_text())
    directions = dict(doc.get("directions") or {})
    if study_files:
        from nas.config import load_config

        for p in study_files:
            cfg = load_config(p)
            directions[cfg.name] = race_direction(cfg)
    studies = list(dict.fromkeys(r["study"] for r in doc["races"]))
    missing = [s for s in studies if s not in directions]
    if missing:
        raise SystemExit(f"{json_path}: no direction for {', '.join(missing)}; give the study "
                         "files after it")
    return resummarize(doc, {s: directions[s] for s in studies})


def render(json_path: str | Path, study_files: Sequence[str | Path] = (),
           overview: bool = False) -> str:
    doc = load(json_path, study_files)
    return race_overview_markdown(doc) if overview else race_markdown(doc)


def block(text: str, tag: str) -> tuple[str, str, str, str]:
    """(the JSON file named in the opening tag, the block, the text before the opening tag,
    the text from the closing tag on)."""
    head, tail = f"<!-- {tag}: ", f"<!-- /{tag} -->"
    if head not in text or tail not in text:
        raise SystemExit(f"no <!-- {tag}: FILE --> ... {tail} block")
    before, rest = text.split(head, 1)
    name, rest = rest.split(" -->\n", 1)
    inner, after = rest.split(tail, 1)
    return name, inner, before, tail + after


def write(json_path: str | Path, study_files: Sequence[str | Path] = ()) -> list[Path]:
    rel = Path(json_path).resolve().relative_to(ROOT).as_posix()
    done = []
    for doc_file, tag, overview in BLOCKS:
        path = ROOT / doc_file
        _, _, before, after = block(path.read_text(), tag)
        path.write_text(before + f"<!-- {tag}: {rel} -->\n"
                        + render(json_path, study_files, overview) + after)
        done.append(path)
    return done


if __name__ == "__main__":
    args = sys.argv[1:]
    flags = {a for a in args if a in ("--overview", "--write")}
    plot = None
    if "--plot" in args:
        i = args.index("--plot")
        plot = args[i + 1]
        del args[i:i + 2]
    args = [a for a in args if a not in flags]
    if not args:
        raise SystemExit(__doc__)
    if plot is not None:
        from nas.bench import plot_races

        plot_races(load(args[0], args[1:]), plot)
        print(f"wrote {plot}", file=sys.stderr)
    if "--write" in flags:
        for p in write(args[0], args[1:]):
            print(f"wrote {p.relative_to(ROOT)}", file=sys.stderr)
    elif plot is None:
        sys.stdout.write(render(args[0], args[1:], overview="--overview" in flags))
