"""``seq_cells``: the built-in search space over cells, depths, hypernetworks, activations and
training options (entry point ``seq_cells`` in group ``nas.search_spaces``).

Who calls what: the engine constructs ``SeqCellsSpace(**space_options)`` from the study file
(constructor errors are :class:`~nas.errors.ConfigError` naming the option); the driver calls
:meth:`SeqCellsSpace.sample` inside Optuna's define-by-run API and :meth:`features` for the
predictors; a Ray worker calls :meth:`build`.

Sampling is uniform by design: every choice is a categorical (or int/float range) with equal
weight, and conditional parameters only appear when they apply.  Parameter names that depend
on the cell (e.g. ``l0_attention_heads``) keep every Optuna distribution fixed per name.  The
``dynamic`` hypernetwork is sampled under its own name (``l{i}_hypernet_rec``) for recurrent
cells only, so an invalid combination is never sampled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nas import Checker
from nas.errors import ConfigError
from search_spaces._names import (
    ACTIVATIONS,
    CELL_SPECS,
    CELLS,
    CURRICULA,
    HYPERNETS,
    NORMS,
    OPTIMIZERS,
    PATTERN_CELLS,
    PATTERN_KS,
    PATTERNS,
    pattern_cells,
)

if TYPE_CHECKING:
    import optuna
    import torch

    from nas.interfaces import TaskSpec

__all__ = ["SeqCellsSpace", "validate_config"]

_OPTION_NAMES = ("cells", "min_layers", "max_layers", "hypernets", "mip", "activations", "hidden",
                 "hyper_sizes", "norms", "residual", "max_loops", "optimizers", "lr",
                 "weight_decay", "dropout", "grad_clips", "curricula", "prune_sparsities",
                 "patterns", "pattern_ks")
_FEATURE_IO = 8  # nominal input/output size used to count parameters in :meth:`features`


_CHECK = Checker("space seq_cells")


class SeqCellsSpace:
    """Stacks of sequence cells with per-layer hypernetworks, plus training options.

    Options (all optional; each restricts the choices): ``cells``, ``min_layers``,
    ``max_layers``, ``hypernets``, ``mip`` (allowed flag values), ``activations``,
    ``hidden``, ``hyper_sizes``, ``norms``, ``residual``, ``max_loops``, ``optimizers``,
    ``lr`` ([low, high], log scale), ``weight_decay`` ([low, high], log scale; ``[0, 0]``
    turns it off),
    ``dropout`` ([low, high]), ``grad_clips``, ``curricula``, ``prune_sparsities``,
    ``patterns`` (``free`` and the hybrid stacks of :data:`PATTERNS`; by default ``free``
    only: a hybrid is sampled only when listed here, and its cells must be among ``cells``)
    and ``pattern_ks`` (the k of ``attn_every_k``).
    """

    name = "seq_cells"

    def __init__(self, cells: Sequence[str] = CELLS, max_layers: int = 3, min_layers: int = 1,
                 hypernets: Sequence[str] = HYPERNETS, mip: Sequence[bool] = (False, True),
                 activations: Sequence[str] = ACTIVATIONS, hidden: Sequence[int] = (32, 64, 128),
                 hyper_sizes: Sequence[int] = (8, 16, 32), norms: Sequence[str] = NORMS,
                 residual: Sequence[bool] = (True, False), max_loops: int = 2,
                 optimizers: Sequence[str] = OPTIMIZERS, lr: Sequence[float] = (1e-4, 1e-2),
                 weight_decay: Sequence[float] = (1e-6, 1e-2),
                 dropout: Sequence[float] = (0.0, 0.3),
                 grad_clips: Sequence[float] = (0.0, 0.5, 1.0, 5.0),
                 curricula: Sequence[str] = CURRICULA,
                 prune_sparsities: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
                 patterns: Sequence[str] | None = None,
                 pattern_ks: Sequence[int] = PATTERN_KS,
                 **unknown: Any) -> None:
        c = _CHECK
        if unknown:
            raise c.unknown(sorted(unknown), _OPTION_NAMES)
        self.cells = c.choices(cells, "cells", CELLS)
        self.max_layers = c.int_(max_layers, "max_layers", lo=1, hi=16)
        self.min_layers = c.int_(min_layers, "min_layers", lo=1, hi=self.max_layers)
        self.hypernets = c.choices(hypernets, "hypernets", HYPERNETS)
        self.mip = c.choices(mip, "mip", kind="bool")
        self.activations = c.choices(activations, "activations", ACTIVATIONS)
        self.hidden = c.choices(hidden, "hidden", kind="int", lo=8)
        if any(h % 8 for h in self.hidden):
            raise c.fail("hidden", hidden, "widths must be multiples of 8 (>= 8) so that 1, 2 "
                         "or 4 heads of even size fit")
        self.hyper_sizes = c.choices(hyper_sizes, "hyper_sizes", kind="int", lo=1)
        self.norms = c.choices(norms, "norms", NORMS)
        self.residual = c.choices(residual, "residual", kind="bool")
        self.max_loops = c.int_(max_loops, "max_loops", lo=1, hi=8)
        self.optimizers = c.choices(optimizers, "optimizers", OPTIMIZERS)
        self.lr = c.interval(lr, "lr", 0.0, 10.0, positive=True)
        no_decay = (isinstance(weight_decay, Sequence) and len(weight_decay) == 2
                    and all(v == 0 for v in weight_decay))
        self.weight_decay = ((0.0, 0.0) if no_decay else  # [0, 0] turns weight decay off
                             c.interval(weight_decay, "weight_decay", 0.0, 1.0, positive=True))
        self.dropout = c.interval(dropout, "dropout", 0.0, 0.9)
        self.grad_clips = c.choices(grad_clips, "grad_clips", kind="number", lo=0.0)
        self.curricula = c.choices(curricula, "curricula", CURRICULA)
        self.prune_sparsities = c.choices(prune_sparsities, "prune_sparsities", kind="number",
                                          lo=0.0, hi=1.0, hi_open=True)
        if patterns is None:  # hybrids only when asked for: listed cells mean those cells
            patterns = ["free"]
        self.patterns = c.choices(patterns, "patterns", PATTERNS)
        for p in self.patterns:
            if p == "free":
                continue
            missing = [x for x in PATTERN_CELLS[p] if x not in self.cells]
            if missing or self.max_layers < 2:
                raise c.fail("patterns", patterns, f"{p!r} needs cells "
                             f"{list(PATTERN_CELLS[p])} and max_layers >= 2")
        self.pattern_ks = c.choices(pattern_ks, "pattern_ks", kind="int", lo=1)
        self._n_params: dict[str, float] = {}
        self.hyper_rec = self.hypernets
        self.hyper_other = tuple(h for h in self.hypernets if h != "dynamic")
        if not self.hyper_other and any(not CELL_SPECS[c].recurrent for c in self.cells):
            bad = [c for c in self.cells if not CELL_SPECS[c].recurrent]
            raise c.fail("hypernets", list(hypernets), f"'dynamic' only applies to recurrent "
                         f"cells and cells {bad} are not recurrent; add another mode or remove "
                         "those cells")

    # ------------------------------------------------------------------ sampling (driver)
    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample one configuration with Optuna's define-by-run API (see module docstring)."""
        cfg: dict[str, Any] = {}
        cfg["hidden"] = int(trial.suggest_categorical("hidden", self.hidden))
        pattern = (trial.suggest_categorical("pattern", self.patterns)
                   if len(self.patterns) > 1 else self.patterns[0])
        forced: list[str] | None = None
        if pattern == "free":
            depth = trial.suggest_int("depth", self.min_layers, self.max_layers)
        else:  # a hybrid stack: its own depth parameter (>= 2 layers), cells fixed by pattern
            depth = trial.suggest_int("depth_hybrid", max(2, self.min_layers), self.max_layers)
            cfg["pattern"] = pattern
            k = 2
            if pattern == "attn_every_k":
                k = min(int(trial.suggest_categorical("pattern_k", self.pattern_ks)), depth)
                cfg["pattern_k"] = k
            forced = pattern_cells(pattern, depth, k)
        cfg["norm"] = trial.suggest_categorical("norm", self.norms)
        cfg["residual"] = bool(trial.suggest_categorical("residual", self.residual))
        cfg["loops"] = trial.suggest_int("loops", 1, self.max_loops)
        layers = []
        for i in range(depth):
            cell = (forced[i] if forced is not None
                    else trial.suggest_categorical(f"l{i}_cell", self.cells))
            spec = CELL_SPECS[cell]
            if spec.recurrent:
                hyp = trial.suggest_categorical(f"l{i}_hypernet_rec", self.hyper_rec)
            else:
                hyp = trial.suggest_categorical(f"l{i}_hypernet", self.hyper_other)
            layer: dict[str, Any] = {"cell": cell, "hypernet": hyp, "mip": False}
            if hyp != "none":
                layer["mip"] = bool(trial.suggest_categorical(f"l{i}_mip", self.mip))
            if hyp in ("static", "dynamic"):
                layer["hyper_size"] = int(trial.suggest_categorical(f"l{i}_hyper_size",
                                                                    self.hyper_sizes))
            if spec.free_activation:
                layer["activation"] = trial.suggest_categorical(f"l{i}_activation",
                                                                self.activations)
            for opt, choices in spec.options.items():
                layer[opt] = trial.suggest_categorical(f"l{i}_{cell}_{opt}", choices)
            layers.append(layer)
        cfg["layers"] = layers
        if any(layer["hypernet"] == "rnn_chunks" for layer in layers):
            cfg["chunk_hyper_size"] = int(trial.suggest_categorical("chunk_hyper_size",
                                                                    self.hyper_sizes))
        cfg["optimizer"] = trial.suggest_categorical("optimizer", self.optimizers)
        cfg["lr"] = trial.suggest_float("lr", *self.lr, log=True)
        if self.weight_decay == (0.0, 0.0):
            cfg["weight_decay"] = 0.0
        else:
            cfg["weight_decay"] = trial.suggest_float("weight_decay", *self.weight_decay,
                                                      log=True)
        cfg["dropout"] = trial.suggest_float("dropout", *self.dropout)
        cfg["grad_clip"] = float(trial.suggest_categorical("grad_clip", self.grad_clips))
        cfg["curriculum"] = trial.suggest_categorical("curriculum", self.curricula)
        cfg["prune_sparsity"] = float(trial.suggest_categorical("prune_sparsity",
                                                                self.prune_sparsities))
        return cfg

    # ------------------------------------------------------------------ building (worker)
    def build(self, config: Mapping[str, Any], task: TaskSpec) -> torch.nn.Module:
        """The model for ``config``: (B, T, input_size) -> logits; deterministic under
        ``torch.manual_seed``.  Raises ConfigError for a malformed config."""
        from search_spaces._model import SeqModel

        layers = validate_config(config)
        return SeqModel(layers, input_size=task.input_size, output_size=task.output_size,
                        hidden=int(config["hidden"]), norm=str(config.get("norm", "pre")),
                        residual=bool(config.get("residual", True)),
                        loops=int(config.get("loops", 1)),
                        dropout=float(config.get("dropout", 0.0)),
                        output_mode=task.output_mode,
                        chunk_hyper_size=int(config.get("chunk_hyper_size", 0)))

    # ------------------------------------------------------------------ features (driver)
    def feature_names(self) -> list[str]:
        """The fixed, ordered key set of :meth:`features`."""
        names = ["n_params", "log10_params", "depth", "width", "log2_width", "loops",
                 "effective_depth", "residual"]
        names += [f"norm_{n}" for n in NORMS]
        names += [f"cell_{c}" for c in CELLS]
        names += [f"pattern_{p}" for p in PATTERNS] + ["pattern_k"]
        names += [f"hypernet_{h}" for h in HYPERNETS] + ["mip", "hyper_size", "chunk_hyper_size"]
        names += [f"act_{a}" for a in ACTIVATIONS]
        names += ["lr_log10", "weight_decay_log10", "dropout", "grad_clip", "prune_sparsity"]
        names += [f"opt_{o}" for o in OPTIMIZERS] + [f"curriculum_{c}" for c in CURRICULA]
        return names

    def features(self, config: Mapping[str, Any]) -> dict[str, float]:
        """Numeric descriptors for predictors; same keys for every config (fractions of layers
        for per-layer choices).  ``n_params`` is counted for input and output size 8 without
        allocating memory (meta device)."""
        import torch

        from nas.interfaces import TaskSpec

        layers = validate_config(config)
        key = json.dumps(config, sort_keys=True)
        n_params = self._n_params.get(key)
        if n_params is None:  # ~25 ms per build on the meta device: cache per config
            spec = TaskSpec("features", _FEATURE_IO, _FEATURE_IO, 16)
            with torch.device("meta"):
                model = self.build(config, spec)
            n_params = float(sum(p.numel() for p in model.parameters()))
            if len(self._n_params) >= 1024:
                self._n_params.clear()
            self._n_params[key] = n_params
        depth = len(layers)
        f = dict.fromkeys(self.feature_names(), 0.0)
        hidden = float(config["hidden"])
        loops = float(config.get("loops", 1))
        f.update(n_params=n_params, log10_params=math.log10(max(n_params, 1.0)),
                 depth=float(depth), width=hidden, log2_width=math.log2(hidden), loops=loops,
                 effective_depth=depth * loops, residual=float(bool(config.get("residual"))))
        f[f"norm_{config.get('norm', 'pre')}"] = 1.0
        f[f"pattern_{config.get('pattern', 'free')}"] = 1.0
        f["pattern_k"] = float(config.get("pattern_k", 0))
        sizes = []
        for layer in layers:
            f[f"cell_{layer['cell']}"] += 1.0 / depth
            f[f"hypernet_{layer.get('hypernet', 'none')}"] += 1.0 / depth
            f["mip"] += float(bool(layer.get("mip", False))) / depth
            if "activation" in layer:
                f[f"act_{layer['activation']}"] += 1.0 / depth
            if "hyper_size" in layer:
                sizes.append(float(layer["hyper_size"]))
        f["hyper_size"] = sum(sizes) / len(sizes) if sizes else 0.0
        f["chunk_hyper_size"] = float(config.get("chunk_hyper_size", 0))
        f["lr_log10"] = math.log10(float(config.get("lr", 1e-3)))
        f["weight_decay_log10"] = math.log10(max(float(config.get("weight_decay", 0.0)), 1e-8))
        for key in ("dropout", "grad_clip", "prune_sparsity"):
            f[key] = float(config.get(key, 0.0))
        f[f"opt_{config.get('optimizer', 'adam')}"] = 1.0
        f[f"curriculum_{config.get('curriculum', 'none')}"] = 1.0
        return f


def validate_config(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check a config's structure and return its layers; ConfigError names the bad key."""
    c = Checker("seq_cells config")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"seq_cells config: not JSON-able: {exc}") from None
    hidden = config.get("hidden")
    if c.int_(hidden, "hidden", lo=8) % 8:
        raise c.fail("hidden", hidden, "must be a multiple of 8")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise c.fail("layers", layers, "must be a non-empty list")
    out = []
    chunked = False
    for i, layer in enumerate(layers):
        key = f"layers[{i}]"
        if not isinstance(layer, Mapping):
            raise c.fail(key, layer, "must be a table")
        cell = c.choice(layer.get("cell"), f"{key}.cell", CELLS)
        hyp = c.choice(layer.get("hypernet", "none"), f"{key}.hypernet", HYPERNETS)
        if hyp == "dynamic" and not CELL_SPECS[cell].recurrent:
            raise c.fail(f"{key}.hypernet", hyp, f"'dynamic' only applies to recurrent cells, "
                         f"not {cell!r}")
        if hyp in ("static", "dynamic") and not isinstance(layer.get("hyper_size"), int):
            raise c.missing(f"{key}.hyper_size (hypernet {hyp!r} needs it)")
        if layer.get("activation") is not None:
            c.choice(layer["activation"], f"{key}.activation", ACTIVATIONS)
        chunked = chunked or hyp == "rnn_chunks"
        out.append(dict(layer))
    if chunked and not isinstance(config.get("chunk_hyper_size"), int):
        raise c.missing("chunk_hyper_size (layers with hypernet 'rnn_chunks' need it)")
    c.choice(config.get("norm", "pre"), "norm", NORMS)
    c.int_(config.get("loops", 1), "loops", lo=1)
    pattern = c.choice(config.get("pattern", "free"), "pattern", PATTERNS)
    if pattern != "free":
        k = c.int_(config.get("pattern_k", 2), "pattern_k", lo=1)
        want = pattern_cells(pattern, len(out), k)
        got = [layer["cell"] for layer in out]
        if got != want:
            raise c.fail("layers", got, f"pattern {pattern!r} (k={k}) with {len(out)} layers "
                         f"needs cells {want}")
    return out
