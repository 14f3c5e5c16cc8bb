"""Curve import and export: exact round trip, missing values, atomic failure (both back ends)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _storage_helpers import storage_url_fixture

from nas.curvefile import load_curves, save_curves
from nas.errors import ConfigError, CurveFileError
from nas.storage import Storage, export_curves, import_curves, open_study
from nas.testing.storage import synthetic_study_curves

storage_url = storage_url_fixture  # the fixture, on SQLite and PostgreSQL


def test_import_export_round_trip(storage_url: str, tmp_path: Path) -> None:
    cs = synthetic_study_curves(n=30, horizon=12, seed=1, ragged=True, nan_fraction=0.05)
    src = tmp_path / "in.npz"
    save_curves(src, cs)
    st = Storage(storage_url)
    res = import_curves(st, src, "syn")
    assert res.trials == 30 and res.points == int(cs.lengths.sum())
    assert res.missing == int(np.isnan(cs.curves[np.arange(12)[None, :] < cs.lengths[:, None]]).sum())
    out = tmp_path / "out.npz"
    assert export_curves(st, "syn", out) == 30
    a, b = load_curves(src), load_curves(out)
    assert np.array_equal(a.curves, b.curves, equal_nan=True)
    assert list(a.lengths) == list(b.lengths)
    assert a.configs == b.configs
    assert list(a.task) == list(b.task)  # type: ignore[arg-type]
    assert np.array_equal(a.config_features, b.config_features)  # type: ignore[arg-type]
    assert a.config_feature_names == b.config_feature_names and b.direction == "maximize"
    # the imported trials: COMPLETE, group = task, value = last value, epochs = length
    h = open_study("syn", storage_url)
    t = h.trials[3]
    assert t.state == "COMPLETE" and t.group == str(cs.task[3])  # type: ignore[index]
    assert t.epochs == cs.lengths[3] and t.features is not None and set(t.features) == {"log10_lr", "layers"}
    last = cs.curves[3, cs.lengths[3] - 1]
    assert (t.value is None) if np.isnan(last) else t.value == pytest.approx(last)
    assert h.record.space == "imported" and h.record.status == "COMPLETE"


def test_inf_and_nan_stored_as_missing_with_warning(storage_url: str, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    cs = synthetic_study_curves(n=4, horizon=5, seed=2, ragged=False)
    cs.curves[0, 1] = np.inf
    cs.curves[1, 4] = -np.inf
    cs.curves[2, 0] = np.nan
    src = tmp_path / "bad.npz"
    save_curves(src, cs)
    st = Storage(storage_url)
    with caplog.at_level(logging.WARNING, logger="nas.storage"):
        res = import_curves(st, src, "inf", direction="minimize")
    assert res.missing == 3
    assert any("3 of 20 curve values are NaN or inf" in r.getMessage() for r in caplog.records)
    h = open_study("inf", storage_url)
    assert h.direction == "minimize"
    assert h.trials[0].curve is not None and h.trials[0].curve[1] is None
    assert h.trials[1].value is None  # its last value was -inf


def test_existing_study_is_an_error_and_changes_nothing(storage_url: str, tmp_path: Path) -> None:
    src = tmp_path / "c.npz"
    save_curves(src, synthetic_study_curves(n=5, horizon=4, seed=3))
    st = Storage(storage_url)
    import_curves(st, src, "dup")
    with pytest.raises(ConfigError, match="already exists"):
        import_curves(st, src, "dup")
    assert len(st.trials(st.get_study("dup").id)) == 5


def test_failed_import_leaves_nothing(storage_url: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the study and trials were inserted rolls everything back."""
    import nas.storage._rows as rows

    src = tmp_path / "c.npz"
    save_curves(src, synthetic_study_curves(n=5, horizon=4, seed=3))
    st = Storage(storage_url)

    def boom(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the points

    monkeypatch.setattr(rows, "_write_new", boom)
    with pytest.raises(KeyboardInterrupt):
        import_curves(st, src, "half")
    assert st.study_names() == []
    from sqlalchemy import text

    with st.engine.connect() as conn:
        assert conn.execute(text("select count(*) from trials")).scalar() == 0


def test_not_a_curve_file(storage_url: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    st = Storage(storage_url)
    with pytest.raises(CurveFileError):
        import_curves(st, junk, "junk")
    np.savez(tmp_path / "nocurves.npz", x=np.zeros(3))
    with pytest.raises(CurveFileError, match="no 'curves'"):
        import_curves(st, tmp_path / "nocurves.npz", "junk")
    assert st.study_names() == []
