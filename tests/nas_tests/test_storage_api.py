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
        except BaseException as exc:  # pragma: no cover - reported below
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
