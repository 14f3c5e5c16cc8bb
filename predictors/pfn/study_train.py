"""Training of the study reader on the study prior: seeded, checkpointed, resumable.

Who calls what: ``nas pfn train --study`` calls :func:`train_study`; tests call it tiny.

The prefix network starts from a trained PFN checkpoint (by default the shipped one) and stays
frozen (``--tune-base`` trains it too): without context the model answers exactly as that PFN.
Each step draws, with a generator seeded by ``(seed, step)``, ``batch // targets`` studies of
``K + targets`` runs (one horizon ``T``, one prefix length ``c``, one ``K`` per step; ``K`` is 0
in some steps): ``targets`` runs per study are queried at ``c`` and 8 later steps (always ``T``),
the other ``K`` are its context.  A context run is complete with a probability that grows with
its final rank in a study-specific way (a stopping rule keeps the good runs), otherwise it is cut
at a rung (T/9 or T/3) or at a random step.  Config features: the first ``F`` of 8 (``F`` is 0
in a quarter of the steps, so the model also learns studies without features).

Checkpoint (in ``out``): ``model.safetensors`` (prefix network and reader), ``config.json`` (with
a ``study`` section) and ``optimizer.pt`` (outside the shipped package: copy only the first two).
SIGTERM and SIGINT stop at the end of the current step and write a final checkpoint.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import torch

from nas.errors import ConfigError, PredictorError
from predictors.pfn.model import PFN
from predictors.pfn.study_model import StudyConfig, StudyPFN, StudyTensors
from predictors.pfn.study_prior import N_FEATURES, sample_studies
from predictors.pfn.train import (
    CONFIG_FILE,
    OPTIMIZER_FILE,
    WEIGHTS_FILE,
    TrainResult,
    _atomic_write,
    load_model,
)

__all__ = ["StudyTrainConfig", "load_study_model", "make_study_batch", "train_study"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyTrainConfig:
    """How to train the reader (validated).  ``steps`` is the total, also when resuming."""

    steps: int = 20_000
    batch: int = 64
    targets: int = 4
    lr: float = 5e-4
    warmup: int = 300
    n_queries: int = 8
    seed: int = 0
    checkpoint_every_s: float = 240.0
    log_every: int = 50
    tune_base: bool = False
    min_horizon: int = 10
    max_horizon: int = 100

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "targets", "n_queries", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} is {getattr(self, name)}, but must be >= 1")
        if self.batch % self.targets:
            raise ConfigError(f"batch ({self.batch}) must be a multiple of targets ({self.targets})")
        if not self.lr > 0 or self.warmup < 0 or self.checkpoint_every_s <= 0:
            raise ConfigError("lr and checkpoint_every_s must be > 0, warmup >= 0")
        if not 2 <= self.min_horizon <= self.max_horizon:
            raise ConfigError("horizons must satisfy 2 <= min_horizon <= max_horizon")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lr_at(step: int, cfg: StudyTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def make_study_batch(step: int, cfg: StudyTrainConfig, max_context: int,
                     k: int | None = None) -> dict[str, Any]:
    """The batch of ``step`` (see the module docstring); ``k`` forces the context size."""
    g = torch.Generator().manual_seed((cfg.seed * 1_000_003 + step) % (2**63))
    T = int(torch.randint(cfg.min_horizon, cfg.max_horizon + 1, (1,), generator=g))
    c = int(torch.randint(1, T, (1,), generator=g))
    if k is None:
        k = 0 if float(torch.rand(1, generator=g)) < 0.1 else int(
            torch.randint(1, max_context + 1, (1,), generator=g))
    n_feat = 0 if float(torch.rand(1, generator=g)) < 0.25 else int(
        torch.randint(1, N_FEATURES + 1, (1,), generator=g))
    Qt = cfg.targets
    S = cfg.batch // Qt
    sb = sample_studies(S, k + Qt, T, generator=g)
    y = sb.y
    later = torch.arange(c + 1, T, dtype=torch.long)
    pick = later[torch.randperm(later.numel(), generator=g)[: cfg.n_queries - 1]]
    pos = torch.cat([pick, torch.tensor([T])])
    tgt = y[:, :Qt].reshape(S * Qt, T)
    B = S * Qt
    out: dict[str, Any] = {
        "x_ctx": (torch.arange(1, c + 1, dtype=torch.float32) / T).expand(B, c),
        "y_ctx": tgt[:, :c],
        "x_qry": (pos.float() / T).expand(B, -1),
        "horizon": torch.full((B,), T),
        "target": tgt[:, pos - 1],
        "study": None, "sidx": None, "qfeats": None,
    }
    if k == 0:
        return out
    cy = y[:, Qt:]
    final = cy[..., -1]
    rank = final.argsort(1).argsort(1).float() / max(1, k - 1)
    a = torch.rand(S, 1, generator=g) * 8.0
    b = torch.rand(S, 1, generator=g) * 4.0 - 2.0
    complete = torch.rand(S, k, generator=g) < torch.sigmoid(a * (rank - 0.5) + b)
    rung = torch.where(torch.rand(S, k, generator=g) < 0.5, max(1, round(T / 9)), max(1, round(T / 3)))
    anywhere = torch.randint(1, T, (S, k), generator=g)
    cut = torch.where(torch.rand(S, k, generator=g) < 0.5, rung, anywhere)
    length = torch.where(complete, torch.full_like(cut, T), cut)
    cy = cy * (torch.arange(T)[None, None, :] < length[..., None])
    feats = sb.z[..., :n_feat]
    out["study"] = StudyTensors(y=cy, length=length, complete=complete,
                                feats=feats[:, Qt:] if n_feat else None)
    out["sidx"] = torch.arange(S).repeat_interleave(Qt)
    out["qfeats"] = feats[:, :Qt].reshape(B, n_feat) if n_feat else None
    return out


def load_study_model(directory: str | Path, device: str | torch.device = "cpu"
                     ) -> tuple[StudyPFN, dict[str, Any]]:
    """Load a checkpoint written by :func:`train_study` (safetensors: no pickle)."""
    from safetensors.torch import load_file

    d = Path(directory)
    base, doc = load_model(d, device)  # every check of the prefix network's tensors
    if "study" not in doc:
        raise PredictorError(f"{d / CONFIG_FILE}: no 'study' section; not a study PFN checkpoint")
    try:
        scfg = StudyConfig.from_dict(doc["study"])
    except (ConfigError, TypeError) as exc:
        raise PredictorError(f"{d / CONFIG_FILE}: bad 'study': {exc}") from None
    wpath = d / WEIGHTS_FILE
    state = load_file(str(wpath), device=str(device))  # loaded once already: readable
    model = StudyPFN(base, scfg).to(device)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise PredictorError(f"{wpath}: tensors do not fit the study reader of {CONFIG_FILE}: "
                             f"{detail[:160]}") from None
    model.eval()
    return model, doc


class _Stop:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.flag = False
        self.old: dict[int, Any] = {}

    def __enter__(self) -> Self:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.old[sig] = signal.signal(sig, self._set)
            except ValueError:  # not the main thread
                pass
        return self

    def _set(self, signum: int, frame: Any) -> None:
        log.info("signal %d: stopping after this step and checkpointing", signum)
        self.flag = True

    def __exit__(self, *exc: object) -> None:
        for sig, h in self.old.items():
            signal.signal(sig, h)


def train_study(
    out: str | Path,
    cfg: StudyTrainConfig,
    *,
    base: str | Path | None = None,
    study_cfg: StudyConfig | None = None,
    base_model: PFN | None = None,
    resume: bool = False,
    until: int | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train (or resume) the study reader into ``out`` (see the module docstring).

    ``base``: the prefix PFN checkpoint to start from (default: the shipped weights), or a
    ``base_model`` (tests: an untrained tiny PFN)."""
    out = Path(out)
    if resume:
        model, doc = load_study_model(out)
        start, seen, wall_before = int(doc["step"]), int(doc["curves_seen"]), float(doc["wall_s"])
        prior_seen = int(doc.get("prior_curves_seen", 0))
        meta: dict[str, Any] = {k: doc[k] for k in ("base_from", "command_first") if k in doc}
    else:
        if base_model is None:
            from predictors.pfn._predictor import default_weights_dir

            src = Path(base) if base is not None else default_weights_dir()
            pfn, _ = load_model(src)
            base_from = str(src)
        else:
            pfn, base_from = base_model, "given"
        torch.manual_seed(cfg.seed)
        model = StudyPFN(pfn, study_cfg)
        start, seen, wall_before, prior_seen = 0, 0, 0.0, 0
        meta = {"base_from": base_from, "command_first": command}
    model.base.requires_grad_(cfg.tune_base)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
    if resume and (out / OPTIMIZER_FILE).is_file():
        opt.load_state_dict(torch.load(out / OPTIMIZER_FILE, weights_only=True))
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in params)
    log.info("study PFN: %d parameters (%d trained); steps %d..%d", n_params, n_train, start, cfg.steps)
    losses: list[float] = []
    window: list[float] = []
    t0 = time.perf_counter()
    last = t0
    step = start

    def checkpoint() -> None:
        import platform

        meta.update(kind="study", study=model.scfg.to_dict(), train=cfg.to_dict(), step=step,
                    curves_seen=seen, prior_curves_seen=prior_seen,
                    wall_s=wall_before + time.perf_counter() - t0, torch=torch.__version__,
                    device="cpu", threads=torch.get_num_threads(), recent_loss=losses[-20:],
                    n_params=n_params, n_trained=n_train, command_last=command,
                    machine=f"{platform.machine()} {platform.processor() or ''} "
                            f"{__import__('os').cpu_count()} cpus".strip())
        _save(out, model, meta, opt)

    model.train()
    stop_at = cfg.steps if until is None else min(cfg.steps, until)
    with _Stop() as stop:
        while step < stop_at and not stop.flag:
            b = make_study_batch(step, cfg, model.scfg.max_context)
            for grp in opt.param_groups:
                grp["lr"] = _lr_at(step, cfg)
            logits = model(b["x_ctx"], b["y_ctx"], b["x_qry"], b["horizon"], None, b["study"],
                           b["sidx"], b["qfeats"], frozen_base=not cfg.tune_base)
            loss = model.loss(logits, b["target"])
            opt.zero_grad(set_to_none=True)
            if loss.requires_grad:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
            step += 1
            seen += cfg.batch
            k = 0 if b["study"] is None else int(b["study"].y.shape[1])
            prior_seen += (cfg.batch // cfg.targets) * (k + cfg.targets)
            window.append(float(loss.detach()))
            if step % cfg.log_every == 0:
                losses.append(sum(window) / len(window))
                window = []
                el = time.perf_counter() - t0
                log.info("step %d loss %.4f lr %.2e target curves/s %.1f prior curves/s %.0f",
                         step, losses[-1], _lr_at(step, cfg), (step - start) * cfg.batch / el,
                         prior_seen / max(el + wall_before, 1e-9))
            now = time.perf_counter()
            if now - last >= cfg.checkpoint_every_s:
                checkpoint()
                last = now
        checkpoint()
    wall = time.perf_counter() - t0
    return TrainResult(step=step, curves_seen=seen, wall_s=wall_before + wall,
                       curves_per_s=(step - start) * cfg.batch / max(wall, 1e-9),
                       last_loss=losses[-1] if losses else float("nan"), losses=losses)


def _save(out: Path, model: StudyPFN, meta: dict[str, Any], opt: torch.optim.Optimizer | None
          ) -> None:
    """Write ``model.safetensors`` + ``config.json`` (+ ``optimizer.pt``) atomically."""
    import json

    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(out / WEIGHTS_FILE, lambda p: save_file(state, str(p)))
    doc = {"model": model.cfg.to_dict(),
           "prior": {"kind": "study", "module": "predictors.pfn.study_prior"}, **meta}
    _atomic_write(out / CONFIG_FILE, lambda p: p.write_text(json.dumps(doc, indent=2) + "\n"))
    if opt is not None:
        _atomic_write(out / OPTIMIZER_FILE, lambda p: torch.save(opt.state_dict(), p))
