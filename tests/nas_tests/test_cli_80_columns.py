"""Every ``--help`` and every listing reads cleanly at 80 columns."""

from __future__ import annotations

import pytest

from nas.cli import app, main


def _commands() -> list[tuple[list[str], object]]:
    """Every command and group of the command line, with its path of words."""
    import typer

    root = typer.main.get_command(app)
    out: list[tuple[list[str], object]] = []

    def walk(cmd: object, path: list[str]) -> None:
        out.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return out


def test_every_help_reads_cleanly_at_80_columns(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    commands = _commands()
    assert len(commands) > 20  # the walk found the sub-commands
    for path, cmd in commands:
        capsys.readouterr()
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        where = " ".join(["nas", *path])
        assert out.startswith(f"Usage: {where} "), (path, out[:80])
        assert "…" not in out and "<bool>" not in out, (path, out)
        assert "{" not in out.splitlines()[0], (path, out.splitlines()[0])  # usage line
        assert max(len(line) for line in out.splitlines()) <= 80, path
        for param in cmd.params:  # type: ignore[attr-defined]
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("-"):
                    assert opt in out, (path, opt)  # never cut, whatever its length
        text = " ".join(out.replace("│", " ").split())
        for param in cmd.params:  # type: ignore[attr-defined]
            if param.help:  # the description is all there, only re-wrapped
                assert " ".join(param.help.split()) in text, (path, param.help)
        for name in getattr(cmd, "commands", {}):
            assert f" {name} " in out, (path, name)


def test_help_metavars(capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    main(["run", "--help"])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Usage: nas run [OPTIONS] FILE"
    assert "--resume  " in out and "--trials INT" in out
    main(["pfn", "train", "--help"])
    out = capsys.readouterr().out
    assert "--progress / --no-progress" in out and "-f, --format table|json|csv" in out
    assert "--checkpoint-every FLOAT" in out
    assert main(["db"]) == 2  # a group alone: its help, on stderr
    err = capsys.readouterr().err
    assert err.startswith("Usage: nas db [OPTIONS] COMMAND") and "upgrade" in err


# ---------------------------------------------------------------------------- listings
_BOX = "│┃┏┓┗┛┡┩└┘┳┻╇┬┴━─┼"


def _tokens(out: str) -> set[str]:
    """The words of a table's text (box drawing removed): a wrapped value keeps its words."""
    return set("".join(" " if ch in _BOX else ch for ch in out).split())


def _assert_whole(out: str, values: list[object]) -> None:
    words = _tokens(out)
    for v in values:
        text = f"{v:.6g}" if isinstance(v, float) else str(v)
        for w in text.split():
            assert w in words, (w, text)


@pytest.fixture
def wide_db(tmp_path: object) -> str:
    """A study like the quick start's (long values), one audited trial, forecasts; a long
    study name and a long space name."""
    from nas.storage import Storage

    url = f"sqlite:///{tmp_path}/w.db"  # type: ignore[str-bytes-safe]
    st = Storage(url)
    sid = st.create_study("quickstart", space="seq_cells", task="digits",
                          objectives=[{"name": "val_accuracy", "direction": "maximize"}],
                          config={})
    layers = [{"cell": "tcn", "hypernet": "static", "kernel": 3},
              {"cell": "attention", "hypernet": "none", "heads": 4, "pos": "rotary"}]
    cfg = {"hidden": 128, "loops": 2, "layers": layers, "optimizer": "rmsprop",
           "lr": 0.000436550310, "weight_decay": 3.41e-05, "dropout": 0.1764951340,
           "curriculum": "easy_to_hard"}
    for n in range(6):
        tid = st.create_trial(sid, n, config=cfg, distributions={})
        if n != 1:  # where it ran (trial 1: not known, as in a database before revision 0006)
            st.set_trial_node(tid, f"gpu-node-{n % 2}:1a2b3c4d",
                              device="cuda:0 NVIDIA H100 80GB HBM3" if n % 2 else "cpu",
                              threads=4 if n % 2 else 2)
        vals = [0.1 + 0.17333333 * i + 0.001 * n for i in range(6)]
        if n in (2, 5):
            st.add_points(tid, [(i + 1, v, 12345.678) for i, v in enumerate(vals[:3])])
            st.add_forecast(tid, 3, predictor="pfn", horizon=6, mean=0.71234567,
                            q05=0.51234567, q50=0.7123, q95=0.97345678, p_improve=0.00123456)
            st.add_decision(tid, 3, policy="predictive", action="STOP",
                            reason="P(y_T > best 0.9733 + epsilon 0.01) = 0.00123 < delta 0.01",
                            threshold=0.98)
            st.finish_trial(tid, state="STOPPED", value=vals[2])
        else:
            st.add_points(tid, [(i + 1, v, 12345.678) for i, v in enumerate(vals)])
            if n == 4:
                st.add_decision(tid, 2, policy="predictive", action="AUDIT",
                                reason="audit: runs on", threshold=0.5)
            st.finish_trial(tid, state="COMPLETE", value=vals[-1])
    st.create_study("a-rather-long-study-name-2026", space="my_spaces:GRUSpace",
                    task="parity", objectives=[{"name": "val_loss", "direction": "minimize"}],
                    config={})
    return url


def _listing(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0, args
    out = capsys.readouterr().out
    if "--json" not in args and "--format" not in args:  # a table
        assert "…" not in out, out
        assert max(len(line) for line in out.splitlines()) <= 80, out
    return out


def test_every_listing_fits_80_columns_uncut(wide_db: str, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("COLUMNS", "80")
    out = _listing(capsys, "trials", "quickstart", "--storage", wide_db)
    assert "stop" in out and "why" in out
    assert "audit" not in out.splitlines()[2]  # the audit says it in the why column
    assert "group" not in out  # empty in every row: no column
    rows = json.loads(_listing(capsys, "trials", "quickstart", "--storage", wide_db, "--json"))
    _assert_whole(out, [v for r in rows for k, v in r.items()
                        if k in ("number", "state", "value", "epochs", "stop_step") and v is not None])
    _assert_whole(out, ["P .0012 < δ", "audit: false stop"])
    stopped = {r["number"]: (r["stop_step"], r["stop_reason"]) for r in rows if r["stop_step"]}
    assert stopped == {n: (3, "P(y_T > best 0.9733 + epsilon 0.01) = 0.00123 < delta 0.01")
                       for n in (2, 5)}
    assert [(r["audit_step"], r["audit"]) for r in rows if r["audit"]] == [(2, "false stop")]
    csv_out = _listing(capsys, "trials", "quickstart", "--storage", wide_db, "--format", "csv")
    assert "P(y_T > best 0.9733 + epsilon 0.01) = 0.00123 < delta 0.01" in csv_out

    out = _listing(capsys, "studies", "--storage", wide_db)
    _assert_whole(out, ["a-rather-long-study-name-2026", "quickstart", "digits", "parity",
                        "max", "min", "6 (4 complete, 2 stopped)", 0.970667])
    assert "hidden at 80 columns:" in out  # what did not fit is named, not cut
    doc = json.loads(_listing(capsys, "studies", "--storage", wide_db, "--json"))
    assert doc[0]["direction"] == "maximize" and doc[1]["space"] == "my_spaces:GRUSpace"

    out = _listing(capsys, "curve", "quickstart", "2", "--storage", wide_db)
    _assert_whole(out, [0.7123, 0.5123, 0.9735, 0.001235, "STOP"])
    doc = json.loads(_listing(capsys, "curve", "quickstart", "2", "--storage", wide_db, "--json"))
    assert doc[2]["q95"] == 0.97345678  # json keeps every digit

    _listing(capsys, "db", "info", "--storage", wide_db)
    _listing(capsys, "spaces")


def test_trials_wide_shows_where_each_trial_ran(wide_db: str,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``nas trials --wide`` adds node, device and threads, uncut at 80
    columns; the default table leaves them out; JSON and CSV always carry them."""
    import csv
    import io
    import json

    monkeypatch.setenv("COLUMNS", "80")
    out = _listing(capsys, "trials", "quickstart", "--storage", wide_db)
    assert "device" not in out and "H100" not in out
    out = _listing(capsys, "trials", "quickstart", "--storage", wide_db, "--wide")
    header = next(line for line in out.splitlines() if "number" in line)
    assert "device" in header and "threads" in header, out
    _assert_whole(out, ["cuda:0 NVIDIA H100 80GB HBM3", "cpu"])
    assert "hidden at 80 columns: params, node" in out  # named below, not cut
    monkeypatch.setenv("COLUMNS", "120")  # room for the node and the config's summary
    capsys.readouterr()
    assert main(["trials", "quickstart", "--storage", wide_db, "--wide"]) == 0
    out = capsys.readouterr().out
    assert "hidden" not in out and max(len(line) for line in out.splitlines()) <= 120
    _assert_whole(out, ["gpu-node-0:1a2b3c4d", "gpu-node-1:1a2b3c4d",
                        "cuda:0 NVIDIA H100 80GB HBM3", "cpu"])
    rows = json.loads(_listing(capsys, "trials", "quickstart", "--storage", wide_db, "--json"))
    assert [(r["number"], r["device"], r["threads"]) for r in rows] == [
        (0, "cpu", 2), (1, None, None), (2, "cpu", 2),
        (3, "cuda:0 NVIDIA H100 80GB HBM3", 4), (4, "cpu", 2),
        (5, "cuda:0 NVIDIA H100 80GB HBM3", 4)]
    assert rows[3]["node"] == "gpu-node-1:1a2b3c4d"
    table = list(csv.DictReader(io.StringIO(_listing(
        capsys, "trials", "quickstart", "--storage", wide_db, "--format", "csv"))))
    assert (table[3]["device"], table[3]["threads"]) == ("cuda:0 NVIDIA H100 80GB HBM3", "4")


def test_evaluate_table_fits_80_columns(wide_db: str, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import nas.evaluate

    monkeypatch.setenv("COLUMNS", "80")

    def fake(study: str, **kw: object) -> dict[str, object]:
        runs = [{"seed": 0}, {"seed": 1}, {"seed": 2}]
        return {"study": study, "metric": "test_accuracy", "seeds": 3, "top": 2, "wall_s": 1.0,
                "results": [{"rank": i + 1, "number": n, "val_value": 0.9733333333,
                             "metric": "test_accuracy", "mean": 0.9612345678,
                             "std": 0.0123456789, "runs": runs,
                             "dir": f"nas-models/{study}/trial-{n}"}
                            for i, n in enumerate((3, 1))]}

    monkeypatch.setattr(nas.evaluate, "evaluate_study", fake)
    out = _listing(capsys, "evaluate", "quickstart", "--storage", wide_db)
    _assert_whole(out, ["trial-3", "trial-1", 0.973333, 0.961235, 0.0123457, "test_accuracy"])
    assert "nas-models/quickstart/<weights>/seed-<s>.safetensors" in out


def test_live_view_keeps_each_item_on_one_line() -> None:
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from nas.cli._progress import ProgressView

    stats = SimpleNamespace(study="quickstart-with-a-long-name", counts={"COMPLETE": 120,
                            "STOPPED": 14, "FAILED": 0}, done=134, running=2, budget=200,
                            horizon=9, epochs_run=1200, best_value=0.973333, best_number=87)
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=False)
    view = ProgressView(console)
    view._stats = lambda: stats  # type: ignore[assignment,return-value]
    console.print(view.render())
    lines = buf.getvalue().splitlines()
    assert max(len(x) for x in lines) <= 80 and len(lines) >= 2
    for item in ("epochs 1200 (saved 6)", "best 0.9733 (#87)", "done 134/200", "stopped 14",
                 "study quickstart-with-a-long-name"):
        assert any(item in line for line in lines), (item, lines)


def test_progress_off_a_terminal_logs_even_when_a_step_is_long() -> None:
    import io
    import time

    from rich.console import Console

    from nas.cli._progress import task_progress

    buf = io.StringIO()
    with task_progress("nas evaluate q", every_s=0.05,
                       console=Console(file=buf, force_terminal=False, width=80)) as progress:
        progress("trial 3 seed 0", 0, 4)
        time.sleep(0.3)  # one long step: lines keep coming
        progress("trial 3 seed 1", 1, 4)
        time.sleep(0.12)
    lines = buf.getvalue().splitlines()
    assert len(lines) >= 5, lines
    assert "nas evaluate q: 0/4 (trial 3 seed 0)" in lines[1]
    assert any("1/4 (trial 3 seed 1)" in x and "ETA" in x for x in lines)
    assert lines[-1].startswith("nas evaluate q: 1/4 (stopped)")


def test_spaces_check_reports_progress(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["spaces", "check", "nas.testing.toy:ToySpace", "--samples", "2",
                 "--json"]) == 0
    err = capsys.readouterr().err
    assert "nas spaces check nas.testing.toy:ToySpace: 2/2 (done)" in err
