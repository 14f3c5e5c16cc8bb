"""One vocabulary of states: the enums and named sets of nas.interfaces, and revision 0007
(CHECK constraints on state/status/action, ON DELETE CASCADE), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _storage_helpers import storage_url_fixture
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from nas.errors import ConfigError
from nas.interfaces import (
    ACTIONS,
    AUDIT,
    CONTINUE,
    COUNTED_STATES,
    DIRECTIONS,
    ENDED_STATES,
    STOP,
    STUDY_STATUSES,
    TRIAL_STATES,
    Action,
    Direction,
    StudyStatus,
    TrialState,
)
from nas.storage import HEAD, Storage
from nas.storage._models import Base
from nas.storage._schema import migrate_to

storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL

#: which named sets each trial state belongs to
MEMBERSHIP = {
    TrialState.RUNNING: set(),
    TrialState.COMPLETE: {"ended", "counted"},
    TrialState.STOPPED: {"ended", "counted"},
    TrialState.FAILED: {"ended", "counted"},
    TrialState.INTERRUPTED: {"ended"},  # ended, but run again on --resume: not counted
}


def test_every_trial_state_is_in_exactly_its_sets() -> None:
    sets = {"ended": ENDED_STATES, "counted": COUNTED_STATES}
    assert set(MEMBERSHIP) == set(TrialState) and TRIAL_STATES == tuple(TrialState)
    for state, expected in MEMBERSHIP.items():
        assert {name for name, members in sets.items() if state in members} == expected, state
    assert set(COUNTED_STATES) < set(ENDED_STATES) < set(TRIAL_STATES)
    for named in (TRIAL_STATES, ENDED_STATES, COUNTED_STATES, STUDY_STATUSES, ACTIONS,
                  DIRECTIONS):
        assert len(set(named)) == len(named)
    assert STUDY_STATUSES == tuple(StudyStatus) and set(STUDY_STATUSES) < set(TRIAL_STATES)
    assert ACTIONS == tuple(Action) == (CONTINUE, STOP, AUDIT)
    assert DIRECTIONS == tuple(Direction) == ("maximize", "minimize")


def test_a_member_reads_as_its_stored_string() -> None:
    """Members equal, hash, print and serialise as the strings in the database and files."""
    for enum in (TrialState, StudyStatus, Action, Direction):
        for m in enum:
            v = m.value
            assert type(v) is str and m == v and hash(m) == hash(v) and {v: 1}[m] == 1
            assert (str(m), f"{m}", f"{m:>12}", repr(m)) == (v, v, f"{v:>12}", repr(v))
            assert json.dumps({m: [m]}) == json.dumps({v: [v]})
            assert enum(v) is m
    assert TrialState.COMPLETE in ("COMPLETE",) and "STOPPED" in COUNTED_STATES


# ---------------------------------------------------------------- revision 0007

_TABLES = ("studies", "trials", "trial_values", "curve_points", "forecasts", "decisions",
           "evaluations", "study_leases")
_NOW = "'2026-01-01 00:00:00'"


def _fill_0006(url: str) -> None:
    """Two studies at revision 0006, with rows in every table."""
    engine = create_engine(url)
    try:
        migrate_to(engine, "0006")
        with engine.begin() as conn:
            for name in ("a", "b"):
                conn.execute(text(
                    "insert into studies (name, space, task, objectives, config, created, "
                    f"status) values (:n, 's', 't', '[]', '{{}}', {_NOW}, 'COMPLETE')"),
                    {"n": name})
                sid = conn.execute(text("select id from studies where name = :n"),
                                   {"n": name}).scalar_one()
                for number, state in enumerate(("COMPLETE", "STOPPED", "INTERRUPTED")):
                    conn.execute(text(
                        "insert into trials (study_id, number, state, config, distributions, "
                        "value, epochs) values (:s, :n, :st, '{}', '{}', 0.5, 2)"),
                        {"s": sid, "n": number, "st": state})
                    tid = conn.execute(text(
                        "select id from trials where study_id = :s and number = :n"),
                        {"s": sid, "n": number}).scalar_one()
                    conn.execute(text("insert into trial_values (trial_id, objective, value) "
                                      "values (:t, 0, 0.5)"), {"t": tid})
                    for step in (1, 2):
                        conn.execute(text("insert into curve_points (trial_id, step, value) "
                                          "values (:t, :s, 0.25)"), {"t": tid, "s": step})
                    conn.execute(text(
                        "insert into forecasts (trial_id, step, predictor, horizon, mean, "
                        f"created) values (:t, 1, 'p', 4, 0.6, {_NOW})"), {"t": tid})
                    conn.execute(text(
                        "insert into decisions (trial_id, step, policy, action, reason, "
                        f"created) values (:t, 1, 'p', 'CONTINUE', 'ok', {_NOW})"), {"t": tid})
                conn.execute(text(
                    "insert into evaluations (study_id, metric, seeds, top, results, created) "
                    f"values (:s, 'm', 1, 1, '[]', {_NOW})"), {"s": sid})
                conn.execute(text(
                    "insert into study_leases (study_id, token, owner, host, pid, pid_ns, "
                    f"boot_id, proc_start, acquired, heartbeat) values (:s, 't', 'o', 'h', "
                    f"999999999, 'ns', 'boot', '1', {_NOW}, {_NOW})"), {"s": sid})
    finally:
        engine.dispose()


def _counts(st: Storage) -> dict[str, int]:
    with st.engine.connect() as conn:
        return {t: int(conn.execute(select(func.count()).select_from(
            Base.metadata.tables[t])).scalar_one()) for t in _TABLES}


def _constraints(url: str) -> dict[str, tuple[object, ...]]:
    """Per table: its CHECK constraints and the ON DELETE of its foreign keys."""
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {t: (sorted((c["name"], c["sqltext"]) for c in insp.get_check_constraints(t)),
                    sorted((fk["name"], (fk.get("options") or {}).get("ondelete"))
                           for fk in insp.get_foreign_keys(t)))
                for t in _TABLES}
    finally:
        engine.dispose()


def test_upgrade_to_0007_keeps_the_rows_checks_values_and_cascades(storage_url: str) -> None:
    _fill_0006(storage_url)
    st = Storage(storage_url, check_schema=False)
    before = _counts(st)
    assert all(before.values()) and before["trials"] == 6 and before["curve_points"] == 12
    assert st.upgrade_schema() == ("0006", HEAD)
    st.close()
    st = Storage(storage_url)
    assert _counts(st) == before
    a = st.get_study("a")
    assert [t.state for t in st.trials(a.id)] == ["COMPLETE", "STOPPED", "INTERRUPTED"]
    if storage_url.startswith("sqlite"):  # the migration turned them off, and back on
        with st.engine.connect() as conn:
            assert conn.execute(text("pragma foreign_keys")).scalar() == 1

    # a value outside the vocabulary is refused by the database itself
    for sql in ("update trials set state = 'DONE'", "update studies set status = 'done'",
                "update decisions set action = 'PAUSE'"):
        with pytest.raises(IntegrityError), st.engine.begin() as conn:
            conn.execute(text(sql))
    with st.engine.begin() as conn:  # every value of the enums is allowed
        for state in TrialState:
            conn.execute(text("update trials set state = :v"), {"v": state.value})
        for status in StudyStatus:
            conn.execute(text("update studies set status = :v"), {"v": status.value})
        for action in Action:
            conn.execute(text("update decisions set action = :v"), {"v": action.value})
    with pytest.raises(ConfigError, match="decision action 'PAUSE' is not one of CONTINUE"):
        st.add_decision(st.trials(a.id)[0].id, 3, policy="p", action="PAUSE", reason="")

    # deleting a study row takes its rows in every other table with it
    with st.engine.begin() as conn:
        conn.execute(text("delete from study_leases where study_id = :s"), {"s": a.id})
    st.delete_study("a")
    assert st.study_names() == ["b"]
    after = _counts(st)
    assert after == {t: n if t == "study_leases" else n // 2 for t, n in before.items()} | {
        "study_leases": 1}
    with st.engine.begin() as conn:  # and a trial row its values, points, forecasts, decisions
        conn.execute(text("delete from trials"))
    assert _counts(st) == {**{t: 0 for t in _TABLES}, "studies": 1, "evaluations": 1,
                           "study_leases": 1}
    st.close()


def test_upgraded_and_new_databases_have_the_same_constraints(storage_url: str,
                                                              tmp_path: Path) -> None:
    """The CHECKs and cascades that 0007 adds to an old database are those a new one is
    created with (from the enums); the downgrade removes them again and keeps the rows."""
    _fill_0006(storage_url)
    st = Storage(storage_url, check_schema=False)
    st.upgrade_schema()
    before = _counts(st)
    st.close()
    upgraded = _constraints(storage_url)
    if storage_url.startswith("sqlite"):
        fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
        Storage(fresh_url).close()
        assert _constraints(fresh_url) == upgraded
    assert [c for t in ("studies", "trials", "decisions") for c, _ in upgraded[t][0]] == [
        "ck_studies_status", "ck_trials_state", "ck_decisions_action"]
    assert {fk for t in _TABLES for fk in upgraded[t][1]} == {
        (f"fk_{t}_{c}_{p}", "CASCADE") for t, c, p in (
            ("trials", "study_id", "studies"), ("evaluations", "study_id", "studies"),
            ("study_leases", "study_id", "studies"), ("trial_values", "trial_id", "trials"),
            ("curve_points", "trial_id", "trials"), ("forecasts", "trial_id", "trials"),
            ("decisions", "trial_id", "trials"))}
    for state in TrialState:
        assert f"'{state.value}'" in upgraded["trials"][0][0][1]

    from alembic import command

    from nas.storage._schema import _alembic_config, _migrating

    engine = create_engine(storage_url)
    try:
        with _migrating(engine) as conn:
            command.downgrade(_alembic_config(conn), "0006")
    finally:
        engine.dispose()
    down = _constraints(storage_url)
    assert not any(checks for checks, _ in down.values())
    assert {fk for _, fks in down.values() for fk in fks} == {
        (name, None) for _, fks in upgraded.values() for name, _ in fks}
    st = Storage(storage_url, check_schema=False)
    assert _counts(st) == before
    st.close()


def test_new_database_on_each_backend_matches_the_models(storage_url: str) -> None:
    """A new database (created from the models) refuses a bad state too, and cascades."""
    st = Storage(storage_url)
    sid = st.create_study("n", space="s", task="t", objectives=[{"name": "v"}], config={})
    tid = st.create_trial(sid, 0, config={}, distributions={})
    st.add_points(tid, [(1, 0.5, None)])
    with pytest.raises(IntegrityError), st.engine.begin() as conn:
        conn.execute(text("update trials set state = 'PRUNED'"))
    st.delete_study("n")
    assert _counts(st) == {t: 0 for t in _TABLES}
    st.close()
