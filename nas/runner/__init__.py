"""Running a study: the driver side of ``nas run`` and :func:`nas.run`.

* :mod:`nas.runner._study` -- :func:`run_study`: storage, the study row, Ray start-up, the Tuner,
  interruption and the summary;
* :mod:`nas.runner._engine` -- the trial lifecycle the Tune adapters call into (no Ray): Optuna
  ask/tell and the stopping hook, over
  * :mod:`nas.runner._writer` -- the typed database writes and the thread that applies them,
  * :mod:`nas.runner._history` -- rebuilding the Optuna study and the mirror from the database,
  * the stopping session (:class:`nas.policies.StoppingSession`) refits the predictor on its own thread,
  * :mod:`nas.runner._watchdog` -- the time-limit watchdog,
  * :mod:`nas.runner._stats` -- run statistics and their :class:`RunStats` snapshot (what the
    progress view reads),
  * :mod:`nas.runner._trials` -- the record of a live trial;
* :mod:`nas.runner._tune` -- the Ray Tune adapters and the worker-side trainable (the only Ray
  module of the runner);
* :mod:`nas.runner._worker` -- the worker side of a trial (Ray-free): :func:`static_payload`,
  the trainer call and its reports;
* :mod:`nas.runner._orphans` -- Ray temp dirs left behind by killed drivers.

docs/architecture.md draws where the runner sits among the packages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.runner._signals import received_stop_signal
from nas.runner._stats import RunStats
from nas.runner._study import RunSummary, Terminated, open_run_storage, quiet_ray_env, run_study
from nas.runner._worker import TrialSetup, prepare_trial, static_payload

if TYPE_CHECKING:  # loaded on first use: the module imports ray
    from nas.runner._tune import start_ray

__all__ = ["RunStats", "RunSummary", "Terminated", "TrialSetup", "open_run_storage",
           "prepare_trial", "quiet_ray_env", "received_stop_signal", "run_study", "start_ray",
           "static_payload"]


def __getattr__(name: str) -> Any:
    if name == "start_ray":
        from nas.runner._tune import start_ray

        return start_ray
    raise AttributeError(f"module 'nas.runner' has no attribute {name!r}")
