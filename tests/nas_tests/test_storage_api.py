"""The Storage write/read API, URL handling and error translation, on both back ends."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from _storage_helpers import make_url, storage_url_fixture

from nas.errors import ConfigError, StorageError, StudyNotFoundError
from nas.storage import Storage, mask_url, open_study, resolve_url
from nas.testing.storage import check_storage

storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL


def test_conformance(storage_url: str) -> None:
    check_storage(storage_url)


def test_resolve_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NAS_STORAGE", raising=False)
    assert resolve_url() == "sqlite:///nas.db"
    assert resolve_url(None, "sqlite:///file.db") == "sqlite:///file.db"
    monkeypatch.setenv("NAS_STORAGE", "sqlite:///env.db")
    assert resolve_url(None, "sqlite:///file.db") == "sqlite:///env.db"
    assert resolve_url("sqlite:///cli.db", "sqlite:///file.db") == "sqlite:///cli.db"
    monkeypatch.setenv("NAS_STORAGE", "")
    assert resolve_url(None, "sqlite:///file.db") == "sqlite:///file.db"


def test_mask_url() -> None:
    assert mask_url("postgresql+psycopg://bob:s3cret@db.example:5432/nas") == \
        "postgresql+psycopg://bob:***@db.example:5432/nas"
    assert mask_url("postgresql+psycopg://bob@host/nas") == "postgresql+psycopg://bob@host/nas"
    assert mask_url("sqlite:///nas.db") == "sqlite:///nas.db"
    assert "p%40ss" not in mask_url("postgresql://u:p%40ss@h/d")


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x/y", "postgresql+psycopg://u:pw@h:notaport/db"])
def test_malformed_url_is_storage_error(url: str) -> None:
    with pytest.raises(StorageError) as info:
        Storage(url)
    assert "pw" not in str(info.value)


def test_unreachable_server_names_masked_url() -> None:
    with pytest.raises(StorageError) as info:
        Storage("postgresql+psycopg://nas:topsecret@127.0.0.1:1/nas")
    msg = str(info.value)
    assert "postgresql+psycopg://nas:***@127.0.0.1:1/nas" in msg and "topsecret" not in msg


def test_plain_postgresql_url_uses_psycopg(tmp_path: Path) -> None:
    urls = make_url("postgresql", tmp_path)  # skips when no PostgreSQL server is configured
    url = next(urls)
    try:
        st = Storage(url.replace("postgresql+psycopg://", "postgresql://"))
        assert st.engine.dialect.driver == "psycopg" and st.study_names() == []
        st.close()
    finally:
        urls.close()  # drops the test's database


def test_unwritable_sqlite_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError, match="sqlite:///"):
        Storage(f"sqlite:///{tmp_path}/missing/dir/nas.db")


def test_bad_input_is_config_error(storage_url: str) -> None:
    st = Storage(storage_url)
    with pytest.raises(ConfigError, match="direction"):
        st.create_study("x", space="s", task="t", objectives=[{"name": "v", "direction": "up"}], config={})
    with pytest.raises(ConfigError, match="non-empty"):
        st.create_study(" ", space="s", task="t", objectives=[{"name": "v"}], config={})
    sid = st.create_study("x", space="s", task="t", objectives=[{"name": "v"}], config={})
    with pytest.raises(ConfigError, match="PRUNED"):
        st.create_trial(sid, 0, config={}, distributions={}, state="PRUNED")
    assert st.study_names() == ["x"]
    assert st.trials(sid) == []


def test_threads_share_one_storage(storage_url: str) -> None:
    st = Storage(storage_url)
    sid = st.create_study("threads", space="s", task="t", objectives=[{"name": "v"}], config={})
    ids = [st.create_trial(sid, k, config={}, distributions={}) for k in range(4)]
    errors: list[BaseException] = []

    def write(tid: int) -> None:
        try:
            for s in range(1, 31):
                st.add_points(tid, [(s, s / 10, None)])
        except BaseException as exc:  # noqa: BLE001  (reported below)  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for tid in ids:
        assert [s for s, _ in st.curve(tid)] == list(range(1, 31))


def test_open_study_read_api(storage_url: str) -> None:
    st = Storage(storage_url)
    sid = st.create_study("loss", space="s", task="t",
                          objectives=[{"name": "loss", "direction": "minimize"}], config={})
    for k, final in enumerate([0.5, 0.2, 0.9]):
        tid = st.create_trial(sid, k, config={"k": k}, distributions={})
        st.add_points(tid, [(1, 1.0, None), (2, final, None)])
        st.finish_trial(tid, state="COMPLETE", value=final)
    tid = st.create_trial(sid, 3, config={"k": 3}, distributions={})
    st.add_points(tid, [(1, 0.01, None)])
    st.finish_trial(tid, state="STOPPED", value=0.01)  # not COMPLETE: never the best
    h = open_study("loss", storage_url)
    assert h.direction == "minimize"
    assert h.best_trial is not None and h.best_trial.number == 1
    assert list(h.curves[1]) == [1.0, 0.2]
    df = h.to_pandas()
    assert list(df["number"]) == [0, 1, 2, 3] and list(df["params_k"]) == [0, 1, 2, 3]
    with pytest.raises(StudyNotFoundError, match="known studies: loss"):
        open_study("nope", storage_url)


def test_open_study_uses_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/env.db"
    Storage(url).create_study("e", space="s", task="t", objectives=[{"name": "v"}], config={})
    monkeypatch.setenv("NAS_STORAGE", url)
    import nas

    assert nas.open_study("e").name == "e"


def test_evaluation_has_its_own_record(storage_url: str) -> None:
    """``nas evaluate``'s result: stored in ``evaluations`` (not the study config), replaced
    by a second evaluation, deleted with the study."""
    from nas.storage import EvaluationRecord

    st = Storage(storage_url)
    sid = st.create_study("ev", space="s", task="t", objectives=[{"name": "v"}], config={"a": 1})
    assert st.study_evaluation(sid) is None
    res = [{"rank": 1, "number": 3, "mean": 0.5, "std": float("nan"), "runs": [{"seed": 0}]}]
    st.set_study_evaluation(sid, metric="test_acc", seeds=1, top=2, results=res, wall_s=1.5)
    ev = st.study_evaluation(sid)
    assert isinstance(ev, EvaluationRecord) and ev.created is not None
    assert ev.to_dict("ev") == {"study": "ev", "metric": "test_acc", "seeds": 1, "top": 2,
                                "results": [{**res[0], "std": None}], "wall_s": 1.5}
    assert st.get_study("ev").config == {"a": 1}
    st.set_study_evaluation(sid, metric="test_loss", seeds=3, top=1, results=[])
    ev2 = st.study_evaluation(sid)
    assert ev2 is not None and (ev2.metric, ev2.seeds, ev2.results, ev2.wall_s) == \
        ("test_loss", 3, [], None)
    with pytest.raises(StudyNotFoundError):
        st.set_study_evaluation(sid + 100, metric="m", seeds=1, top=1, results=[])
    st.delete_study("ev")
    sid = st.create_study("ev", space="s", task="t", objectives=[{"name": "v"}], config={})
    assert st.study_evaluation(sid) is None


def test_forecasts_are_forecast_summaries(storage_url: str) -> None:
    """record_step takes a ForecastSummary (or a mapping of its fields); forecasts() returns
    records holding one, NaN stored as missing."""
    from nas.interfaces import ForecastSummary

    st = Storage(storage_url)
    sid = st.create_study("fc", space="s", task="t", objectives=[{"name": "v"}], config={})
    tid = st.create_trial(sid, 0, config={}, distributions={})
    st.record_step(tid, 1, 0.1, forecast=ForecastSummary("pfn", 9, 0.4, 0.1, 0.4, float("nan"),
                                                         0.2))
    st.record_step(tid, 2, 0.2, forecast={"predictor": "pfn", "horizon": 9, "mean": 0.5})
    got = st.forecasts(tid)
    assert [(f.trial_id, f.step) for f in got] == [(tid, 1), (tid, 2)]
    assert got[0].summary == ForecastSummary("pfn", 9, 0.4, 0.1, 0.4, None, 0.2)
    assert got[1].summary == ForecastSummary("pfn", 9, 0.5)
    assert st.trial_detail(tid)[1] == got


def test_schema_info_and_bulk_import(storage_url: str) -> None:
    from nas.storage import HEAD, TrialImport

    st = Storage(storage_url)
    info = st.schema_info()
    assert (info.revision, info.head, info.state) == (HEAD, HEAD, "ok")
    assert info.counts["studies"] == 0 and info.counts["evaluations"] == 0
    assert st.upgrade_schema() == (HEAD, HEAD)
    trials = [TrialImport(0, curve=[0.1, float("nan"), 0.3], value=0.3, epochs=3),
              TrialImport(1, state="STOPPED", curve=(0.2,), epochs=1, group="g",
                          decisions=[{"step": 1, "policy": "p", "action": "stop",
                                      "reason": "r"}])]
    sid, n = st.import_study("bulk", space="s", task="t", objectives=[{"name": "v"}],
                             config={}, trials=trials)
    assert n == 4
    got = st.trials(sid, with_curves=True)
    assert [t.curve for t in got] == [[0.1, None, 0.3], [0.2]]
    assert [t.state for t in got] == ["COMPLETE", "STOPPED"] and got[1].group == "g"
    assert [d.action for d in st.decisions(got[1].id)] == ["STOP"]
    with pytest.raises(ConfigError, match="already exists"):
        st.import_study("bulk", space="s", task="t", objectives=[{"name": "v"}], config={},
                        trials=trials)
    assert st.schema_info().counts["curve_points"] == 4
