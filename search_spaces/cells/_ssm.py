"""``ssm``: diagonal linear state-space layer, S4D style (Gu et al., "On the Parameterization
and Initialization of Diagonal State Space Models", NeurIPS 2022).

Each of the H channels is a linear SSM  x' = A x + B u,  y = C x + D u  with a learned diagonal
A, B = 1, learned C and step size dt.  ``diag="complex"``: N/2 conjugate pairs,
A = -exp(a_re) + i a_im with the S4D-Lin init (a_re = log 1/2, a_im = pi n), complex C, and
y = 2 Re(C x); ``diag="real"``: N real modes, A = -exp(a_re) with the S4D-Real init
(A_n = -(n+1)), real C, y = C x.  Discretisation (``disc``):

* ``zoh``:      dA = exp(dt A),                dB = (exp(dt A) - 1) / A
* ``bilinear``: dA = (1 + dt A/2)/(1 - dt A/2), dB = dt / (1 - dt A/2)

Two equivalent forms: ``mode="conv"`` (training) builds the kernel K_l = 2 Re(sum_n C_n dB_n
dA_n^l) and convolves causally (directly up to :data:`DIRECT_MAX_LEN` steps, with FFTs in
O(T log T) beyond); ``mode="recurrent"`` runs
x_t = dA x_{t-1} + dB u_t, y_t = 2 Re(C x_t) + D u_t step by step.  They agree to float
precision.  The channel outputs go through the sampled activation and a linear mix.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from search_spaces._activations import make_activation

__all__ = ["DIRECT_MAX_LEN", "SSMCell"]

# Up to this length the convolution form runs as a Toeplitz matrix product, whose outputs
# are exactly causal; longer sequences use FFTs, where float32 round-off (~1e-6 relative) from
# later inputs can reach earlier outputs.
DIRECT_MAX_LEN = 128


class SSMCell(nn.Module):
    """(B, T, d_in) -> (B, T, d_out) diagonal SSM layer (``state`` = N, real dimension)."""

    a_im: torch.Tensor
    c_im: torch.Tensor

    def __init__(self, d_in: int, d_out: int, *, state: int = 32, disc: str = "zoh",
                 diag: str = "complex", activation: str = "gelu", dt_min: float = 1e-3,
                 dt_max: float = 1e-1) -> None:
        super().__init__()
        if disc not in ("zoh", "bilinear"):
            raise ValueError(f"disc is {disc!r}, but must be 'zoh' or 'bilinear'")
        if diag not in ("complex", "real"):
            raise ValueError(f"diag is {diag!r}, but must be 'complex' or 'real'")
        if state < 2 or state % 2:
            raise ValueError(f"state is {state}, but must be an even number >= 2")
        self.disc = disc
        self.diag = diag
        H = d_out
        self.inp = nn.Linear(d_in, H) if d_in != H else None
        self.log_dt = nn.Parameter(
            torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        if diag == "complex":
            n = state // 2
            self.a_re = nn.Parameter(torch.full((H, n), math.log(0.5)))
            self.a_im = nn.Parameter(math.pi * torch.arange(n, dtype=torch.float32).repeat(H, 1))
            self.c_re = nn.Parameter(torch.randn(H, n) * math.sqrt(0.5))
            self.c_im = nn.Parameter(torch.randn(H, n) * math.sqrt(0.5))
            self.factor = 2.0  # conjugate pairs: y = 2 Re(C x)
        else:
            n = state
            self.a_re = nn.Parameter(
                torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(H, 1))
            self.register_buffer("a_im", torch.zeros(H, n), persistent=False)
            self.c_re = nn.Parameter(torch.randn(H, n) / math.sqrt(n))
            self.register_buffer("c_im", torch.zeros(H, n), persistent=False)
            self.factor = 1.0
        self.skip = nn.Parameter(torch.randn(H))
        self.act = make_activation(activation)
        self.out = nn.Linear(H, d_out)

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dA, dB, C) as complex (H, N/2) tensors."""
        A = torch.complex(-torch.exp(self.a_re), self.a_im)
        dt = torch.exp(self.log_dt).unsqueeze(-1)
        dtA = dt * A
        if self.disc == "zoh":
            dA = torch.exp(dtA)
            dB = (dA - 1.0) / A
        else:
            den = 1.0 - dtA / 2
            dA = (1.0 + dtA / 2) / den
            dB = dt / den
        return dA, dB, torch.complex(self.c_re, self.c_im)

    def kernel(self, T: int) -> torch.Tensor:
        """(H, T) real convolution kernel."""
        dA, dB, C = self.discrete()
        steps = torch.arange(T, device=dA.device, dtype=self.a_re.dtype)
        powers = torch.exp(torch.log(dA).unsqueeze(-1) * steps)  # (H, n, T) Vandermonde
        return self.factor * torch.einsum("hn,hnt->ht", C * dB, powers).real

    def ssm(self, u: torch.Tensor, mode: str = "conv") -> torch.Tensor:
        """Apply the SSM to (B, T, H) channel inputs, without activation or mixing."""
        B, T = u.shape[:2]
        if mode == "conv":
            K = self.kernel(T)
            ut = u.transpose(1, 2)  # (B, H, T)
            if T <= DIRECT_MAX_LEN:  # exact: lower-triangular Toeplitz matmul, O(T^2)
                idx = torch.arange(T, device=u.device)
                lag = idx.unsqueeze(1) - idx.unsqueeze(0)  # t - s
                toeplitz = K[:, lag.clamp(min=0)] * (lag >= 0).to(K.dtype)  # (H, T, T)
                y = torch.einsum("hts,bhs->bht", toeplitz, ut)
            else:  # FFT, O(T log T); causal up to float round-off
                n_fft = 2 * T
                uf = torch.fft.rfft(ut, n=n_fft)
                y = torch.fft.irfft(uf * torch.fft.rfft(K, n=n_fft), n=n_fft)[..., :T]
            y = y.transpose(1, 2)
        elif mode == "recurrent":
            dA, dB, C = self.discrete()
            x = torch.zeros(B, *dA.shape, dtype=dA.dtype, device=u.device)
            ys = []
            for t in range(T):
                x = dA * x + dB * u[:, t].unsqueeze(-1)
                ys.append(self.factor * (x * C).sum(-1).real)
            y = torch.stack(ys, dim=1)
        else:
            raise ValueError(f"mode is {mode!r}, but must be 'conv' or 'recurrent'")
        return y + self.skip * u

    def init_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The zero SSM state (B, H, modes), complex, for :meth:`step`."""
        cdtype = torch.complex128 if like.dtype == torch.float64 else torch.complex64
        return torch.zeros(batch, *self.a_re.shape, dtype=cdtype, device=like.device)

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step for step-by-step use: ``x_t`` (B, d_in) -> (output (B, d_out),
        new state).  Stepping over a sequence reproduces ``forward``."""
        u = self.inp(x_t) if self.inp is not None else x_t
        dA, dB, C = self.discrete()
        state = dA * state + dB * u.unsqueeze(-1)
        y = self.factor * (state * C).sum(-1).real + self.skip * u
        return self.out(self.act(y)), state

    def forward(self, x: torch.Tensor, mode: str = "conv") -> torch.Tensor:
        if self.inp is not None:
            x = self.inp(x)
        return self.out(self.act(self.ssm(x, mode)))
