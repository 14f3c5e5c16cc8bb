"""Hypernetworks do what they say: every valid (cell, mode, mip) trains; ``dynamic`` weights
change over time; ``rnn_chunks`` layer k depends on the state after layer k-1; MIP inputs have
constant norm; ``universal`` halts after different numbers of steps at different positions."""

from __future__ import annotations

import math

import pytest
import torch
from _ss_helpers import PARITY_SPEC, config, layer, train_parity

from search_spaces import CELL_SPECS, CELLS, SeqCellsSpace, make_cell
from search_spaces.cells import TorchRNNCell, UniversalCell
from search_spaces.hyper import mip_encode, target_names

COMBOS = [(c, h, m) for c in CELLS for h in ("none", "static", "dynamic", "rnn_chunks")
          for m in ((False,) if h == "none" else (False, True))
          if h != "dynamic" or CELL_SPECS[c].recurrent]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("cell,hypernet,mip", COMBOS,
                         ids=[f"{c}-{h}{'-mip' if m else ''}" for c, h, m in COMBOS])
def test_every_valid_combination_trains(cell: str, hypernet: str, mip: bool) -> None:
    cfg = config([layer(cell, hypernet, mip), layer("gru", hypernet if hypernet != "dynamic"
                                                    else "none", mip)], hidden=16, lr=3e-3)
    torch.manual_seed(0)
    model = SeqCellsSpace().build(cfg, PARITY_SPEC)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _, losses = train_parity(cfg, steps=3)
    assert all(math.isfinite(v) for v in losses)
    torch.manual_seed(0)
    model2 = SeqCellsSpace().build(cfg, PARITY_SPEC)
    assert all(torch.equal(before[n], p) for n, p in model2.named_parameters())  # determinism
    if hypernet in ("static", "rnn_chunks"):
        names = [f"blocks.0.cell.{n}" for n in model.block_list()[0].layout.names]  # type: ignore[union-attr]
        params = dict(model.named_parameters())
        # non-MIP: generated weights replace the originals; MIP keeps them as base weights
        assert all((n in params) == mip for n in names)


@pytest.mark.parametrize("cell", [c for c in CELLS if CELL_SPECS[c].recurrent])
def test_dynamic_weights_change_over_time(cell: str) -> None:
    torch.manual_seed(0)
    mod = make_cell(layer(cell, "dynamic"), 4, 8)
    dyn = mod.dynamic
    dyn.record = True
    mod(torch.randn(3, 10, 4))
    scales = dyn.last_scales  # (B, T, n): effective weights are diag(scales_t) W
    assert scales is not None and scales.shape[:2] == (3, 10)
    per_step_change = (scales[:, 1:] - scales[:, :-1]).abs().amax(dim=-1)
    assert bool((per_step_change > 1e-4).all()), "weights must differ between every two steps"


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_dynamic_loop_with_unit_scales_equals_fused_kernel(kind: str) -> None:
    torch.manual_seed(0)
    cell = TorchRNNCell(kind, 4, 8, dynamic_hyper=6).double()
    with torch.no_grad():
        cell.dynamic.to_scale.weight.zero_()
        cell.dynamic.to_scale.bias.fill_(1.0)
    x = torch.randn(2, 7, 4, dtype=torch.float64)
    fused, _ = cell.rnn(x)
    assert torch.allclose(cell(x), fused, atol=1e-10)


def test_rnn_chunks_layer_k_depends_on_state_after_layer_k_minus_1() -> None:
    cfg = config([layer("lstm", "rnn_chunks"), layer("tcn", "rnn_chunks"),
                  layer("attention", "rnn_chunks", True)], hidden=16)
    torch.manual_seed(0)
    model = SeqCellsSpace().build(cfg, PARITY_SPEC)
    hyper = model.chunk_hypernet
    assert hyper is not None and hyper.order == [0, 1, 2]
    chunks = hyper()
    for k in (1, 2):
        state = hyper.states[k - 1]
        same, _ = hyper.layer_chunks(k, state)
        assert torch.allclose(same, chunks[k])
        moved, _ = hyper.layer_chunks(k, state + 0.1 * torch.randn_like(state))
        assert (moved - chunks[k]).abs().max() > 1e-3
    # and through the whole model: changing layer 0's chunk inputs changes layer 1's weights
    with torch.no_grad():
        hyper.embeds["0"].add_(torch.randn_like(hyper.embeds["0"]))
    assert (hyper()[1] - chunks[1]).abs().max() > 1e-3
    x = torch.randn(2, 3, 1)
    out = model(x)
    assert out.shape == (2, 2)


def test_mip_inputs_have_constant_norm() -> None:
    u = torch.cat([torch.zeros(1, 6), 1e4 * torch.randn(3, 6), torch.randn(5, 6)])
    norms = mip_encode(u).norm(dim=-1)
    assert torch.allclose(norms, torch.full_like(norms, math.sqrt(6)))
    torch.manual_seed(0)
    # dynamic: the per-step hypernetwork inputs [x_t, h_{t-1}]
    cell = make_cell(layer("slstm", "dynamic", True), 4, 8)
    cell.dynamic.record = True
    cell(torch.randn(2, 5, 4) * torch.tensor([0.0, 1.0, 10.0, 100.0]))
    n = cell.dynamic.last_inputs.norm(dim=-1)
    assert torch.allclose(n, torch.full_like(n, math.sqrt(4 + 8)))
    # static: the chunk embeddings fed to the generator
    cfg = config([layer("ssm", "static", True)], hidden=16)
    model = SeqCellsSpace().build(cfg, PARITY_SPEC)
    model(torch.randn(2, 3, 1))
    z = model.block_list()[0].static.last_inputs  # type: ignore[union-attr]
    assert torch.allclose(z.norm(dim=-1), torch.full((z.shape[0],), math.sqrt(8.0)))


def test_static_weights_come_from_the_generator() -> None:
    cfg = config([layer("retention", "static")], hidden=16)
    torch.manual_seed(0)
    model = SeqCellsSpace().build(cfg, PARITY_SPEC).eval()
    block = model.block_list()[0]
    assert target_names(block.cell) == []  # all weight matrices are generated (non-MIP)
    x = torch.randn(2, 3, 1)
    y = model(x)
    with torch.no_grad():
        block.static.embed.mul_(2.0)  # type: ignore[union-attr]
    assert not torch.allclose(model(x), y)


def test_universal_halts_at_different_steps_per_position() -> None:
    torch.manual_seed(0)
    cell = UniversalCell(8, 8, heads=2, max_steps=6, ponder=0.01, pos="rotary")
    with torch.no_grad():
        cell.halt.weight.normal_(0.0, 1.0)
        cell.halt.bias.fill_(-0.5)
    y = cell(torch.randn(4, 20, 8))
    n = cell.last_n_updates
    assert n is not None and y.shape == (4, 20, 8)
    assert len(torch.unique(n)) >= 3, f"halting steps {torch.unique(n).tolist()}"
    assert float(n.min()) >= 1 and float(n.max()) <= 6
    assert cell.aux_loss.requires_grad and float(cell.aux_loss.detach()) > 0
    cell.aux_loss.backward()
    assert cell.halt.weight.grad is not None and cell.halt.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("hypernet,mip", [("static", False), ("static", True),
                                          ("dynamic", False), ("dynamic", True),
                                          ("rnn_chunks", False), ("rnn_chunks", True)])
def test_models_with_hypernetworks_stay_causal(hypernet: str, mip: bool) -> None:
    from nas.interfaces import TaskSpec

    cells = ["slstm", "rhn"] if hypernet == "dynamic" else ["ssm", "retention"]
    cfg = config([layer(c, hypernet, mip) for c in cells], hidden=16, loops=2)
    spec = TaskSpec("seq", input_size=3, output_size=4, seq_len=9, output_mode="sequence")
    torch.manual_seed(0)
    model = SeqCellsSpace().build(cfg, spec).double().eval()
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    y = model(x)
    x2 = x.clone()
    x2[:, 5:] += 1.0
    y2 = model(x2)
    assert torch.allclose(y[:, :5], y2[:, :5], atol=1e-12)
    assert not torch.allclose(y[:, 5:], y2[:, 5:])
