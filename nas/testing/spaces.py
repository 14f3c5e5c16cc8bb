"""Conformance checks for search spaces and tasks, for nas's own tests and for third parties.

``check_space(space, task, samples, seed)`` samples ``samples`` configurations with Optuna's
define-by-run API (a seeded :class:`optuna.samplers.RandomSampler`, so coverage reflects the
space's own choice distributions), and for each one checks:

* the config's JSON round trip (``json.loads(json.dumps(c)) == c``); the model is built from
  the round-tripped config;
* determinism: two builds under the same ``torch.manual_seed`` have equal parameters and equal
  eval-mode outputs;
* shapes: (B, output_size) for ``output_mode == "last"``, (B, T, output_size) for
  ``"sequence"``;
* finite loss and finite gradients after a backward pass on a task batch;
* causality: outputs at steps <= t are unchanged when the inputs after t change.  The per-step
  outputs come from ``model.forward_sequence(x)`` when the model has it, from the model itself
  for ``sequence`` tasks, and otherwise from the same config built for the task spec with
  ``output_mode="sequence"`` (spaces build per-step heads for such specs);
* ``ms_per_step``: median wall time of a training step (forward, loss, backward, optimiser
  step with the config's optimiser) over a few steps after a warm-up.

``check_task(task, seed)`` checks a task's spec and data: shapes and dtypes, label ranges,
determinism under a seed, and that the objective of a trivial and of a perfect predictor lie in
the declared range.  Both return report objects; ``report.ok`` tells whether all passed, and
:meth:`SpaceCheck.to_dict` gives the JSON document ``nas spaces check --format json`` prints.

The tiny reference space for such tests is :class:`nas.testing.toy.ToySpace` (with ``cells``
given it searches stacked GRU/LSTM/RNN layers with the config conventions of ``seq_cells``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nas._checks import Checker
from nas._json import jsonable_or_repr
from nas.interfaces import DIRECTIONS, Direction

if TYPE_CHECKING:
    import torch

    from nas.interfaces import SearchSpace, Task, TaskSpec

__all__ = [
    "COVERAGE_KEYS",
    "SampleCheck",
    "SpaceCheck",
    "TaskCheck",
    "check_sample",
    "check_space",
    "check_task",
]

logger = logging.getLogger(__name__)

COVERAGE_KEYS = ("cell", "hypernet", "activation")


@dataclass
class SampleCheck:
    """The result of checking one sampled configuration."""

    config: Any
    n_params: int | None = None
    ms_per_step: float | None = None
    ok: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "n_params": self.n_params,
                "ms_per_step": self.ms_per_step, "ok": self.ok, "error": self.error}


@dataclass
class SpaceCheck:
    """All samples of :func:`check_space` and their summary (coverage counts each layer)."""

    space: str
    task: str
    samples: list[SampleCheck] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(not s.ok for s in self.samples)

    @property
    def ok(self) -> bool:
        return self.failures == 0

    def coverage(self) -> dict[str, dict[str, int]]:
        """How often each cell, hypernetwork and activation was sampled, per layer, and (for
        spaces whose configs name a ``pattern``) how often each layer pattern was sampled."""
        cov: dict[str, dict[str, int]] = {k: {} for k in COVERAGE_KEYS}
        for s in self.samples:
            for layer in _layers(s.config):
                for key in COVERAGE_KEYS:
                    v = layer.get(key)
                    if v is None:
                        continue
                    name = str(v)
                    cov[key][name] = cov[key].get(name, 0) + 1
            if isinstance(s.config, Mapping) and "pattern" in s.config:  # hybrid stacks
                name = str(s.config["pattern"])
                pat = cov.setdefault("pattern", {})
                pat[name] = pat.get(name, 0) + 1
        return {k: dict(sorted(v.items())) for k, v in cov.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``nas spaces check --format json``."""
        return {
            "space": self.space,
            "task": self.task,
            "samples": [s.to_dict() for s in self.samples],
            "summary": {"n": len(self.samples), "failures": self.failures,
                        "coverage": self.coverage()},
        }


@dataclass
class TaskCheck:
    """The result of :func:`check_task`: an empty ``problems`` list means the task passed."""

    task: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _layers(config: Any) -> list[Mapping[str, Any]]:
    if not isinstance(config, Mapping):
        return []
    layers = config.get("layers")
    if isinstance(layers, list):
        return [layer for layer in layers if isinstance(layer, Mapping)]
    return [config] if any(k in config for k in COVERAGE_KEYS) else []


# ---------------------------------------------------------------------------------------------
# one sample


def _build(space: SearchSpace, config: Mapping[str, Any], spec: TaskSpec,
           seed: int) -> torch.nn.Module:
    import torch

    torch.manual_seed(seed)
    return space.build(config, spec)


def _per_step(space: SearchSpace, config: Mapping[str, Any], spec: TaskSpec, seed: int,
              model: torch.nn.Module) -> Any:
    """A function x -> (B, T, out) per-step outputs (see the module docstring)."""
    fs = getattr(model, "forward_sequence", None)
    if callable(fs):
        return fs
    if spec.output_mode == "sequence":
        return model
    seq_model = _build(space, config, dataclasses.replace(spec, output_mode="sequence"), seed)
    seq_model.eval()
    return seq_model


def check_sample(space: SearchSpace, config: Mapping[str, Any], spec: TaskSpec,
                 batch: tuple[torch.Tensor, torch.Tensor], *, seed: int = 0,
                 timing_steps: int = 3) -> SampleCheck:
    """Run every check on one configuration; never raises for a failing check (``ok=False``
    and ``error`` say what failed)."""
    import torch

    from nas.training import HyperParams, compute_loss, make_optimizer

    result = SampleCheck(config=jsonable_or_repr(config))
    try:
        text = json.dumps(config, allow_nan=False)
        cfg = json.loads(text)
        if cfg != config:
            raise AssertionError("config changes in a JSON round trip")
        result.config = cfg
        x, y = batch
        B, T = x.shape[0], x.shape[1]
        model = _build(space, cfg, spec, seed)
        twin = _build(space, cfg, spec, seed)
        result.n_params = int(sum(p.numel() for p in model.parameters()))
        sd1, sd2 = model.state_dict(), twin.state_dict()
        if sd1.keys() != sd2.keys() or any(not torch.equal(sd1[k], sd2[k]) for k in sd1):
            raise AssertionError(f"two builds under torch.manual_seed({seed}) differ "
                                 "(build is not deterministic)")
        model.eval()
        twin.eval()
        with torch.no_grad():
            out = model(x)
            out2 = twin(x)
        want = (B, spec.output_size) if spec.output_mode == "last" else \
            (B, T, spec.output_size)
        if tuple(out.shape) != want:
            raise AssertionError(f"output shape {tuple(out.shape)}, expected {want} "
                                 f"(output_mode {spec.output_mode!r})")
        if not torch.isfinite(out).all():
            raise AssertionError("non-finite outputs")
        if not torch.equal(out, out2):
            raise AssertionError("two builds under the same seed give different outputs")
        with torch.no_grad():
            step_fn = _per_step(space, cfg, spec, seed, model)
            for t in sorted({0, T // 2}):
                if t >= T - 1:
                    continue
                x2 = x.clone()
                gen = torch.Generator().manual_seed(seed + t)
                x2[:, t + 1:] = torch.randn(x2[:, t + 1:].shape, generator=gen)
                a, b = step_fn(x), step_fn(x2)
                if a.dim() != 3 or a.shape[1] != T:
                    raise AssertionError(f"per-step outputs have shape {tuple(a.shape)}, "
                                         f"expected (B, {T}, out)")
                if not torch.allclose(a[:, :t + 1], b[:, :t + 1], rtol=1e-4, atol=1e-5):
                    diff = float((a[:, :t + 1] - b[:, :t + 1]).abs().max())
                    raise AssertionError(f"not causal: outputs at steps <= {t} change by "
                                         f"{diff:.3g} when inputs after step {t} change")
        model.train()
        hp = HyperParams.from_config(cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = make_optimizer(params, hp)
        times = []
        for i in range(1 + max(1, timing_steps)):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = compute_loss(out, y, spec)
            aux = getattr(model, "aux_loss", None)
            if isinstance(aux, torch.Tensor):
                loss = loss + aux
            loss.backward()
            if i == 0:
                if not torch.isfinite(loss):
                    raise AssertionError(f"non-finite loss {float(loss)}")
                bad = [n for n, p in model.named_parameters()
                       if p.grad is not None and not torch.isfinite(p.grad).all()]
                if bad:
                    raise AssertionError(f"non-finite gradients in {', '.join(bad[:5])}")
                if all(p.grad is None for p in params):
                    raise AssertionError("no parameter received a gradient")
            opt.step()
            if i > 0:
                times.append(time.perf_counter() - t0)
        result.ms_per_step = float(np.median(times) * 1000.0)
        result.ok = True
    except Exception as exc:  # noqa: BLE001  (a check reports, it does not raise)
        result.ok = False
        result.error = f"{type(exc).__name__}: {exc}"
        logger.debug("sample failed: %s", traceback.format_exc())
    return result


# ---------------------------------------------------------------------------------------------
# a whole space


def check_space(space: SearchSpace, task: Task, samples: int = 8, seed: int = 0, *,
                batch_size: int = 32, timing_steps: int = 3,
                space_name: str | None = None, task_name: str | None = None,
                on_sample: Callable[[int, SampleCheck], None] | None = None) -> SpaceCheck:
    """Sample ``samples`` configurations of ``space`` and check each on a batch of ``task``.

    Called by ``nas spaces check`` and by test suites (``assert check_space(...).ok``).
    ``on_sample(i, result)`` is called after each sample (e.g. for a progress bar).  The
    space is sampled by a seeded random sampler; the i-th model is built under
    ``torch.manual_seed(seed + i)``.
    """
    import optuna
    import torch

    c = Checker("check_space")
    samples = c.int_(samples, "samples", lo=1)
    batch_size = c.int_(batch_size, "batch_size", lo=1)
    spec = task.spec()
    train, _, _ = task.data(seed)
    from nas.training import tensors_of

    x, y = tensors_of(train)
    x, y = x[:batch_size], y[:batch_size]
    report = SpaceCheck(space=space_name or str(getattr(space, "name", type(space).__name__)),
                        task=task_name or str(getattr(task, "name", type(task).__name__)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for i in range(samples):
        trial = study.ask()
        try:
            config = space.sample(trial)
        except Exception as exc:  # noqa: BLE001
            report.samples.append(SampleCheck(config=dict(trial.params), ok=False,
                                              error=f"sample() raised {type(exc).__name__}: "
                                                    f"{exc}"))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if on_sample is not None:
                on_sample(i, report.samples[-1])
            continue
        study.tell(trial, 0.0)
        threads = torch.get_num_threads()
        report.samples.append(check_sample(space, config, spec, (x, y), seed=seed + i,
                                           timing_steps=timing_steps))
        torch.set_num_threads(threads)
        logger.info("sample %d/%d: %s", i + 1, samples,
                    "ok" if report.samples[-1].ok else report.samples[-1].error)
        if on_sample is not None:
            on_sample(i, report.samples[-1])
    return report


# ---------------------------------------------------------------------------------------------
# a task


def check_task(task: Task, seed: int = 0) -> TaskCheck:
    """Check a task's spec and generated data; see the module docstring."""
    import torch

    from nas.interfaces import TaskSpec
    from nas.training import objective_of, tensors_of

    rep = TaskCheck(task=str(getattr(task, "name", type(task).__name__)))
    p = rep.problems
    spec = task.spec()
    if not isinstance(spec, TaskSpec):
        p.append(f"spec() returned {type(spec).__name__}, not TaskSpec")
        return rep
    for key in ("input_size", "output_size", "seq_len"):
        v = getattr(spec, key)
        if not isinstance(v, int) or v < 1:
            p.append(f"spec.{key} = {v!r}: must be an integer >= 1")
    if spec.direction not in DIRECTIONS:
        p.append(f"spec.direction is {spec.direction!r}")
    if spec.output_mode not in ("last", "sequence"):
        p.append(f"spec.output_mode is {spec.output_mode!r}")
    if spec.loss not in ("cross_entropy", "mse"):
        p.append(f"spec.loss is {spec.loss!r}")
    lo, hi = spec.objective_range
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        p.append(f"spec.objective_range {spec.objective_range} is not a finite interval")
    if p:
        return rep
    splits = task.data(seed)
    again = task.data(seed)
    other = task.data(seed + 1)
    if len(splits) != 3:
        p.append(f"data() returned {len(splits)} splits, not 3 (train, val, test)")
        return rep
    T = spec.seq_len
    for name, ds, ds2, ds3 in zip(("train", "val", "test"), splits, again, other):
        x, y = tensors_of(ds)
        x2, y2 = tensors_of(ds2)
        n = x.shape[0]
        if n == 0:
            p.append(f"{name}: empty split")
            continue
        if not (torch.equal(x, x2) and torch.equal(y, y2)):
            p.append(f"{name}: data({seed}) differs between two calls (not deterministic)")
        if name == "train":
            x3, _ = tensors_of(ds3)
            if x3.shape == x.shape and torch.equal(x3, x):
                p.append(f"train: data({seed}) and data({seed + 1}) are identical")
        if tuple(x.shape[1:]) != (T, spec.input_size):
            p.append(f"{name}: x has shape {tuple(x.shape[1:])} per example, expected "
                     f"({T}, {spec.input_size})")
        if not x.is_floating_point() or not torch.isfinite(x).all():
            p.append(f"{name}: x must be finite floats (dtype {x.dtype})")
        want: tuple[int, ...]
        if spec.loss == "cross_entropy":
            want = () if spec.output_mode == "last" else (T,)
            if y.is_floating_point():
                p.append(f"{name}: cross-entropy targets must be integers (dtype {y.dtype})")
            valid = y[y != -100] if spec.output_mode == "sequence" else y
            if valid.numel() == 0 or valid.min() < 0 or valid.max() >= spec.output_size:
                p.append(f"{name}: class labels outside [0, {spec.output_size})")
        else:
            want = (spec.output_size,) if spec.output_mode == "last" else \
                (T, spec.output_size)
            if not y.is_floating_point() or not torch.isfinite(y).all():
                p.append(f"{name}: regression targets must be finite floats")
        if tuple(y.shape[1:]) != want:
            p.append(f"{name}: y has shape {tuple(y.shape[1:])} per example, expected {want}")
        if p:
            continue
        # the objective of a trivial and of a perfect predictor lie in the declared range
        if spec.loss == "cross_entropy":
            trivial = torch.zeros(*y.shape, spec.output_size)
            perfect = torch.nn.functional.one_hot(y.clamp(min=0), spec.output_size).float()
        else:
            trivial = torch.zeros_like(y)
            perfect = y.clone()
        values = [objective_of(o, y, spec, ds) for o in (trivial, perfect)]
        for what, v in zip(("a trivial", "a perfect"), values):
            if not (np.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9):
                p.append(f"{name}: the objective of {what} predictor is {v}, outside "
                         f"{spec.objective_range}")
        better = values[1] >= values[0] if spec.direction == Direction.MAXIMIZE else \
            values[1] <= values[0]
        if not better:
            p.append(f"{name}: a perfect predictor scores worse than a trivial one "
                     f"({values[1]} vs {values[0]}; direction {spec.direction})")
    return rep
