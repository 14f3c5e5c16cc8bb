"""Schema, migrations and the revision guard, on both back ends."""

from __future__ import annotations

from typing import Any

import pytest
from _storage_helpers import storage_url_fixture
from sqlalchemy import create_engine, inspect, text

from nas.errors import StorageError
from nas.storage import HEAD, REVISIONS, Storage
from nas.storage._models import Base
from nas.storage._schema import migrate_to

storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL


def test_new_database_is_created_at_head(storage_url: str) -> None:
    st = Storage(storage_url)
    with st.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == HEAD
        insp = inspect(conn)
        tables = set(insp.get_table_names())
        assert {"studies", "trials", "trial_values", "curve_points", "forecasts", "decisions"} <= tables
        indexed = {tuple(ix["column_names"]) for ix in insp.get_indexes("trials")}
        assert ("study_id",) in indexed and ("study_id", "state") in indexed
        for table in ("trial_values", "forecasts", "decisions"):
            assert ("trial_id",) in {tuple(ix["column_names"]) for ix in insp.get_indexes(table)}
        # curve_points: the primary key (trial_id, step) is the unique constraint and FK index
        assert insp.get_pk_constraint("curve_points")["constrained_columns"] == ["trial_id", "step"]
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("trials")}
        assert ("study_id", "number") in uniques


def test_migrations_build_the_models_schema(storage_url: str) -> None:
    """`alembic upgrade head` on an empty database gives exactly the models' schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(storage_url)
    try:
        migrate_to(engine, HEAD)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_old_database_refused_then_upgraded(storage_url: str) -> None:
    engine = create_engine(storage_url)
    try:
        migrate_to(engine, REVISIONS[0])
        with engine.begin() as conn:
            conn.execute(text(
                "insert into studies (name, space, task, objectives, config, created, status) "
                "values ('old', 's', 't', '[{\"name\": \"v\", \"direction\": \"maximize\"}]', '{}', "
                "'2026-01-01 00:00:00', 'COMPLETE')"))
    finally:
        engine.dispose()
    with pytest.raises(StorageError, match="nas db upgrade"):
        Storage(storage_url)
    st = Storage(storage_url, check_schema=False)
    assert st.upgrade_schema() == (REVISIONS[0], HEAD)
    st = Storage(storage_url)
    assert st.study_names() == ["old"]
    assert st.upgrade_schema() == (HEAD, HEAD)  # idempotent


def test_upgrade_moves_evaluations_out_of_the_study_config(storage_url: str) -> None:
    """Revision 0004: a ``config["evaluation"]`` document (where earlier revisions kept
    ``nas evaluate``'s result) moves into the ``evaluations`` table; the rest of the config and
    the studies without one stay as they were."""
    import json

    doc = {"study": "a", "metric": "test_accuracy", "seeds": 2, "top": 1, "wall_s": 3.5,
           "results": [{"rank": 1, "number": 4, "mean": 0.8, "std": 0.01, "runs": []}]}
    engine = create_engine(storage_url)
    try:
        migrate_to(engine, "0003")
        with engine.begin() as conn:
            for name, config in (("a", {"seed": 1, "evaluation": doc}), ("b", {"seed": 2})):
                conn.execute(text(
                    "insert into studies (name, space, task, objectives, config, created, status) "
                    "values (:n, 's', 't', '[]', :c, '2026-01-01 00:00:00', 'COMPLETE')"),
                    {"n": name, "c": json.dumps(config)})
    finally:
        engine.dispose()
    st = Storage(storage_url, check_schema=False)
    assert st.schema_info().state == "old"
    assert st.upgrade_schema() == ("0003", HEAD)
    st = Storage(storage_url)
    a, b = st.get_study("a"), st.get_study("b")
    assert a.config == {"seed": 1} and b.config == {"seed": 2}
    ev = st.study_evaluation(a.id)
    assert ev is not None and ev.to_dict("a") == doc
    assert st.study_evaluation(b.id) is None


def test_upgrade_adds_where_a_trial_ran(storage_url: str) -> None:
    """Revision 0006: ``trials.device`` and ``trials.threads`` (nullable) are added to a 0005
    database; its trials keep their rows and read None for both; new ones store them; the
    downgrade drops them again."""
    engine = create_engine(storage_url)
    try:
        migrate_to(engine, "0005")
        assert "device" not in {c["name"] for c in inspect(engine).get_columns("trials")}
        with engine.begin() as conn:
            conn.execute(text(
                "insert into studies (name, space, task, objectives, config, created, status) "
                "values ('old', 's', 't', '[]', '{}', '2026-01-01 00:00:00', 'RUNNING')"))
            conn.execute(text(
                "insert into trials (study_id, number, state, config, distributions, node) "
                "select id, 0, 'COMPLETE', '{\"a\": 1}', '{}', 'host:1' from studies"))
    finally:
        engine.dispose()
    with pytest.raises(StorageError, match="nas db upgrade"):
        Storage(storage_url)
    st = Storage(storage_url, check_schema=False)
    assert st.upgrade_schema() == ("0005", HEAD)
    st = Storage(storage_url)
    sid = st.get_study("old").id
    (old,) = st.trials(sid)
    assert (old.number, old.config, old.node, old.device, old.threads) == (
        0, {"a": 1}, "host:1", None, None)
    new = st.create_trial(sid, 1, config={}, distributions={})
    st.set_trial_node(new, "host:2", device="cuda:0 NVIDIA H100", threads=4)
    assert [(t.device, t.threads) for t in st.trials(sid)] == [(None, None),
                                                                ("cuda:0 NVIDIA H100", 4)]
    assert [(r["node"], r["device"], r["threads"]) for r in st.trial_rows(sid)] == [
        ("host:1", None, None), ("host:2", "cuda:0 NVIDIA H100", 4)]
    st.close()
    engine = create_engine(storage_url)
    try:
        from alembic import command

        from nas.storage._schema import _alembic_config

        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0005")
        assert not {"device", "threads"} & {c["name"] for c in
                                           inspect(engine).get_columns("trials")}
    finally:
        engine.dispose()


def test_newer_database_refused(storage_url: str) -> None:
    st = Storage(storage_url)
    st.create_study("keep", space="s", task="t", objectives=[{"name": "v"}], config={})
    with st.engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '9999'"))
    st.close()
    with pytest.raises(StorageError, match="revision 9999 is newer than this nas; upgrade nas"):
        Storage(storage_url)
    st2 = Storage(storage_url, check_schema=False)
    with pytest.raises(StorageError, match="newer than this nas"):
        st2.upgrade_schema()


def test_foreign_database_refused(storage_url: str) -> None:
    engine = create_engine(storage_url)
    with engine.begin() as conn:
        conn.execute(text("create table studies (x integer)"))
    engine.dispose()
    with pytest.raises(StorageError, match="not a nas study database"):
        Storage(storage_url)


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    st = Storage(f"sqlite:///{tmp_path}/w.db")
    with st.engine.connect() as conn:
        assert conn.execute(text("pragma journal_mode")).scalar() == "wal"
        assert conn.execute(text("pragma busy_timeout")).scalar() >= 10_000
        assert conn.execute(text("pragma foreign_keys")).scalar() == 1


def test_cli_refuses_old_database_until_upgraded(storage_url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli import main

    engine = create_engine(storage_url)
    migrate_to(engine, REVISIONS[0])
    engine.dispose()
    capsys.readouterr()
    assert main(["studies", "--storage", storage_url]) == 2
    err = capsys.readouterr().err
    assert "older than this nas" in err and "nas db upgrade" in err
    assert main(["db", "info", "--storage", storage_url, "--json"]) == 0
    assert '"status": "old: run `nas db upgrade`"' in capsys.readouterr().out
    assert main(["db", "upgrade", "--storage", storage_url]) == 0
    assert f"upgraded from {REVISIONS[0]} to revision {HEAD}" in capsys.readouterr().out
    assert main(["studies", "--storage", storage_url, "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_db_upgrade_creates_a_new_database(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from nas.cli import main

    url = f"sqlite:///{tmp_path}/fresh.db"
    assert main(["db", "upgrade", "--storage", url]) == 0
    assert "upgraded from empty" in capsys.readouterr().out
    Storage(url)  # at head: accepted


def _open_new(url: str, out: Any) -> None:
    try:
        Storage(url)
        out.put("ok")
    except Exception as exc:  # noqa: BLE001  (the parent reports any failure)
        out.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_sqlite_file_at_once_all_see_the_schema(tmp_path: Any) -> None:
    """Creating the schema is atomic: nobody sees the tables without the revision stamp (the
    DDL once ran outside a transaction on SQLite, and a second process was refused)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    for i in range(8):
        url = f"sqlite:///{tmp_path / f'new{i}.db'}"
        out = ctx.Queue()
        procs = [ctx.Process(target=_open_new, args=(url, out)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        results = [out.get(timeout=5) for _ in procs]
        assert results == ["ok"] * 4, results
        with Storage(url).engine.connect() as conn:
            assert conn.execute(text("select version_num from alembic_version")).scalar() == HEAD
