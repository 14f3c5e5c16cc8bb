"""`nas dashboard`: the HTTP API and the HTML pages on a real database (SQLite, and PostgreSQL
when the test environment starts one), escaping, 404s, read-only routes, the CLI's errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest
from _dashboard_helpers import SCRIPT, XSS, build_db, running_dashboard
from _storage_helpers import storage_url_fixture

from nas.cli import main
from nas.storage import Storage, mask_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from nas.dashboard import create_app, is_loopback
from nas.dashboard._app import plotly_js_path

storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def site(storage_url: str, tmp_path: Path) -> tuple[TestClient, dict[str, int], Storage]:
    ids = build_db(storage_url, tmp_path)
    st = Storage(storage_url)
    return TestClient(create_app(st)), ids, st


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr class="trial-row[^"]*">(.*?)</tr>', html, flags=re.DOTALL)


def _numbers(html: str, sid: int) -> list[int]:
    return [int(n) for n in re.findall(rf'href="/study/{sid}/trial/(\d+)"', html)]


def test_studies_page_and_api(site: Any) -> None:
    client, ids, st = site
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert html.count('class="study-row"') == 3
    for sid in ids.values():
        assert f'href="/study/{sid}"' in html
    assert "30 complete" in html and "stopped" in html
    doc = client.get("/api/studies").json()
    by = {s["name"]: s for s in doc["studies"]}
    assert by["syn"]["trials"] == 30 and by["syn"]["states"] == {"COMPLETE": 30}
    live = by["live"]
    assert live["direction"] == "minimize" and live["states"]["STOPPED"] == 3
    assert live["states"]["FAILED"] == 1 and live["best_value"] == pytest.approx(0.25)
    assert live["false_stops"] == st.false_stops(ids["live"])
    assert live["created"] and live["last_activity"] >= live["created"]
    assert doc["storage"] == st.masked_url


def test_study_page_leaderboard_sort_filter_page(site: Any) -> None:
    client, ids, _ = site
    sid = ids["live"]
    html = client.get(f"/study/{sid}").text
    rows = _rows(html)
    assert len(rows) == 12
    # best first for a minimised objective; trials without a value (FAILED) last
    nums = _numbers(html, sid)
    assert nums[0] == 0 and nums[-1] == 5
    assert "cells=" not in rows[0] and "hidden=32" in rows[0] and "lr=" in rows[0]
    assert "saved <b>" in html  # the epochs saved by stopping
    asc = _numbers(client.get(f"/study/{sid}?sort=number&order=asc").text, sid)
    assert asc == list(range(12))
    desc = _numbers(client.get(f"/study/{sid}?sort=number&order=desc").text, sid)
    assert desc == list(range(11, -1, -1))
    stopped = client.get(f"/study/{sid}?state=STOPPED").text
    assert sorted(_numbers(stopped, sid)) == [3, 7, 11]
    assert "3 trials match" in stopped
    found = client.get(f"/study/{sid}", params={"q": "LSTM"}).text
    assert sorted(_numbers(found, sid)) == [1, 4, 7, 10]
    api = client.get(f"/api/study/{sid}/trials", params={"sort": "value", "state": "COMPLETE"})
    doc = api.json()
    values = [r["value"] for r in doc["rows"]]
    assert values == sorted(values) and doc["total"] == 8
    assert all(r["summary"] for r in doc["rows"])
    # pagination: 30 curves, 50 per page -> 1 page; ask past the end -> empty page
    syn = ids["syn"]
    assert len(_rows(client.get(f"/study/{syn}").text)) == 30
    assert _rows(client.get(f"/study/{syn}?page=2").text) == []
    # nonsense parameters fall back to defaults rather than failing
    assert client.get(f"/study/{sid}?sort=drop&order=x&state=NOPE&page=-3").status_code == 200


def test_study_summary_progress_and_importances(site: Any) -> None:
    client, ids, _ = site
    sid = ids["live"]
    s = client.get(f"/api/study/{sid}").json()
    assert s["trials"] == 12 and s["max_epochs"] == 10
    # 8 complete x 10 + 3 stopped x 4 run, of 11 x 10 without stopping
    assert s["epochs_budget"] == 110 and s["epochs_saved"] == 18
    p = client.get(f"/api/study/{sid}/progress").json()
    assert len(p["number"]) == 11  # the FAILED trial has no value
    best = [b for b in p["best"] if b is not None]
    assert best == sorted(best, reverse=True) and best[-1] == pytest.approx(0.25)
    assert set(p["state"]) == {"COMPLETE", "STOPPED"}
    assert p["colors"]["COMPLETE"] != p["colors"]["STOPPED"]
    assert len(p["time_h"]) == 11 and all(t is not None and t >= 0 for t in p["time_h"])
    imp = client.get(f"/api/study/{sid}/importances").json()
    assert imp["trials"] == 8 and set(imp["params"]) == {"lr", "cell"}
    assert sum(imp["importance"]) == pytest.approx(1.0)
    none = client.get(f"/api/study/{ids['syn']}/importances").json()
    assert none["params"] == [] and "at least 2" in none["note"]


def test_importances_have_per_layer_parameters(tmp_path: Path) -> None:
    """The config's layers, flattened as ``to_pandas()`` does
    (``layer0.cell``), are parameters of the importances; the Optuna parameter that holds the
    same choice (here ``cell`` = ``layer0.cell``) gives way to it, and a layer parameter absent
    from some trials (the second layer) is left out by Optuna's rule."""
    from _dashboard_helpers import _optuna_payload

    from nas.dashboard._data import importances

    st = Storage(f"sqlite:///{tmp_path / 'layers.db'}")
    sid = st.create_study("layered", space="seq_cells", task="parity",
                          objectives=[{"name": "acc", "direction": "maximize"}], config={})
    for n in range(16):
        cell = ["gru", "lstm"][n % 2]
        lr = 10 ** (-4 + 3 * ((n * 7) % 16) / 15)
        layers = [{"cell": cell, "kernel": [3, 5][(n // 2) % 2]}]
        if n % 3 == 0:
            layers.append({"cell": "tcn", "kernel": 3})
        tid = st.create_trial(sid, n, config={"lr": lr, "hidden": 32, "layers": layers},
                              distributions=_optuna_payload({"lr": lr, "cell": cell}))
        st.finish_trial(tid, state="COMPLETE", value=0.5 + (0.3 if cell == "lstm" else 0.0)
                        + 0.01 * (n % 4))
    imp = importances(st, st.get_study("layered"))
    assert imp["trials"] == 16 and imp["note"] == ""
    assert set(imp["params"]) == {"lr", "layer0.cell", "layer0.kernel"}
    by = dict(zip(imp["params"], imp["importance"]))
    assert by["layer0.cell"] == max(by.values())  # the cell decides the value here


def test_trial_page_forecasts_decisions_threshold(site: Any) -> None:
    client, ids, st = site
    sid = ids["live"]
    doc = client.get(f"/api/study/{sid}/trial/7").json()
    assert doc["state"] == "STOPPED" and doc["steps"] == [1, 2, 3, 4]
    assert [f["step"] for f in doc["forecasts"]] == [2, 3, 4]
    f = doc["forecasts"][0]
    assert f["q05"] < f["mean"] < f["q95"]
    ds = doc["decisions"]
    assert [d["action"] for d in ds] == ["CONTINUE", "CONTINUE", "STOP"]
    assert ds[0]["compared_to"] == 0.25 and ds[0]["compared_source"] == "threshold"
    # no stored threshold: the study's best COMPLETE value when the decision was made
    assert ds[1]["compared_source"] == "study best then"
    rec = st.get_study("live")
    complete = [t for t in st.trials(rec.id) if t.state == "COMPLETE" and t.number < 7]
    assert ds[1]["compared_to"] == pytest.approx(min(t.value for t in complete))
    html = client.get(f"/study/{sid}/trial/7").text
    assert "P(improve)=0.075 &lt; 0.1 &lt;script&gt;" in html
    assert 'data-plot="trial"' in html and "Decisions" in html and "Forecasts" in html
    assert "(study best then)" in html and "(threshold)" in html
    failed = client.get(f"/study/{sid}/trial/5").text
    assert 'id="trial-error"' in failed and "RuntimeError: boom &lt;script&gt;" in failed
    assert "&#34;hidden&#34;: 32" in failed  # the config, pretty-printed and escaped


def test_compare(site: Any) -> None:
    client, ids, _ = site
    sid = ids["live"]
    doc = client.get(f"/api/study/{sid}/curves?t=1&t=3,7&t=999&t=x").json()
    assert [c["number"] for c in doc["curves"]] == [1, 3, 7]
    assert len(doc["curves"][0]["steps"]) == 10 and len(doc["curves"][1]["steps"]) == 4
    html = client.get(f"/study/{sid}/compare?t=1&t=3").text
    assert f'data-src="/api/study/{sid}/curves?t=1&amp;t=3"' in html
    assert "Select trials" in client.get(f"/study/{sid}/compare").text


def test_xss_renders_as_text_everywhere(site: Any) -> None:
    client, ids, _ = site
    xid = ids["xss"]
    pages = ["/", f"/study/{xid}", f"/study/{xid}/trial/0", f"/study/{xid}/compare?t=0",
             f"/study/{ids['live']}", f"/study/{ids['live']}/trial/5",
             f"/study/{ids['live']}/trial/7"]
    for path in pages:
        html = client.get(path).text
        assert "<img src=x" not in html and "<script>alert" not in html, path
        assert "onerror=alert(1)&gt;" in html or "&lt;script&gt;" in html, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get("/").text
    # JSON carries the raw strings (the browser never evaluates them: textContent / Plotly)
    assert client.get(f"/api/study/{xid}/trial/0").json()["study"] == XSS
    assert SCRIPT in json.dumps(client.get(f"/api/study/{ids['live']}/trials").json())


def test_unknown_study_or_trial_is_404(site: Any) -> None:
    client, ids, _ = site
    for path in ["/study/9999", f"/study/{ids['live']}/trial/999", "/study/9999/compare",
                 "/nope", "/static/../../etc/passwd", "/static/secret.py"]:
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html")
        assert "<h1>404</h1>" in r.text
    for path in ["/api/study/9999", "/api/study/9999/trials", f"/api/study/{ids['live']}/trial/999",
                 "/api/study/9999/progress", "/api/study/9999/importances"]:
        r = client.get(path)
        assert r.status_code == 404 and "error" in r.json(), path
    assert client.get("/study/abc").status_code == 404


def test_read_only_no_write_endpoint(site: Any) -> None:
    client, ids, st = site
    sid = ids["live"]
    paths = ["/", f"/study/{sid}", f"/study/{sid}/trial/1", f"/study/{sid}/compare",
             "/api/studies", f"/api/study/{sid}", f"/api/study/{sid}/trials",
             f"/api/study/{sid}/trial/1", "/static/dash.js"]
    for path in paths:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert client.request(method, path).status_code == 405, (method, path)
        assert client.head(path).status_code == 200
    assert st.study_names() == sorted(["syn", "live", XSS])


def test_assets_local_and_security_headers(site: Any) -> None:
    client, ids, _ = site
    r = client.get("/static/plotly.min.js")
    assert r.status_code == 200 and r.content == plotly_js_path().read_bytes()
    for path in ["/", f"/study/{ids['live']}", f"/study/{ids['live']}/trial/7"]:
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert r.headers["x-content-type-options"] == "nosniff"
        srcs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert srcs and all(s.startswith(("/", "?")) for s in srcs), srcs  # nothing remote
        assert "<script>" not in r.text  # no inline script (the CSP would block it anyway)
    assert client.get("/static/dash.js").headers["content-type"].startswith("text/javascript")


def test_no_password_reaches_a_page(tmp_path: Path) -> None:
    """The app prints storage.masked_url only: give it a URL with a password to mask."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    build_db(url, tmp_path)
    st = Storage(url)
    secret_url = "postgresql+psycopg://alice:s3cr3t-pw@db.example/nas"
    st.url = secret_url
    st.masked_url = mask_url(secret_url)
    client = TestClient(create_app(st))
    for path in ["/", "/study/1", "/study/2", "/study/2/trial/7", "/api/studies", "/study/77",
                 "/api/study/2", "/api/study/2/trial/7"]:
        r = client.get(path)
        blob = r.text + json.dumps(dict(r.headers))
        assert "s3cr3t" not in blob, path
    assert "alice:***@db.example" in client.get("/").text


def test_postgres_page_timing_is_sane(site: Any) -> None:
    """Every page answers (on both back ends) in well under the 1 s budget for small studies."""
    import time

    client, ids, _ = site
    for path in ["/", f"/study/{ids['live']}", f"/study/{ids['syn']}",
                 f"/study/{ids['live']}/trial/7", f"/api/study/{ids['syn']}/progress"]:
        t = time.perf_counter()
        assert client.get(path).status_code == 200
        assert time.perf_counter() - t < 2.0, path


# ---------------------------------------------------------------------------- the CLI
def test_cli_bad_storage_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    for url in ("nonsense:://x", f"sqlite:///{tmp_path / 'missing.db'}"):
        capsys.readouterr()
        assert main(["dashboard", "--storage", url]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nas: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "missing.db").exists()  # a read-only view creates no database


def test_cli_busy_port_and_bad_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    Storage(url).close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        capsys.readouterr()
        assert main(["dashboard", "--storage", url, "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert "cannot listen on 127.0.0.1" in err and err.count("\n") == 1
    assert main(["dashboard", "--storage", url, "--port", "70000"]) == 2
    assert "not a TCP port" in capsys.readouterr().err


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("::")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_real_server_default_loopback(tmp_path: Path) -> None:
    """`nas dashboard` as a process: binds 127.0.0.1 by default, serves the pages, 404s."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    ids = build_db(url, tmp_path)
    with running_dashboard(url) as base:
        assert base.startswith("http://127.0.0.1:")
        code, html = _get(base)
        assert code == 200 and "&lt;img src=x onerror=alert(1)&gt;" in html
        code, _ = _get(base + f"study/{ids['live']}/trial/7")
        assert code == 200
        assert _get(base + "study/424242")[0] == 404


def test_real_server_warns_when_not_loopback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Storage(url).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from nas.cli import _console_main; _console_main()",
         "dashboard", "--storage", url, "--host", "0.0.0.0", "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        second = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert "warning: listening on 0.0.0.0, not a loopback address" in first
    assert " at http://0.0.0.0:" in second and "read-only" in second


def test_database_gone_is_503_with_masked_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    build_db(url, tmp_path)
    st = Storage(url)
    client = TestClient(create_app(st))
    assert client.get("/").status_code == 200
    from sqlalchemy import text

    with st.engine.begin() as conn:  # the schema disappears under the running dashboard
        conn.execute(text("drop table decisions"))
    r = client.get("/")
    assert r.status_code == 503 and st.masked_url in r.text
    assert client.get("/api/studies").json()["error"].startswith("reading the stop audit")


def test_pages_follow_new_writes(site: Any) -> None:
    """What the live refresh re-fetches: the same URL shows what a running study wrote since."""
    client, ids, st = site
    sid = ids["live"]
    before = client.get(f"/study/{sid}").text
    assert "12 trials match" in before and 'id="updated"' in before
    tid = st.create_trial(sid, 12, config={"cell": "gru", "lr": 0.01, "hidden": 8},
                          distributions={})
    st.add_points(tid, [(1, 0.05, 1.0)])
    st.finish_trial(tid, state="COMPLETE", value=0.05)
    after = client.get(f"/study/{sid}").text
    assert "13 trials match" in after and _numbers(after, sid)[0] == 12  # the new best
    assert client.get(f"/api/study/{sid}").json()["best_value"] == 0.05
    assert client.get("/api/studies").json()["studies"][1]["trials"] == 13
