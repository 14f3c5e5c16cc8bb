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


def _choices(key: str, value: Any, allowed: Sequence[Any] | None = None,
             kind: type | tuple[type, ...] | None = None) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigError(f"space seq_cells: option {key} is {value!r}, but must be a non-empty "
                          "list")
    out = tuple(value)
    for v in out:
        if allowed is not None and v not in allowed:
            raise ConfigError(f"space seq_cells: option {key} contains {v!r}, but must only "
                              f"contain {', '.join(map(str, allowed))}")
        if kind is not None and (not isinstance(v, kind) or (kind is not bool
                                                             and isinstance(v, bool))):
            raise ConfigError(f"space seq_cells: option {key} contains {v!r}, which is not "
                              f"a {kind}")
    if len(set(out)) != len(out):
        raise ConfigError(f"space seq_cells: option {key} has duplicates: {value!r}")
    return out


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"space seq_cells: option {key} is {value!r}, but must be an integer "
                          f"in [{lo}, {hi}]")
    return value


def _range(key: str, value: Any, lo: float, hi: float, positive: bool) -> tuple[float, float]:
    ok = (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
    if ok:
        a, b = float(value[0]), float(value[1])
        ok = lo <= a <= b <= hi and (a > 0 if positive else True)
    if not ok:
        raise ConfigError(f"space seq_cells: option {key} is {value!r}, but must be [low, high] "
                          f"with {lo} {'<' if positive else '<='} low <= high <= {hi}")
    return float(value[0]), float(value[1])


class SeqCellsSpace:
    """Stacks of sequence cells with per-layer hypernetworks, plus training options.

    Options (all optional; each restricts the choices): ``cells``, ``min_layers``,
    ``max_layers``, ``hypernets``, ``mip`` (allowed flag values), ``activations``,
    ``hidden``, ``hyper_sizes``, ``norms``, ``residual``, ``max_loops``, ``optimizers``,
    ``lr`` ([low, high], log scale), ``weight_decay`` ([low, high], log scale; ``[0, 0]``
    turns it off),
    ``dropout`` ([low, high]), ``grad_clips``, ``curricula``, ``prune_sparsities``,
    ``patterns`` (``free`` and the hybrid stacks of :data:`PATTERNS`; by default every hybrid
    whose cells are among ``cells``, when ``max_layers >= 2``) and ``pattern_ks`` (the k of
    ``attn_every_k``).
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
        if unknown:
            raise ConfigError(f"space seq_cells: unknown option(s) {', '.join(sorted(unknown))};"
                              f" known: {', '.join(_OPTION_NAMES)}")
        self.cells = _choices("cells", cells, CELLS)
        self.max_layers = _int("max_layers", max_layers, 1, 16)
        self.min_layers = _int("min_layers", min_layers, 1, self.max_layers)
        self.hypernets = _choices("hypernets", hypernets, HYPERNETS)
        self.mip = _choices("mip", mip, kind=bool)
        self.activations = _choices("activations", activations, ACTIVATIONS)
        self.hidden = _choices("hidden", hidden, kind=int)
        for h in self.hidden:
            if h < 8 or h % 8:
                raise ConfigError(f"space seq_cells: option hidden contains {h}, but widths must "
                                  "be multiples of 8 (>= 8) so that 1, 2 or 4 heads of even size fit")
        self.hyper_sizes = _choices("hyper_sizes", hyper_sizes, kind=int)
        if min(self.hyper_sizes) < 1:
            raise ConfigError(f"space seq_cells: option hyper_sizes is {hyper_sizes!r}, but "
                              "sizes must be >= 1")
        self.norms = _choices("norms", norms, NORMS)
        self.residual = _choices("residual", residual, kind=bool)
        self.max_loops = _int("max_loops", max_loops, 1, 8)
        self.optimizers = _choices("optimizers", optimizers, OPTIMIZERS)
        self.lr = _range("lr", lr, 0.0, 10.0, positive=True)
        no_decay = (isinstance(weight_decay, Sequence) and len(weight_decay) == 2
                    and all(v == 0 for v in weight_decay))
        self.weight_decay = ((0.0, 0.0) if no_decay else  # [0, 0] turns weight decay off
                             _range("weight_decay", weight_decay, 0.0, 1.0, positive=True))
        self.dropout = _range("dropout", dropout, 0.0, 0.9, positive=False)
        self.grad_clips = _choices("grad_clips", grad_clips, kind=(int, float))
        if min(self.grad_clips) < 0:
            raise ConfigError(f"space seq_cells: option grad_clips is {grad_clips!r}, but "
                              "values must be >= 0 (0 = off)")
        self.curricula = _choices("curricula", curricula, CURRICULA)
        self.prune_sparsities = _choices("prune_sparsities", prune_sparsities, kind=(int, float))
        if not all(0 <= s < 1 for s in self.prune_sparsities):
            raise ConfigError(f"space seq_cells: option prune_sparsities is "
                              f"{prune_sparsities!r}, but values must lie in [0, 1)")
        if patterns is None:
            patterns = [p for p in PATTERNS if p == "free" or (
                self.max_layers >= 2 and all(c in self.cells for c in PATTERN_CELLS[p]))]
        self.patterns = _choices("patterns", patterns, PATTERNS)
        for p in self.patterns:
            if p == "free":
                continue
            missing = [c for c in PATTERN_CELLS[p] if c not in self.cells]
            if missing or self.max_layers < 2:
                raise ConfigError(f"space seq_cells: option patterns contains {p!r}, which needs "
                                  f"cells {list(PATTERN_CELLS[p])} and max_layers >= 2")
        self.pattern_ks = _choices("pattern_ks", pattern_ks, kind=int)
        if min(self.pattern_ks) < 1:
            raise ConfigError(f"space seq_cells: option pattern_ks is {pattern_ks!r}, but k "
                              "must be >= 1")
        self._n_params: dict[str, float] = {}
        self.hyper_rec = self.hypernets
        self.hyper_other = tuple(h for h in self.hypernets if h != "dynamic")
        if not self.hyper_other and any(not CELL_SPECS[c].recurrent for c in self.cells):
            bad = [c for c in self.cells if not CELL_SPECS[c].recurrent]
            raise ConfigError(f"space seq_cells: option hypernets is {list(hypernets)!r}, but "
                              f"'dynamic' only applies to recurrent cells and cells {bad} are "
                              "not recurrent; add another mode or remove those cells")

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
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"seq_cells config is not JSON-able: {exc}") from None
    hidden = config.get("hidden")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 8 or hidden % 8:
        raise ConfigError(f"seq_cells config hidden is {hidden!r}, but must be a multiple of 8")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError(f"seq_cells config layers is {layers!r}, but must be a non-empty list")
    out = []
    chunked = False
    for i, layer in enumerate(layers):
        if not isinstance(layer, Mapping):
            raise ConfigError(f"seq_cells config layers[{i}] is {layer!r}, not a table")
        cell = layer.get("cell")
        if cell not in CELL_SPECS:
            raise ConfigError(f"seq_cells config layers[{i}].cell is {cell!r}, but must be one "
                              f"of {', '.join(CELLS)}")
        hyp = layer.get("hypernet", "none")
        if hyp not in HYPERNETS:
            raise ConfigError(f"seq_cells config layers[{i}].hypernet is {hyp!r}, but must be "
                              f"one of {', '.join(HYPERNETS)}")
        if hyp == "dynamic" and not CELL_SPECS[cell].recurrent:
            raise ConfigError(f"seq_cells config layers[{i}]: hypernet 'dynamic' only applies "
                              f"to recurrent cells, not {cell!r}")
        if hyp in ("static", "dynamic") and not isinstance(layer.get("hyper_size"), int):
            raise ConfigError(f"seq_cells config layers[{i}].hyper_size is missing; "
                              f"hypernet {hyp!r} needs it")
        act = layer.get("activation")
        if act is not None and act not in ACTIVATIONS:
            raise ConfigError(f"seq_cells config layers[{i}].activation is {act!r}, but must be "
                              f"one of {', '.join(ACTIVATIONS)}")
        chunked = chunked or hyp == "rnn_chunks"
        out.append(dict(layer))
    if chunked and not isinstance(config.get("chunk_hyper_size"), int):
        raise ConfigError("seq_cells config chunk_hyper_size is missing; layers with hypernet "
                          "'rnn_chunks' need it")
    if config.get("norm", "pre") not in NORMS:
        raise ConfigError(f"seq_cells config norm is {config.get('norm')!r}, but must be one of "
                          f"{', '.join(NORMS)}")
    loops = config.get("loops", 1)
    if isinstance(loops, bool) or not isinstance(loops, int) or loops < 1:
        raise ConfigError(f"seq_cells config loops is {loops!r}, but must be an integer >= 1")
    pattern = config.get("pattern", "free")
    if pattern not in PATTERNS:
        raise ConfigError(f"seq_cells config pattern is {pattern!r}, but must be one of "
                          f"{', '.join(PATTERNS)}")
    if pattern != "free":
        k = config.get("pattern_k", 2)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"seq_cells config pattern_k is {k!r}, but must be an integer "
                              ">= 1")
        want = pattern_cells(pattern, len(out), k)
        got = [layer["cell"] for layer in out]
        if got != want:
            raise ConfigError(f"seq_cells config layers have cells {got}, but pattern "
                              f"{pattern!r} (k={k}) with {len(out)} layers needs {want}")
    return out
