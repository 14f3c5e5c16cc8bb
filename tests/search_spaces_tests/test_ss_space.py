"""The ``seq_cells`` space: option validation, conditional sampling (never invalid), coverage
by design, sample -> JSON -> build round trip, features, depth options."""

from __future__ import annotations

import collections
import json
import math
from typing import Any

import optuna
import pytest
import torch
from _ss_helpers import PARITY_SPEC, config, layer

from nas.errors import ConfigError
from nas.interfaces import SearchSpace, TaskSpec
from search_spaces import ACTIVATIONS, CELL_SPECS, CELLS, HYPERNETS, SeqCellsSpace
from search_spaces._names import CURRICULA, OPTIMIZERS, POSITIONAL

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _samples(space: SeqCellsSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.sample(trial))
        study.tell(trial, 0.0)
    return out


def test_protocol_and_entry_point() -> None:
    from nas import registry

    assert registry.load("space", "seq_cells") is SeqCellsSpace
    assert isinstance(SeqCellsSpace(), SearchSpace)


@pytest.mark.parametrize("key,value", [
    ("cells", ["lstm", "transformer"]), ("cells", []), ("cells", "lstm"),
    ("max_layers", 0), ("max_layers", 2.5), ("min_layers", 5), ("hypernets", ["hyper"]),
    ("mip", ["yes"]), ("activations", ["swish"]), ("hidden", [30]), ("hidden", [64, 64]),
    ("hyper_sizes", [0]), ("norms", ["batch"]), ("residual", [1]), ("max_loops", 0),
    ("optimizers", ["lbfgs"]), ("lr", [0.0, 1e-2]), ("lr", [1e-2, 1e-3]),
    ("weight_decay", [1e-3]), ("dropout", [0.0, 1.5]), ("grad_clips", [-1.0]),
    ("curricula", ["random"]), ("prune_sparsities", [1.0]), ("patterns", ["mixed"]),
    ("pattern_ks", [0]),
])
def test_bad_options_raise_config_error_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=key):
        SeqCellsSpace(**{key: value})


def test_unknown_option_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="max_layer"):
        SeqCellsSpace(max_layer=3)


def test_dynamic_only_with_non_recurrent_cells_is_rejected() -> None:
    with pytest.raises(ConfigError, match="hypernets"):
        SeqCellsSpace(cells=["lstm", "ssm"], hypernets=["dynamic"])
    space = SeqCellsSpace(cells=["lstm", "gru"], hypernets=["dynamic"])
    assert all(ly["hypernet"] == "dynamic" for c in _samples(space, 10) for ly in c["layers"])


def test_samples_are_valid_and_conditional() -> None:
    for cfg in _samples(SeqCellsSpace(), 300):
        assert json.loads(json.dumps(cfg)) == cfg
        assert 1 <= len(cfg["layers"]) <= 3
        for ly in cfg["layers"]:
            spec = CELL_SPECS[ly["cell"]]
            assert ly["hypernet"] != "dynamic" or spec.recurrent
            assert ("hyper_size" in ly) == (ly["hypernet"] in ("static", "dynamic"))
            assert not ly["mip"] or ly["hypernet"] != "none"
            assert ("activation" in ly) == spec.free_activation
            assert set(spec.options) <= set(ly)
        assert ("chunk_hyper_size" in cfg) == any(
            ly["hypernet"] == "rnn_chunks" for ly in cfg["layers"])
        for key in ("optimizer", "lr", "weight_decay", "dropout", "grad_clip", "curriculum",
                    "prune_sparsity"):
            assert key in cfg


def test_coverage_is_by_design() -> None:
    # free stacks only: hybrid patterns fix their layers' cells (tested below)
    counts: dict[str, collections.Counter[Any]] = collections.defaultdict(collections.Counter)
    for cfg in _samples(SeqCellsSpace(patterns=["free"]), 400, seed=1):
        for ly in cfg["layers"]:
            counts["cell"][ly["cell"]] += 1
            counts["hypernet"][ly["hypernet"]] += 1
            counts["mip"][ly["mip"]] += 1
            if "activation" in ly:
                counts["activation"][ly["activation"]] += 1
            if ly["cell"] == "attention":
                counts["pos"][ly["pos"]] += 1
        for key in ("optimizer", "curriculum", "norm", "residual", "loops"):
            counts[key][cfg[key]] += 1
    assert set(counts["cell"]) == set(CELLS)
    assert set(counts["hypernet"]) == set(HYPERNETS)
    assert set(counts["activation"]) == set(ACTIVATIONS)
    assert set(counts["pos"]) == set(POSITIONAL)
    assert set(counts["optimizer"]) == set(OPTIMIZERS)
    assert set(counts["curriculum"]) == set(CURRICULA)
    assert set(counts["mip"]) == {True, False} and set(counts["loops"]) == {1, 2}
    # uniform cell choice: every cell within a factor of 2 of the mean
    mean = sum(counts["cell"].values()) / len(CELLS)
    assert all(mean / 2 < v < mean * 2 for v in counts["cell"].values())


def test_options_restrict_the_choices() -> None:
    space = SeqCellsSpace(cells=["lstm", "ssm"], max_layers=4, hypernets=["none"],
                          activations=["selu"], hidden=[16], optimizers=["sgd"])
    cfgs = _samples(space, 60)
    assert {len(c["layers"]) for c in cfgs} == {1, 2, 3, 4}
    layers = [ly for c in cfgs for ly in c["layers"]]
    assert {ly["cell"] for ly in layers} == {"lstm", "ssm"}
    assert {ly["hypernet"] for ly in layers} == {"none"}
    assert {ly["activation"] for ly in layers if "activation" in ly} == {"selu"}
    assert {c["hidden"] for c in cfgs} == {16} and {c["optimizer"] for c in cfgs} == {"sgd"}
    assert {c["weight_decay"] for c in _samples(SeqCellsSpace(weight_decay=[0, 0]), 5)} == {0.0}


def test_sample_json_build_round_trip_and_shapes() -> None:
    space = SeqCellsSpace(hidden=[16])
    seq_spec = TaskSpec("seq", input_size=3, output_size=4, seq_len=6, output_mode="sequence")
    last_spec = TaskSpec("last", input_size=3, output_size=5, seq_len=6)
    x = torch.randn(2, 6, 3)
    for cfg in _samples(space, 6, seed=3):
        again = json.loads(json.dumps(cfg))
        outs = []
        for c in (cfg, again):
            torch.manual_seed(7)
            outs.append(space.build(c, last_spec).eval()(x))
        assert outs[0].shape == (2, 5)
        assert torch.equal(outs[0], outs[1])
        torch.manual_seed(7)
        assert space.build(again, seq_spec).eval()(x).shape == (2, 6, 4)


def test_features_have_a_fixed_key_set() -> None:
    space = SeqCellsSpace()
    cfgs = _samples(space, 8, seed=5)
    keys = {tuple(space.features(c)) for c in cfgs}
    assert keys == {tuple(space.feature_names())}
    cfg = config([layer("lstm"), layer("ssm", "static")], hidden=32, loops=2)
    f = space.features(cfg)
    spec = TaskSpec("f", input_size=8, output_size=8, seq_len=4)
    assert f["n_params"] == sum(p.numel() for p in space.build(cfg, spec).parameters())
    assert f["cell_lstm"] == 0.5 and f["cell_ssm"] == 0.5 and f["cell_gru"] == 0.0
    assert f["hypernet_static"] == 0.5 and f["depth"] == 2 and f["effective_depth"] == 4
    assert f["width"] == 32 and abs(f["lr_log10"] + 2) < 1e-9
    assert all(isinstance(v, float) for v in f.values())


@pytest.mark.parametrize("bad,match", [
    ({"layers": []}, "layers"), ({"hidden": 12}, "hidden"),
    ({"layers": [{"cell": "cnn"}]}, "cell"),
    ({"layers": [{"cell": "ssm", "hypernet": "dynamic", "hyper_size": 8}]}, "dynamic"),
    ({"layers": [{"cell": "gru", "hypernet": "static"}]}, "hyper_size"),
    ({"layers": [{"cell": "gru", "hypernet": "rnn_chunks"}]}, "chunk_hyper_size"),
    ({"norm": "batch"}, "norm"), ({"loops": 0}, "loops"),
])
def test_bad_configs_raise_config_error(bad: dict[str, Any], match: str) -> None:
    cfg = config([layer("gru")])
    cfg.update(bad)
    with pytest.raises(ConfigError, match=match):
        SeqCellsSpace().build(cfg, PARITY_SPEC)


def test_weight_tied_loops_reuse_the_same_weights() -> None:
    one = config([layer("gru"), layer("tcn")], hidden=16)
    two = dict(one, loops=3)
    torch.manual_seed(0)
    m1 = SeqCellsSpace().build(one, PARITY_SPEC).eval()
    torch.manual_seed(0)
    m3 = SeqCellsSpace().build(two, PARITY_SPEC).eval()
    assert sum(p.numel() for p in m1.parameters()) == sum(p.numel() for p in m3.parameters())
    x = torch.randn(2, 3, 1)
    assert not torch.allclose(m1(x), m3(x))


@pytest.mark.parametrize("norm,residual", [("pre", True), ("post", True), ("none", False)])
def test_norm_and_residual_variants_train(norm: str, residual: bool) -> None:
    from _ss_helpers import train_parity

    _, losses = train_parity(config([layer("lstm"), layer("universal")], hidden=16,
                                    norm=norm, residual=residual), steps=3)
    assert all(math.isfinite(v) for v in losses)


def test_conformance_checks_of_nas_testing() -> None:
    spaces_mod = pytest.importorskip("nas.testing.spaces")
    from _ss_helpers import parity_data

    space = SeqCellsSpace(hidden=[16], max_layers=2)
    xy = parity_data(16)
    for i, cfg in enumerate(_samples(space, 4, seed=11)):
        result = spaces_mod.check_sample(space, cfg, PARITY_SPEC, xy, seed=i, timing_steps=1)
        assert result.ok, result.error


def test_prunable_parameters_skip_ssm_state_and_embeddings() -> None:
    cfg = config([layer("ssm"), layer("gru", "static")], hidden=16)
    model = SeqCellsSpace().build(cfg, PARITY_SPEC)
    names = {id(p): n for n, p in model.named_parameters()}
    pruned = {names[id(p)] for p in model.prunable_parameters()}
    assert "blocks.0.cell.out.weight" in pruned and "blocks.1.static.gen.weight" in pruned
    assert not any(n.endswith(("a_re", "c_re", "embed")) for n in pruned)


def test_hybrid_patterns_are_sampled_with_their_cells_and_k() -> None:
    from search_spaces._names import PATTERN_KS, PATTERNS, pattern_cells

    cfgs = _samples(SeqCellsSpace(patterns=PATTERNS), 300, seed=2)
    seen = collections.Counter(c.get("pattern", "free") for c in cfgs)
    assert set(seen) == set(PATTERNS)
    ks = set()
    for cfg in cfgs:
        pattern = cfg.get("pattern")
        if pattern is None:
            continue
        cells = [ly["cell"] for ly in cfg["layers"]]
        assert len(cells) >= 2
        assert cells == pattern_cells(pattern, len(cells), cfg.get("pattern_k", 2))
        if pattern == "attn_every_k":
            ks.add(cfg["pattern_k"])
            assert cells[-1] == "attention" or cfg["pattern_k"] < len(cells)
            assert "mamba" in cells and "attention" in cells
        else:
            assert cells[0] == "tcn" and cells[-1] == "attention"
    assert ks <= set(PATTERN_KS) and len(ks) >= 2
    assert pattern_cells("attn_every_k", 6, 3) == ["mamba", "mamba", "attention"] * 2
    assert pattern_cells("tcn_then_attn", 3) == ["tcn", "tcn", "attention"]


def test_listed_cells_and_no_hybrid_unless_asked() -> None:
    """With `cells` listed, every listed cell is sampled and no hybrid pattern is,
    unless `patterns` names it."""
    cells = ["gru", "lstm", "ssm", "tcn", "attention"]
    for space in (SeqCellsSpace(cells=cells, max_layers=2), SeqCellsSpace()):
        assert space.patterns == ("free",)
        cfgs = _samples(space, 60, seed=3)
        assert not any("pattern" in c for c in cfgs)
    seen = collections.Counter(ly["cell"] for c in _samples(
        SeqCellsSpace(cells=cells, max_layers=2), 60, seed=3) for ly in c["layers"])
    assert set(seen) == set(cells)
    asked = _samples(SeqCellsSpace(cells=cells, max_layers=2,
                                   patterns=["free", "tcn_then_attn"]), 60, seed=3)
    assert {c.get("pattern", "free") for c in asked} == {"free", "tcn_then_attn"}


def test_patterns_need_their_cells_and_depth() -> None:
    assert SeqCellsSpace(cells=["lstm"]).patterns == ("free",)
    assert SeqCellsSpace(max_layers=1).patterns == ("free",)
    with pytest.raises(ConfigError, match="patterns"):
        SeqCellsSpace(max_layers=1, patterns=["free", "tcn_then_attn"])
    with pytest.raises(ConfigError, match="patterns"):
        SeqCellsSpace(cells=["lstm", "attention"], patterns=["attn_every_k"])
    space = SeqCellsSpace(patterns=["tcn_then_attn"], max_layers=4)
    cfgs = _samples(space, 20)
    assert all(c["pattern"] == "tcn_then_attn" for c in cfgs)
    bad = dict(cfgs[0], layers=[dict(ly, cell="lstm") for ly in cfgs[0]["layers"]])
    with pytest.raises(ConfigError, match="pattern"):
        space.build(bad, PARITY_SPEC)
    feats = space.features(cfgs[0])
    assert feats["pattern_tcn_then_attn"] == 1.0 and feats["pattern_free"] == 0.0
