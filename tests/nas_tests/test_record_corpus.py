"""benchmarks/record_corpus.py: the join of per-study exports, with a minimised study mapped
to [0, 1] higher better (family (d)'s lorenz96), and the (d) study files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from nas.config import load_config
from nas.curvefile import CurveSet, load_curves, save_curves

ROOT = Path(__file__).resolve().parents[2]


def _module():  # benchmarks/ is not a package: load the script by path
    spec = importlib.util.spec_from_file_location("record_corpus",
                                                  ROOT / "benchmarks" / "record_corpus.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_to_unit_maps_losses_like_the_taskset_file() -> None:
    rc = _module()
    losses = np.array([[1.0, 0.8, 0.5], [0.9, 0.2, np.nan]])
    y, ref, best = rc.to_unit(losses, 0.8)
    assert (ref, best) == (0.8, 0.2)
    np.testing.assert_allclose(y[0], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(y[1, :2], [0.0, 1.0])
    assert np.isnan(y[1, 2])
    y, ref, _ = rc.to_unit(losses, None)  # no reference forecast: the worst loss is 0
    assert ref == 1.0 and y[0, 0] == 0.0


def test_join_normalises_a_minimised_study_and_keeps_the_raw_values(tmp_path: Path,
                                                                    monkeypatch) -> None:
    rc = _module()
    monkeypatch.setattr(rc, "reference_loss", lambda study_file: 1.0)
    lo = tmp_path / "lo.npz"
    hi = tmp_path / "hi.npz"
    save_curves(lo, CurveSet(np.array([[1.2, 0.5], [0.9, 0.25]]), np.array([2, 2]),
                             direction="minimize"))
    save_curves(hi, CurveSet(np.array([[0.1, 0.7], [0.2, 0.3]]), np.array([2, 2])))
    out = tmp_path / "joined.npz"
    rc.join([(lo, "lorenz96", Path("x.toml")), (hi, "hmm", Path("y.toml"))], out)
    cs = load_curves(out)
    cs.require_unit_range()
    np.testing.assert_allclose(cs.curves[:2], [[0.0, 0.5 / 0.75], [0.1 / 0.75, 1.0]], atol=1e-12)
    np.testing.assert_allclose(cs.curves[2:], [[0.1, 0.7], [0.2, 0.3]])
    assert list(cs.task) == ["lorenz96", "lorenz96", "hmm", "hmm"]
    z = np.load(out)
    np.testing.assert_allclose(z["raw_curves"][0], [1.2, 0.5])
    assert z["reference"][0] == 1.0 and z["best_raw"][0] == 0.25 and np.isnan(z["reference"][2])


def test_family_d_study_files_are_valid() -> None:
    for stem in _module().FAMILIES["d"][0]:
        cfg = load_config(ROOT / "benchmarks" / "corpus" / f"{stem}.toml")
        assert cfg.training.max_epochs == 30 and cfg.stopping.policy == "none"
        assert cfg.search.sampler == "random"


def test_reference_loss_is_the_persistence_mse_of_lorenz96() -> None:
    rc = _module()
    corpus = ROOT / "benchmarks" / "corpus"
    assert abs(rc.reference_loss(corpus / "d_lorenz96.toml") - 0.8505) < 1e-3
    assert rc.reference_loss(corpus / "d_hmm.toml") is None
