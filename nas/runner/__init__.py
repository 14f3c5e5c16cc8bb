"""Running a study: the driver side of ``nas run`` and :func:`nas.run`.

* :mod:`nas.runner._study` -- :func:`run_study`: storage, the study row, Ray start-up, the Tuner,
  interruption and the summary;
* :mod:`nas.runner._engine` -- the trial lifecycle the Tune adapters call into (no Ray);
* :mod:`nas.runner._tune` -- the Ray Tune adapters and the worker-side trainable (the only Ray
  module of the runner);
* :mod:`nas.runner._orphans` -- Ray temp dirs left behind by killed drivers.

docs/architecture.md draws where the runner sits among the packages.
"""

from nas.runner._study import RunSummary, Terminated, open_run_storage, quiet_ray_env, run_study

__all__ = ["RunSummary", "Terminated", "open_run_storage", "quiet_ray_env", "run_study"]
