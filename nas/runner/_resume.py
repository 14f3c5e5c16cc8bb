"""A study's row at the start of a run: created, or (``--resume``) reopened after checking that
the study file still means the same trials (:data:`RESUME_KEYS`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nas.config import SECTIONS, StudyConfig, default_of, section_keys
from nas.errors import ConfigError
from nas.interfaces import Direction, StudyStatus
from nas.training import DEFAULT_TRAINER

if TYPE_CHECKING:
    from nas.storage import LeaseHolder

logger = logging.getLogger("nas.runner")

__all__ = ["RESUME_KEYS", "prepare_study", "resume_differences", "stored_config"]


#: The keys that change what a trial means (declared ``resume=True`` on their section's field):
#: ``--resume`` refuses a study file whose values differ from the stored ones (docs/runner.md
#: lists what may change).
RESUME_KEYS: tuple[tuple[str, str], ...] = tuple(
    (sec, f.name) for sec, cls in SECTIONS.items() for f, r in section_keys(cls) if r.resume
    and f.name != "objectives")  # the objectives are compared with their directions


def _defaults() -> dict[str, dict[str, Any]]:
    """What a key left out of a stored or current study file means."""
    out = {sec: {f.name: default_of(f) for f, _ in section_keys(cls)}
           for sec, cls in SECTIONS.items()}
    out["training"]["trainer"] = DEFAULT_TRAINER  # what None means
    return out


def resume_differences(stored: Mapping[str, Any], stored_objectives: Sequence[Mapping[str, Any]],
                       cfg: StudyConfig, objectives: Sequence[Mapping[str, Any]]) -> list[str]:
    """``KEY: OLD → NEW`` for every key of :data:`RESUME_KEYS` (and the objectives with their
    directions) where the study file differs from the study's stored config."""
    new = cfg.to_dict()
    defaults = _defaults()
    diffs = []
    old_obj = [{"name": o.get("name"), "direction": o.get("direction", Direction.MAXIMIZE)}
               for o in stored_objectives]
    new_obj = [{"name": o["name"], "direction": o["direction"]} for o in objectives]
    if old_obj != new_obj:
        def show(objs: list[dict[str, Any]]) -> str:
            return ", ".join(f"{o['name']} ({o['direction']})" for o in objs) or "none"
        diffs.append(f"search.objectives: {show(old_obj)} → {show(new_obj)}")
    for sec, key in RESUME_KEYS:
        default = defaults[sec].get(key)
        old = dict(stored.get(sec) or {}).get(key)
        cur = dict(new.get(sec) or {}).get(key)
        old, cur = (default if old is None else old), (default if cur is None else cur)
        if old != cur:
            diffs.append(f"{sec}.{key}: {old!r} → {cur!r}")
    return diffs


def _take_lease(st: Any, study_id: int, name: str, holder: LeaseHolder, action: str) -> None:
    old = st.acquire_lease(study_id, name, holder, action=action)
    if old is not None:
        logger.warning("study %s: took over the lease of %s (last heartbeat %.0f s ago; %s)",
                       name, old.holder.describe(), old.age_s,
                       "that process is gone" if old.dead() else "lease timed out")


def prepare_study(cfg: StudyConfig, st: Any, resume: bool, spec: Any,
                  holder: LeaseHolder | None = None) -> tuple[int, str | None]:
    """The study's id, and its status before this run (None: created by this run).  With a
    ``holder``, the study's lease is taken for it first (a live lease raises
    :class:`~nas.errors.StudyLeasedError` before anything is changed)."""
    objectives = [{"name": o.name, "direction": o.direction} for o in cfg.search.objectives] \
        or [{"name": spec.objective, "direction": spec.direction}]
    if resume and cfg.name in st.study_names():
        rec = st.get_study(cfg.name)
        if holder is not None:
            _take_lease(st, rec.id, cfg.name, holder, "--resume")
        diffs = resume_differences(rec.config, rec.objectives, cfg, objectives)
        if diffs:
            if holder is not None:
                st.release_lease(rec.id, holder.token)
            raise ConfigError(f"{cfg.source}: --resume refused: study {cfg.name!r} was run with "
                              f"other settings ({'; '.join(diffs)}); restore them, or run "
                              "under a new study name")
        n = st.mark_interrupted(rec.id)
        if n:
            logger.info("study %s: %d trial(s) left RUNNING marked INTERRUPTED", cfg.name, n)
        st.set_study_status(rec.id, StudyStatus.RUNNING)
        return int(rec.id), str(rec.status)
    study_id = int(st.create_study(cfg.name, space=cfg.search.space, task=cfg.task.name,
                                   objectives=objectives, config=stored_config(cfg)))
    if holder is not None:
        _take_lease(st, study_id, cfg.name, holder, "nas run")
    return study_id, None


def stored_config(cfg: StudyConfig) -> dict[str, Any]:
    """What ``studies.config`` keeps of the study file: everything but ``study.storage`` (a URL
    may hold a password; where the study lives is known to whoever reads it)."""
    d = cfg.to_dict()
    d["study"].pop("storage", None)
    return d
