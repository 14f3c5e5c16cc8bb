"""Build a study's plug-ins once, from its validated :class:`~nas.config.StudyConfig`.

:func:`build_plugins` is the one place that turns the names of a study file into objects: the
search space, the task and its spec, the trainer, the Optuna sampler, the stopping policy and
the learning-curve predictor.  ``nas validate``, ``nas run`` (before Ray starts), the runner's
engine and the race benchmark all take its :class:`StudyPlugins`; nothing builds them again.

Every plug-in named by a study file is first checked to be a class of its protocol
(:data:`nas.registry.PROTOCOLS`) and the trainer to be a plain function, so nothing that fails
the check is ever called.  Failures are one :class:`~nas.errors.ConfigError` line prefixed with
the file and the key they came from (``FILE: stopping.predictor: ...``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nas.config import SAMPLERS, STOPPING_KEYS, StudyConfig
from nas.errors import ConfigError, NasError
from nas.interfaces import LearningCurvePredictor, StoppingPolicy, TaskSpec

__all__ = ["StudyPlugins", "build_plugins", "make_sampler", "policy_options", "stopping_options"]


def make_sampler(name: str, seed: int, options: Mapping[str, Any]) -> Any:
    """The Optuna sampler named in ``search.sampler`` (constructor errors -> ConfigError)."""
    import optuna

    cls: Callable[..., Any] = getattr(optuna.samplers, SAMPLERS[name])
    try:
        return cls(seed=seed, **dict(options))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"search.sampler_options = {dict(options)!r}: not accepted by the "
                          f"{name} sampler: {exc}") from exc


def policy_options(cfg: StudyConfig) -> dict[str, Any]:
    """``stopping.options``, with the predictive rule's keys of the ``[stopping]`` table."""
    st = cfg.stopping
    return stopping_options(st.policy, st.options, delta=st.delta, min_epochs=st.min_epochs,
                            epsilon=st.epsilon)


def stopping_options(policy: str, options: Mapping[str, Any], *, delta: float,
                     min_epochs: int, epsilon: float) -> dict[str, Any]:
    """The policy's options from the fields of a ``[stopping]`` table (:func:`policy_options`;
    ``nas bench replay`` reads them from a curve file's ``stopping``)."""
    out: dict[str, Any] = dict(options)
    given = {"delta": delta, "min_epochs": min_epochs, "epsilon": epsilon}
    for name in STOPPING_KEYS.get(policy, ()):  # a study file has them in [stopping] only
        out.setdefault(name, given[name])
    return out


@dataclass(frozen=True)
class StudyPlugins:
    """The built plug-ins of one study (see the module docstring)."""

    space: Any
    task: Any
    spec: TaskSpec
    policy: StoppingPolicy
    sampler: Any
    #: the trainer function of ``training.trainer`` (None: nas's own, loaded on the workers)
    trainer: Callable[..., Any] | None
    #: the predictor as built, never fitted: :meth:`new_predictor` hands out copies
    predictor: LearningCurvePredictor | None

    def new_predictor(self) -> LearningCurvePredictor | None:
        """A fresh, unfitted copy of the study's predictor (for each refit; the copy in use by
        the stopping hook is never mutated)."""
        return None if self.predictor is None else copy.deepcopy(self.predictor)


def build_plugins(cfg: StudyConfig) -> StudyPlugins:
    """Build every plug-in of ``cfg`` once, so that their own option checks run now.  Imports
    the plug-ins (may import torch)."""
    from nas.policies import make_policy
    from nas.registry import check_class, check_trainer, create, load

    def build(key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except NasError as exc:
            raise ConfigError(f"{cfg.source}: {key}: {exc}") from exc
        except Exception as exc:
            raise ConfigError(f"{cfg.source}: {key}: {type(exc).__name__}: {exc}") from exc

    build("search.space", lambda: check_class("space", cfg.search.space,
                                              load("space", cfg.search.space)))
    build("task.name", lambda: check_class("task", cfg.task.name, load("task", cfg.task.name)))
    trainer = None
    if cfg.training.trainer is not None:
        trainer = build("training.trainer", lambda: check_trainer(cfg.training.trainer or ""))
    space = build("search.space_options",
                  lambda: create("space", cfg.search.space, dict(cfg.search.space_options)))
    task = build("task.options", lambda: create("task", cfg.task.name, dict(cfg.task.options)))
    spec = build("task", task.spec)
    if cfg.search.objectives and cfg.search.objectives[0].name != spec.objective:
        o = cfg.search.objectives[0]
        raise ConfigError(f"{cfg.source}: search.objectives[0].name = {o.name!r}: the task "
                          f"{cfg.task.name!r} reports {spec.objective!r}; the first objective "
                          "must be the task's")
    policy = build("stopping", lambda: make_policy(cfg.stopping.policy, policy_options(cfg)))
    sampler = build("search.sampler_options", lambda: make_sampler(
        cfg.search.sampler, cfg.study.seed, cfg.search.sampler_options))
    predictor = None
    if cfg.stopping.predictor is not None:  # built now: one that cannot be is an error
        predictor = build("stopping.predictor",
                          lambda: create("predictor", cfg.stopping.predictor or ""))
    return StudyPlugins(space=space, task=task, spec=spec, policy=policy, sampler=sampler,
                        trainer=trainer, predictor=predictor)
