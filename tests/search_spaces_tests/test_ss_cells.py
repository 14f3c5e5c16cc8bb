"""Cells: shapes for any length, causality, determinism, and the equivalence of the parallel /
recurrent forms of ``retention`` and ``ssm`` (float64, 1e-5), of ``aaren`` (prefix scan vs
RNN, float64, 1e-8), of the selective scans of ``mamba`` and of the chunked attention of
``tcnca``."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _ss_helpers import layer

from search_spaces import ACTIVATIONS, CELLS, make_cell
from search_spaces._names import POSITIONAL
from search_spaces.cells import AarenCell, MambaCell, RetentionCell, SSMCell, TCNCACell
from search_spaces.cells._aaren import aaren_recurrent, aaren_scan
from search_spaces.cells._mamba import fused_scan, selective_scan
from search_spaces.cells._tcnca import chunked_causal_attention

# (cell, extra options) pairs: every cell, plus every positional encoding of attention.
VARIANTS: list[tuple[str, dict[str, Any]]] = [(c, {}) for c in CELLS] + [
    ("attention", {"pos": p}) for p in POSITIONAL] + [
    ("universal", {"pos": p}) for p in ("none", "rotary", "alibi")] + [
    ("ssm", {"disc": "bilinear"}), ("ssm", {"diag": "real", "disc": "zoh"}), ("slstm", {"forget": "exp"}), ("rhn", {"recurrence_depth": 3}),
    ("tcn", {"kernel": 5, "growth": 4, "levels": 3}), ("aaren", {"heads": 4}),
    ("mamba", {"state": 8, "expand": 1, "conv": 2}), ("tcnca", {"chunk": 4, "kernel": 2}),
    ("tcnca", {"chunk": 16, "levels": 1, "heads": 4})]


def _ids(v: tuple[str, dict[str, Any]]) -> str:
    return v[0] + "".join(f"-{k}={x}" for k, x in v[1].items())


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("variant", VARIANTS, ids=[_ids(v) for v in VARIANTS])
def test_shapes_any_length_and_causality(variant: tuple[str, dict[str, Any]]) -> None:
    cell_name, opts = variant
    torch.manual_seed(0)
    cell = make_cell(layer(cell_name, **opts), 5, 16).double().eval()
    for T in (1, 2, 13):
        assert cell(torch.randn(3, T, 5, dtype=torch.float64)).shape == (3, T, 16)
    x = torch.randn(2, 12, 5, dtype=torch.float64)
    y = cell(x)
    for t in (0, 5, 10):
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn_like(x2[:, t + 1:]) * 3
        y2 = cell(x2)
        assert torch.allclose(y[:, : t + 1], y2[:, : t + 1], atol=1e-10), f"{cell_name} leaks at t={t}"
        assert not torch.allclose(y[:, t + 1:], y2[:, t + 1:]), f"{cell_name} ignores its input"


@pytest.mark.parametrize("cell_name", CELLS)
def test_build_is_deterministic_under_seed(cell_name: str) -> None:
    x = torch.randn(2, 6, 4)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        outs.append(make_cell(layer(cell_name), 4, 8).eval()(x))
    torch.manual_seed(124)
    other = make_cell(layer(cell_name), 4, 8).eval()(x)
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], other)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds_and_selu_uses_lecun_init(activation: str) -> None:
    torch.manual_seed(0)
    cell = make_cell(layer("tcn", activation=activation, levels=2), 64, 64)
    y = cell(torch.randn(2, 5, 64))
    assert torch.isfinite(y).all()
    w = cell.convs[0].weight.detach()
    if activation == "selu":  # LeCun normal: std = 1/sqrt(fan_in) = 1/sqrt(64*kernel)
        assert abs(float(w.std()) * (w[0].numel() ** 0.5) - 1.0) < 0.1
    else:  # torch's default (Kaiming-uniform, a=sqrt(5)) is ~0.58/sqrt(fan_in)
        assert float(w.std()) * (w[0].numel() ** 0.5) < 0.7


def test_crrelu_formula() -> None:
    from search_spaces import CRReLU

    f = CRReLU(eps=0.5)
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    want = torch.relu(x) + 0.5 * x * torch.exp(-x * x / 2)
    assert torch.allclose(f(x), want)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_retention_parallel_equals_recurrent(heads: int) -> None:
    torch.manual_seed(0)
    cell = RetentionCell(6, 16, heads=heads).double()
    x = torch.randn(3, 40, 6, dtype=torch.float64)
    with torch.no_grad():
        a, b = cell(x, mode="parallel"), cell(x, mode="recurrent")
    assert torch.allclose(a, b, atol=1e-5, rtol=0)
    assert float((a - b).abs().max()) < 1e-10
    with pytest.raises(ValueError):
        cell(x, mode="chunked")


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("diag", ["complex", "real"])
def test_ssm_convolution_equals_recurrence(disc: str, diag: str) -> None:
    torch.manual_seed(0)
    cell = SSMCell(5, 16, state=32, disc=disc, diag=diag).double()
    with torch.no_grad():  # a wide range of step sizes, as after training
        cell.log_dt.uniform_(-6.0, 0.0)
    for T in (64, 200):  # Toeplitz and FFT paths
        x = torch.randn(2, T, 5, dtype=torch.float64)
        with torch.no_grad():
            a, b = cell(x, mode="conv"), cell(x, mode="recurrent")
        assert torch.allclose(a, b, atol=1e-5, rtol=0)
        assert float((a - b).abs().max()) < 1e-8


def test_ssm_convolution_is_exactly_causal_in_float32() -> None:
    torch.manual_seed(0)
    cell = SSMCell(8, 32, state=16).eval()
    x = torch.randn(4, 64, 8) * 100
    x2 = x.clone()
    x2[:, 20:] = torch.randn(4, 44, 8) * 100
    with torch.no_grad():
        assert torch.equal(cell(x)[:, :20], cell(x2)[:, :20])


def test_step_by_step_use_reproduces_the_sequence_forms() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 20, 5, dtype=torch.float64)
    ret = RetentionCell(5, 16, heads=2).double()
    ssm = SSMCell(5, 16, state=16).double()
    with torch.no_grad():
        for cell in (ret, ssm):
            state = cell.init_state(2, x)
            ys = []
            for t in range(x.shape[1]):
                if cell is ret:
                    y, state = ret.step(x[:, t], state, t)
                else:
                    y, state = ssm.step(x[:, t], state)
                ys.append(y)
            assert torch.allclose(torch.stack(ys, 1), cell(x), atol=1e-8)


@pytest.mark.parametrize("heads", [1, 4])
def test_causal_attention_matches_torch_multihead_attention(heads: int) -> None:
    from search_spaces.cells._attention import CausalSelfAttention

    torch.manual_seed(0)
    ours = CausalSelfAttention(16, heads, "none").double()
    ref = torch.nn.MultiheadAttention(16, heads, batch_first=True).double()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    mask = torch.ones(9, 9, dtype=torch.bool).triu(1)  # True = not allowed
    want, _ = ref(x, x, x, attn_mask=mask, need_weights=False)
    with torch.no_grad():
        assert torch.allclose(ours(x), want, atol=1e-10)


@pytest.mark.parametrize("T", [1, 2, 7, 16, 33])
def test_aaren_prefix_scan_equals_its_rnn(T: int) -> None:
    torch.manual_seed(0)
    s = torch.randn(3, 2, T, dtype=torch.float64) * 10  # large scores: the max shift matters
    v = torch.randn(3, 2, T, 5, dtype=torch.float64)
    want = torch.stack([  # softmax attention of the prefix, directly
        torch.einsum("...i,...id->...d", torch.softmax(s[..., : t + 1], -1), v[..., : t + 1, :])
        for t in range(T)], dim=-2)
    assert float((aaren_scan(s, v) - want).abs().max()) < 1e-8
    assert float((aaren_recurrent(s, v) - want).abs().max()) < 1e-8


def test_aaren_cell_forms_and_stepping_agree() -> None:
    torch.manual_seed(0)
    cell = AarenCell(5, 16, heads=2).double()
    x = torch.randn(2, 30, 5, dtype=torch.float64) * 3
    with torch.no_grad():
        a, b = cell(x, mode="scan"), cell(x, mode="recurrent")
        state = cell.init_state(2, x)
        ys = []
        for t in range(x.shape[1]):
            y, state = cell.step(x[:, t], state)
            ys.append(y)
            assert state[2].shape == (2, 2, 8)  # constant memory, whatever t
    assert float((a - b).abs().max()) < 1e-8
    assert float((torch.stack(ys, 1) - a).abs().max()) < 1e-8
    with pytest.raises(ValueError):
        cell(x, mode="parallel")


@pytest.mark.parametrize("T", [1, 5, 16, 17, 50])
@pytest.mark.parametrize("chunk", [1, 4, 16])
def test_selective_scan_forms_agree(T: int, chunk: int) -> None:
    torch.manual_seed(0)
    a = torch.rand(2, T, 3, 4, dtype=torch.float64)
    b = torch.randn(2, T, 3, 4, dtype=torch.float64)
    ref = selective_scan(a, b, "sequential")
    assert float((selective_scan(a, b, "parallel") - ref).abs().max()) < 1e-10
    assert float((selective_scan(a, b, "chunked", chunk=chunk) - ref).abs().max()) < 1e-10
    with pytest.raises(ValueError):
        selective_scan(a, b, "fft")


def test_mamba_cell_scans_agree_and_delta_is_input_dependent() -> None:
    torch.manual_seed(0)
    cell = MambaCell(5, 16, state=8, expand=2, conv=4).double()
    x = torch.randn(2, 40, 5, dtype=torch.float64)
    with torch.no_grad():
        ref = cell(x, scan="sequential")
        for scan in ("parallel", "chunked"):
            assert float((cell(x, scan=scan) - ref).abs().max()) < 1e-10
        xs = torch.randn(2, 40, cell.E, dtype=torch.float64)
        delta, Bm, Cm, A = cell._selective(xs)
        want = torch.einsum("bten,btn->bte", selective_scan(*cell._ssm_inputs(xs)[:2],
                                                            "sequential"), Cm)
        for chunk in (1, 3, 7, 40, 100):  # the fused form, never holding (B, T, E, N)
            got = fused_scan(delta, xs, Bm, Cm, A, chunk)
            assert float((got - want).abs().max()) < 1e-10
        a, _, c = cell._ssm_inputs(xs)
        assert a.shape == (2, 40, cell.E, 8) and c.shape == (2, 40, 8)
        assert float(a.std(dim=1).min()) > 0  # the decay changes with the input (selective)


@pytest.mark.parametrize("chunk", [1, 3, 8, 40])
def test_chunked_attention_equals_block_diagonal_causal_attention(chunk: int) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 21, 4, dtype=torch.float64) for _ in range(3))
    idx = torch.arange(21)
    allowed = (idx[:, None] >= idx[None, :]) & (idx[:, None] // chunk == idx[None, :] // chunk)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    assert torch.allclose(chunked_causal_attention(q, k, v, chunk), want, atol=1e-12)


def test_tcnca_attention_does_not_cross_chunks_beyond_the_tcn_field() -> None:
    torch.manual_seed(0)
    cell = TCNCACell(4, 16, chunk=4, kernel=2, levels=1).double().eval()
    x = torch.randn(1, 12, 4, dtype=torch.float64)
    x2 = x.clone()
    x2[:, :6] = torch.randn(1, 6, 4, dtype=torch.float64)  # receptive field of t=8: steps 7, 8
    with torch.no_grad():
        assert torch.allclose(cell(x)[:, 8], cell(x2)[:, 8], atol=1e-12)
        assert not torch.allclose(cell(x)[:, 6], cell(x2)[:, 6])
