"""`nas dashboard` in a real headless browser (Debian's Chromium, ``--dump-dom`` and
``--screenshot``): the pages of a database written by a real small `nas run`, the plots drawn
by Plotly (SVG in the rendered DOM), live polling, and the XSS case.

Chromium is installed by ``.ci/run``; without it these tests are skipped, saying so.  The run
uses the session's Ray runtime: run inside ``unshare -n bash .ci/in-netns.sh`` like
``make test``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _dashboard_helpers import XSS, build_db, chrome, chromium, plot_geometry, running_dashboard
from _run_helpers import toy_sections, write_study

from nas.storage import Storage

pytestmark = pytest.mark.skipif(
    chromium() is None,
    reason="Chromium is not installed: apt-get install -y chromium chromium-driver "
           "(.ci/run installs it in CI)")


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory, ray_runtime: None) -> str:
    """A database written by a real `nas run` of the toy study: predictive stopping with the
    Baker predictor (forecasts and decisions), and some trials that raise (FAILED)."""
    from nas.cli import main

    tmp = tmp_path_factory.mktemp("dash-run")
    url = f"sqlite:///{tmp / 'run.db'}"
    path = write_study(tmp / "s.toml", toy_sections(
        "toy", trials=10, modes=["ok", "raise"], policy="predictive", max_epochs=8,
        extra={"stopping": {"predictor": "baker", "min_epochs": 2, "delta": 0.3}}))
    assert main(["run", str(path), "--storage", url, "--quiet",
                 "--ray-results", str(tmp / "ray")]) == 0
    return url


def _plot(dom: str, plot_id: str) -> str:
    """The rendered content of the plot div ``plot_id`` (up to the next plot div)."""
    start = dom.index(f'id="{plot_id}"')
    nxt = dom.find("data-plot=", dom.index("data-plot=", start) + 10)
    return dom[start: nxt if nxt > 0 else len(dom)]


def test_pages_of_a_real_run_in_chromium(run_db: str, tmp_path: Path) -> None:
    st = Storage(run_db)
    rec = st.get_study("toy")
    trials = st.trials(rec.id)
    assert len(trials) == 10
    with_forecasts = [t for t in trials if st.forecasts(t.id)]
    assert with_forecasts, "the run stored no forecasts"
    pick = max(with_forecasts, key=lambda t: (t.state == "STOPPED", len(st.forecasts(t.id))))
    with running_dashboard(run_db) as base:
        studies = chrome(base)
        assert len(re.findall(r'<tr class="study-row">', studies)) == 1
        assert f'href="/study/{rec.id}">toy</a>' in studies

        page = chrome(f"{base}study/{rec.id}", budget_ms=12000)
        rows = re.findall(r'<tr class="trial-row state-(\w+)">', page)
        assert len(rows) == 10
        assert sorted(rows) == sorted(t.state.lower() for t in trials)
        for plot_id in ("plot-progress", "plot-walltime", "plot-importance"):
            drawn = _plot(page, plot_id)
            assert 'class="main-svg"' in drawn and "data-error" not in drawn, plot_id
        assert 'data-plots-drawn="1"' in page
        # the page polled (twice in 12 s of virtual time): JS replaced the server's stamp
        stamp = re.search(r'<time id="updated">([^<]*)</time>', page)
        assert stamp and not stamp.group(1).endswith("UTC"), stamp
        assert re.search(r'<span id="live-state"></span>', page)
        # stopped and completed trials are drawn as separate, differently coloured traces
        legend = _plot(page, "plot-progress")
        assert "complete" in legend and "best so far" in legend

        trial = chrome(f"{base}study/{rec.id}/trial/{pick.number}")
        drawn = _plot(trial, "plot-trial")
        assert 'class="main-svg"' in drawn and "forecast of step 8 (mean, q05-q95)" in drawn
        assert '<tr class="decision' in trial
        # where it ran: the worker's device and torch threads, through Ray and the writer
        assert re.search(r'id="trial-where">ran on <b>cpu</b>, \d+ torch threads?', trial)
        doc = st.trials(rec.id)[0]
        assert doc.device == "cpu" and isinstance(doc.threads, int) and doc.threads >= 1
        shot = tmp_path / "trial.png"
        chrome(f"{base}study/{rec.id}/trial/{pick.number}", screenshot=shot)
        study_shot = tmp_path / "study.png"
        chrome(f"{base}study/{rec.id}", screenshot=study_shot)
        for p in (shot, study_shot):
            data = p.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, p

        failed = [t for t in trials if t.state == "FAILED"]
        if failed:
            dom = chrome(f"{base}study/{rec.id}/trial/{failed[0].number}")
            assert 'id="trial-error"' in dom


def test_xss_study_name_renders_as_text_in_chromium(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    ids = build_db(url, tmp_path)
    with running_dashboard(url) as base:
        for path in ("", f"study/{ids['xss']}", f"study/{ids['xss']}/trial/0",
                     f"study/{ids['live']}/trial/5"):
            dom = chrome(base + path)
            assert "<img" not in dom and "<script>alert" not in dom, path  # no element made
            assert "onerror=alert(1)&gt;" in dom or "&lt;script&gt;" in dom, path
        dom = chrome(base)
        assert "&lt;img src=x onerror=alert(1)&gt;</a>" in dom
        assert XSS not in dom
        shot = tmp_path / "xss.png"
        chrome(base + f"study/{ids['xss']}", screenshot=shot)
        assert shot.stat().st_size > 5_000


def _overlap(a: list[float] | None, b: list[float] | None) -> bool:
    return a is not None and b is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] \
        and b[1] < a[3]


def _inside(a: list[float] | None, b: list[float] | None) -> bool:
    return a is not None and b is not None and a[0] >= b[0] - 0.5 and a[1] >= b[1] - 0.5 \
        and a[2] <= b[2] + 0.5 and a[3] <= b[3] + 0.5


@pytest.mark.parametrize("width", [1280, 700])
def test_titles_and_legends_are_visible(tmp_path: Path, width: int) -> None:
    """Measured in the rendered page (DOM boxes): every plot's title and
    legend lie inside the plot's box, the toolbar covers neither, the legend covers no axis
    title nor the plot area, at a wide and a narrow window."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    ids = build_db(url, tmp_path)
    with running_dashboard(url) as base:
        study = plot_geometry(f"{base}study/{ids['live']}", width=width)
        trial = plot_geometry(f"{base}study/{ids['live']}/trial/3", width=width)
    plots = {**study, **trial}
    assert set(plots) == {"plot-progress", "plot-walltime", "plot-importance", "plot-trial"}
    for name, g in plots.items():
        assert g["title"] is not None and _inside(g["title"], g["div"]), (name, g)
        assert g["modebar"] is not None and not _overlap(g["title"], g["modebar"]), (name, g)
        for axis in ("xtitle", "ytitle"):
            if g[axis] is not None:
                assert _inside(g[axis], g["div"]), (name, axis, g)
                assert not _overlap(g[axis], g["modebar"]), (name, axis, g)
        if name == "plot-importance":
            continue  # one bar trace: no legend
        assert g["legend"] is not None and _inside(g["legend"], g["div"]), (name, g)
        for other in ("title", "modebar", "xtitle", "ytitle", "area"):
            assert not _overlap(g["legend"], g[other]), (name, other, g)
        assert g["legend_items"] and all(_inside(i, g["legend"]) for i in g["legend_items"])
    # the forecasts of the final step are drawn at that step, each saying when it was made
    (fc,) = [t for t in plots["plot-trial"]["data"] if t["name"].startswith("forecast of step")]
    assert all(9.5 <= x <= 10.5 for x in fc["x"]) and len(fc["x"]) == 3
    assert [t.split("<br>")[0] for t in fc["text"]] == [
        f"forecast made after step {s} of step 10" for s in (2, 3, 4)]
