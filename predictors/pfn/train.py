"""Training of the PFN on prior samples: reproducible from a seed, checkpointed, resumable.

Who calls what: ``nas pfn train`` (``nas/cli/_pfn.py``) builds a :class:`TrainConfig` and calls
:func:`train`; tests call it with tiny sizes.  Each step draws a fresh batch from the prior *on
the training device* with a generator seeded by ``(seed, step)``, so a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would have seen.

A batch shares one horizon ``T`` and one prefix length ``c`` (as in the PFNs code's
"single eval position"), which needs no padding: the ``c`` observed points are context, and
``n_queries`` steps after ``c`` — always including ``T`` itself — are queries whose values are
the targets.

Checkpoint (in ``out``, written atomically every ``checkpoint_every_s`` seconds and at the
end): ``model.safetensors`` (weights and bucket borders), ``config.json`` (model, prior and
training configs, step, curves seen, wall time, last losses) and ``optimizer.pt`` (the
optimizer's ``state_dict``, loaded back with ``torch.load(..., weights_only=True)``).  The
predictor only needs the first two.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.errors import ConfigError
from predictors.pfn.model import PFN, PFNConfig, fit_borders
from predictors.pfn.prior import PriorConfig, sample_prior

__all__ = ["TrainConfig", "TrainResult", "load_model", "read_config", "save_checkpoint", "train"]

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass(frozen=True)
class TrainConfig:
    """How to train (validated).  ``steps`` is the total, also when resuming."""

    steps: int = 20_000
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 500
    n_queries: int = 8
    seed: int = 0
    device: str = "cpu"
    checkpoint_every_s: float = 300.0
    log_every: int = 100
    border_samples: int = 20_000

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "n_queries", "log_every", "border_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} is {getattr(self, name)}, but must be >= 1")
        if self.warmup < 0:
            raise ConfigError(f"warmup is {self.warmup}, but must be >= 0")
        if not self.lr > 0:
            raise ConfigError(f"lr is {self.lr}, but must be > 0")
        if self.checkpoint_every_s <= 0:
            raise ConfigError(f"checkpoint_every_s is {self.checkpoint_every_s}, but must be > 0")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"device is {self.device!r}, but must be 'cpu' or 'cuda[:N]'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What a call to :func:`train` did (the totals include earlier runs when resumed)."""

    step: int
    curves_seen: int
    wall_s: float
    curves_per_s: float
    last_loss: float
    losses: list[float] = field(default_factory=list)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of ``lr`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def _step_generators(seed: int, step: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    key = (seed * 1_000_003 + step) % (2**63)
    cpu = torch.Generator().manual_seed(key)
    dev = torch.Generator(device=device).manual_seed(key ^ 0x5DEECE66D)
    return cpu, dev


def make_batch(
    step: int, cfg: TrainConfig, prior: PriorConfig, device: torch.device
) -> dict[str, torch.Tensor]:
    """The batch of ``step``: context, queries and targets (see the module docstring)."""
    gc, gd = _step_generators(cfg.seed, step, device)
    T = int(torch.randint(prior.min_horizon, prior.max_horizon + 1, (1,), generator=gc))
    c = int(torch.randint(1, T, (1,), generator=gc))
    later = torch.arange(c + 1, T, dtype=torch.long)  # c+1 .. T-1
    pick = later[torch.randperm(later.numel(), generator=gc)[: cfg.n_queries - 1]]
    pos = torch.cat([pick, torch.tensor([T])]).to(device)
    b = sample_prior(cfg.batch, T, config=prior, generator=gd, device=device)
    B = cfg.batch
    return {
        "x_ctx": b.x[:c].expand(B, c),
        "y_ctx": b.y[:, :c],
        "x_qry": (pos.float() / T).expand(B, -1),
        "horizon": torch.full((B,), T, device=device),
        "target": b.y[:, pos - 1],
    }


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(
    out: Path,
    model: PFN,
    prior: PriorConfig,
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Write ``model.safetensors`` + ``config.json`` (+ ``optimizer.pt``) into ``out``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(out / WEIGHTS_FILE, lambda p: save_file(state, str(p)))
    doc = {"model": model.cfg.to_dict(), "prior": prior.to_dict(), **meta}
    _atomic_write(out / CONFIG_FILE, lambda p: p.write_text(json.dumps(doc, indent=2) + "\n"))
    if optimizer is not None:
        _atomic_write(out / OPTIMIZER_FILE, lambda p: torch.save(optimizer.state_dict(), p))


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``, checked: a JSON object whose ``model`` is a valid
    :class:`PFNConfig` (every problem is a :class:`~nas.errors.PredictorError` naming the file)."""
    from nas.errors import PredictorError

    path = Path(directory) / CONFIG_FILE
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise PredictorError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictorError(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PredictorError(f"{path}: must hold a JSON object, not {type(doc).__name__}")
    model = doc.get("model")
    if not isinstance(model, dict):
        raise PredictorError(f"{path}: no 'model' object (the network's sizes)")
    for key, value in model.items():
        want = PFNConfig.__dataclass_fields__.get(key)
        integer = want is not None and want.type in ("int", int)
        if want is not None and (isinstance(value, bool) or not isinstance(
                value, int if integer else (int, float))):
            raise PredictorError(f"{path}: model.{key} is {value!r}, but must be "
                                 + ("an integer" if integer else "a number"))
    try:
        PFNConfig.from_dict(model)
    except (ConfigError, TypeError) as exc:
        raise PredictorError(f"{path}: bad 'model': {exc}") from None
    return doc


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> tuple[PFN, dict[str, Any]]:
    """Load a model saved by :func:`save_checkpoint` (safetensors: no pickle); from a study
    PFN's checkpoint, its (prefix) network.

    A missing, corrupt or truncated file, a bad ``config.json`` or tensors that do not fit the
    configured network raise :class:`~nas.errors.PredictorError` naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from nas.errors import PredictorError

    d = Path(directory)
    if not (d / WEIGHTS_FILE).is_file() or not (d / CONFIG_FILE).is_file():
        raise PredictorError(f"{d} holds no PFN weights ({WEIGHTS_FILE} and {CONFIG_FILE})")
    doc = read_config(d)
    cfg = PFNConfig.from_dict(doc["model"])
    wpath = d / WEIGHTS_FILE
    try:
        state = load_file(str(wpath), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PredictorError(f"{wpath}: not a valid safetensors file (corrupt or truncated?): "
                             f"{first}") from None
    if "study" in doc:  # a study PFN (predictors.pfn.study_train): its prefix network
        state = {k[len("base."):]: v for k, v in state.items() if k.startswith("base.")}
    if "borders" not in state:
        raise PredictorError(f"{wpath}: no 'borders' tensor; not a PFN checkpoint")
    try:
        model = PFN(cfg, borders=state["borders"].cpu()).to(device)
    except ConfigError as exc:
        raise PredictorError(f"{wpath}: does not fit {CONFIG_FILE}: {exc}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing/unexpected keys, shape mismatches
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        raise PredictorError(f"{wpath}: tensors do not fit the network of {CONFIG_FILE} "
                             f"({cfg.n_layers} layers, d_model {cfg.d_model}): {detail}"
                             ) from None
    model.eval()
    return model, doc


def train(
    out: str | Path,
    cfg: TrainConfig,
    model_cfg: PFNConfig | None = None,
    prior: PriorConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    until: int | None = None,
    log_every_s: float = 10.0,
    stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train (or resume training) a PFN and checkpoint it into ``out``.

    With ``resume`` the model, optimizer, prior and step come from ``out``'s checkpoint (model
    and prior configs given here are then ignored); training continues to ``cfg.steps``.
    ``until`` stops early at that step (checkpointed; the schedule is still that of
    ``cfg.steps``), e.g. to split a run over sessions.  Besides every ``cfg.log_every`` steps,
    a loss line is logged at least every ``log_every_s`` seconds (a log file shows progress
    even when 100 steps take minutes).  ``stop``: asked before each step; when it answers
    True training ends there, checkpointed like at the end (``nas pfn train`` on SIGINT or
    SIGTERM).
    """
    out = Path(out)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device is {cfg.device!r}, but CUDA is not available here")
    prior = prior or PriorConfig()
    meta: dict[str, Any] = {}
    if resume:
        model, doc = load_model(out, device)
        prior = PriorConfig.from_dict(doc["prior"])
        start_step = int(doc["step"])
        curves_seen = int(doc["curves_seen"])
        wall_before = float(doc["wall_s"])
        if doc["train"]["seed"] != cfg.seed or doc["train"]["batch"] != cfg.batch:
            log.warning("resuming with seed/batch different from the checkpoint's: not reproducible")
    else:
        model_cfg = model_cfg or PFNConfig()
        torch.manual_seed(cfg.seed)
        vals = sample_prior(
            cfg.border_samples, prior.max_horizon, config=prior, seed=cfg.seed + 7919
        ).y
        borders = fit_borders(vals, model_cfg.n_buckets, model_cfg.edge_width)
        model = PFN(model_cfg, borders).to(device)
        start_step, curves_seen, wall_before = 0, 0, 0.0
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, 0.99))
    if resume and (out / OPTIMIZER_FILE).is_file():
        opt.load_state_dict(torch.load(out / OPTIMIZER_FILE, weights_only=True, map_location=device))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("PFN with %d parameters on %s; steps %d..%d, batch %d", n_params, device,
             start_step, cfg.steps, cfg.batch)

    def checkpoint(step: int, wall: float, losses: list[float]) -> None:
        meta.update(
            train=cfg.to_dict(), step=step, curves_seen=curves_seen, wall_s=wall,
            torch=torch.__version__, device=str(device),
            threads=torch.get_num_threads(), recent_loss=losses[-20:],
            n_params=n_params,
        )
        save_checkpoint(out, model, prior, meta, opt)

    autocast = device.type == "cuda"
    losses: list[float] = []
    window: list[float] = []
    t0 = time.perf_counter()
    last_ckpt = last_log = t0
    step = start_step
    model.train()
    bar: Any = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                       TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())
        bar.start()
        task = bar.add_task("training", total=cfg.steps, completed=start_step, loss=float("nan"))
    try:
        stop_at = cfg.steps if until is None else min(cfg.steps, until)
        while step < stop_at and not (stop is not None and stop()):
            batch = make_batch(step, cfg, prior, device)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, cfg)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(batch["x_ctx"], batch["y_ctx"], batch["x_qry"], batch["horizon"])
            loss = model.loss(logits, batch["target"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            curves_seen += cfg.batch
            window.append(float(loss.detach()))
            now = time.perf_counter()
            logged = step % cfg.log_every == 0 or step == cfg.steps
            if logged or now - last_log >= log_every_s:  # the window goes on between the steps
                mean = sum(window) / len(window)
                if logged:
                    losses.append(mean)
                    window = []
                last_log = now
                log.info("step %d/%d loss %.4f lr %.2e curves/s %.0f", step, cfg.steps, mean,
                         _lr_at(step, cfg), (curves_seen - start_step * cfg.batch) /
                         max(now - t0, 1e-9))
                if bar is not None:
                    bar.update(task, completed=step, loss=mean)
            if now - last_ckpt >= cfg.checkpoint_every_s:
                checkpoint(step, wall_before + now - t0, losses)
                last_ckpt = now
    finally:
        if bar is not None:
            bar.stop()
    wall = time.perf_counter() - t0
    checkpoint(step, wall_before + wall, losses)
    done = (step - start_step) * cfg.batch
    return TrainResult(
        step=step, curves_seen=curves_seen, wall_s=wall_before + wall,
        curves_per_s=done / max(wall, 1e-9), last_loss=losses[-1] if losses else float("nan"),
        losses=losses,
    )
