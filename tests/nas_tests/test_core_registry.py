"""The plug-in registry, the curve-file reader and the CLI's exit-code conventions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas import registry
from nas.cli import main
from nas.curvefile import CurveSet, load_curves, save_curves
from nas.errors import CurveFileError, PluginError
from nas.interfaces import Curve, TaskSpec


def test_entry_point_groups_list_the_built_in_plugins() -> None:
    assert "seq_cells" in registry.available("space")
    assert {"parity", "copy", "digits", "lorenz96"} <= set(registry.available("task"))
    assert {"none", "median", "asha", "predictive"} <= set(registry.available("policy"))
    assert {"baker", "pfn"} <= set(registry.available("predictor"))


def test_module_attr_names_load_and_bad_names_raise_plugin_error() -> None:
    assert registry.load("task", "nas.interfaces:TaskSpec") is TaskSpec
    with pytest.raises(PluginError, match="unknown space 'nope'"):
        registry.load("space", "nope")
    with pytest.raises(PluginError, match="no attribute"):
        registry.load("space", "nas.interfaces:Missing")
    with pytest.raises(PluginError, match="cannot import module"):
        registry.load("space", "no_such_module_xyz:Thing")
    with pytest.raises(PluginError, match="unknown plug-in kind"):
        registry.available("widget")


def test_a_trainer_is_checked_against_the_trainer_protocol() -> None:
    """``training.trainer`` must be a function callable as the :class:`Trainer` protocol says;
    the check reads the protocol, and nothing is called."""
    from nas.testing.toy import toy_train
    from nas.training import train

    assert registry.trainer_arguments() == ("space", "config", "task", "options", "report")
    assert registry.check_trainer("nas.training:train") is train
    assert registry.check_trainer("nas.testing.toy:toy_train") is toy_train
    # toy_curve(config, epoch, seed=0) is a function, but not one a worker can call
    with pytest.raises(PluginError, match=r"trainer 'nas.testing.toy:toy_curve' is not a "
                                          r"training function: it cannot be called as "
                                          r"trainer\(space, config, task, options, report\)"):
        registry.check_trainer("nas.testing.toy:toy_curve")
    with pytest.raises(PluginError, match="not a training function"):
        registry.check_trainer("nas.testing.toy:ToySpace")
    with pytest.raises(PluginError, match='must be "module:function"'):
        registry.check_trainer("train")


def test_taskspec_normalises_both_directions_and_clips() -> None:
    up = TaskSpec("t", 1, 2, 4, objective_range=(0.5, 1.0))
    assert up.normalise(0.75) == pytest.approx(0.5)
    assert up.normalise(2.0) == 1.0 and up.normalise(0.0) == 0.0
    down = TaskSpec("t", 1, 2, 4, direction="minimize", objective_range=(0.0, 4.0))
    assert down.normalise(1.0) == pytest.approx(0.75)
    assert down.denormalise(down.normalise(3.0)) == pytest.approx(3.0)
    assert np.isnan(up.normalise(float("nan")))


def test_curve_coerces_to_float_vectors() -> None:
    c = Curve([1, 2, 3], features=[[0.5]])
    assert c.values.dtype == np.float64 and len(c) == 3
    assert c.features is not None and c.features.shape == (1,)


def _curve_set() -> CurveSet:
    curves = np.array([[0.1, 0.2, 0.3], [0.5, np.nan, np.nan]])
    return CurveSet(
        curves=curves,
        lengths=np.array([3, 1]),
        configs=[{"lr": 0.1}, {"lr": 0.01}],
        task=np.array(["a", "b"], dtype=object),
        config_features=np.array([[1.0], [2.0]]),
        config_feature_names=["lr"],
    )


def test_curve_file_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "c.npz"
    save_curves(p, _curve_set())
    back = load_curves(p)
    assert back.n == 2 and back.horizon == 3
    np.testing.assert_array_equal(back.lengths, [3, 1])
    np.testing.assert_allclose(back.curve(0), [0.1, 0.2, 0.3])
    assert back.configs == [{"lr": 0.1}, {"lr": 0.01}]
    assert list(back.task) == ["a", "b"]
    assert back.config_feature_names == ["lr"]
    back.require_unit_range()


def test_curve_file_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CurveFileError, match="no such file"):
        load_curves(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", values=np.zeros((2, 3)))
    with pytest.raises(CurveFileError, match="no 'curves' array"):
        load_curves(tmp_path / "bad.npz")
    np.savez(tmp_path / "wide.npz", curves=np.full((2, 3), 5.0))
    with pytest.raises(CurveFileError, match=r"\[0, 1\]"):
        load_curves(tmp_path / "wide.npz").require_unit_range()
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(CurveFileError, match="not a curve file"):
        load_curves(tmp_path / "text.npz")


def test_cli_usage_error_exits_2_and_help_exits_0() -> None:
    assert main(["--help"]) == 0
    assert main(["no-such-command"]) == 2


def test_console_script_reports_user_errors_in_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())",
         "no-such-command"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
