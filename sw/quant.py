"""Torch quantizers of the low-bit training methods (docs/methods.md), forward and backward.

Each is a plain function on tensors (or a small module where the method learns a parameter);
the backward pass is the method's own straight-through estimator. Forward values are what the
exported QONNX model computes, so a trained network imports into lowbit exactly.

- :func:`sign_ste` — BNN: ``sign`` (0 ↦ +1, so tensors stay bipolar), gradient passed where
  ``|x| <= 1`` and cancelled elsewhere.
- :func:`binary_connect` — deterministic ``sign`` or stochastic ``+1`` with probability
  ``hard_sigmoid(w)``; gradient straight through.
- :func:`xnor_weights`, :func:`xnor_activations` — XNOR-Net: ``α·sign(W)`` with ``α`` the mean
  ``|W|`` per output channel; ``β·sign(x)`` with ``β`` the mean ``|x|`` per sample.
- :func:`twn` — TWN: ``Δ = 0.7·mean|W|``, ``α`` the mean ``|W|`` above ``Δ``.
- :class:`TTQ` — trained ternary: learned ``Wp``, ``Wn``, threshold ``t·max|W|``.
- :class:`INQ` — incremental power-of-two quantization with masks at 50, 75, 87.5, 100 %.
- :func:`log2_quant` — power-of-two rounding in the log domain.
- :func:`dorefa_weights`, :func:`dorefa_activations` — DoReFa k-bit.
- :class:`PACT` — a learned clip ``α`` for activations, then k-bit.
- :func:`ede_sign`, :func:`ede_schedule` — IR-Net's error decay estimator for ``sign``.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "sign_ste",
    "binary_connect",
    "xnor_weights",
    "xnor_activations",
    "twn",
    "TTQ",
    "INQ",
    "log2_quant",
    "quantize_k",
    "dorefa_weights",
    "dorefa_activations",
    "PACT",
    "ede_sign",
    "ede_schedule",
]


def _bipolar(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _bipolar(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """BNN's sign: +1 for ``x >= 0``, −1 below; the gradient passes where ``|x| <= 1``."""
    return _SignSTE.apply(x)


class _Through(torch.autograd.Function):
    """``value`` forward, the gradient of ``x`` unchanged backward."""

    @staticmethod
    def forward(ctx, x, value):
        return value

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def binary_connect(w: torch.Tensor, stochastic: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """BinaryConnect: ``sign(w)``, or +1 with probability ``clip((w + 1) / 2, 0, 1)``."""
    if stochastic:
        p = ((w + 1) / 2).clamp(0, 1)
        draw = torch.rand(w.shape, generator=generator, dtype=w.dtype, device=w.device)
        value = torch.where(draw < p, torch.ones_like(w), -torch.ones_like(w))
    else:
        value = _bipolar(w)
    return _Through.apply(w, value.detach())


def xnor_weights(w: torch.Tensor) -> torch.Tensor:
    """XNOR-Net weights: ``α_c · sign(W_c)`` with ``α_c = mean |W_c|`` per output channel
    (rows); the gradient reaches ``W`` through ``α`` and the STE of ``sign``."""
    alpha = w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)
    return alpha * sign_ste(w)


def xnor_activations(x: torch.Tensor) -> torch.Tensor:
    """XNOR-Net activations: ``β · sign(x)`` with ``β`` the mean ``|x|`` of each sample."""
    beta = x.abs().mean(dim=tuple(range(1, x.dim())), keepdim=True)
    return beta * sign_ste(x)


def twn(w: torch.Tensor) -> torch.Tensor:
    """Ternary weight networks: ``Δ = 0.7·mean|W|``; ``α`` the mean ``|W|`` over ``|W| > Δ``;
    ``α·sign(W)`` above ``Δ``, 0 below. Straight-through gradient."""
    delta = 0.7 * w.abs().mean()
    keep = (w.abs() > delta).to(w.dtype)
    alpha = (w.abs() * keep).sum() / keep.sum().clamp(min=1)
    value = alpha * torch.sign(w) * keep
    return _Through.apply(w, value.detach())


class _TTQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, wp, wn, t):
        delta = t * w.abs().max()
        pos, neg = w > delta, w < -delta
        ctx.save_for_backward(pos, neg, wp, wn)
        return wp * pos.to(w.dtype) - wn * neg.to(w.dtype)

    @staticmethod
    def backward(ctx, grad):
        pos, neg, wp, wn = ctx.saved_tensors
        mid = ~(pos | neg)
        grad_w = grad * (wp * pos + wn * neg + mid.to(grad.dtype))
        return grad_w, (grad * pos).sum().reshape(wp.shape), \
            -(grad * neg).sum().reshape(wn.shape), None


class TTQ(torch.nn.Module):
    """Trained ternary quantization of one weight tensor: ``+Wp`` above ``t·max|W|``, ``−Wn``
    below its negative, 0 between. ``Wp`` and ``Wn`` are learned (gradients: the sums of the
    output gradients over their positions); ``W``'s gradient is scaled by ``Wp``, 1 or ``Wn``."""

    def __init__(self, init: float = 1.0, t: float = 0.05):
        super().__init__()
        self.wp = torch.nn.Parameter(torch.tensor(float(init)))
        self.wn = torch.nn.Parameter(torch.tensor(float(init)))
        self.t = t

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return _TTQ.apply(w, self.wp, self.wn, self.t)


def log2_quant(w: torch.Tensor, bits: int = 4, max_exponent: int | None = None) -> torch.Tensor:
    """Power-of-two weights: ``sign(w)·2^round(log2|w|)``, exponents within the ``2^(bits−1) − 1``
    values below ``max_exponent`` (default: that of ``max|w|``); smaller magnitudes become 0.
    Straight-through gradient."""
    if max_exponent is None:
        max_exponent = int(torch.round(torch.log2(w.abs().max().clamp(min=1e-12))).item())
    min_exponent = max_exponent - (2 ** (bits - 1) - 2)
    mag = w.abs().clamp(min=1e-30)
    e = torch.round(torch.log2(mag)).clamp(max=max_exponent)
    value = torch.sign(w) * torch.exp2(e) * (e >= min_exponent).to(w.dtype)
    return _Through.apply(w, value.detach())


class INQ:
    """Incremental network quantization of one weight tensor to ``{0, ±2^n2 … ±2^n1}``.

    ``n1 = floor(log2(4·max|W| / 3))`` and ``n2 = n1 + 1 − 2^(bits−1) / 2``, as the paper sets
    them for ``bits``-bit codes. :meth:`step` quantizes the largest-magnitude weights not yet
    quantized until ``fraction`` of them are (50 → 75 → 87.5 → 100 %), and freezes them:
    :meth:`mask_grad` zeroes their gradient so only the rest keeps training.
    """

    SCHEDULE = (0.5, 0.75, 0.875, 1.0)

    def __init__(self, weight: torch.nn.Parameter, bits: int = 4):
        self.weight, self.bits = weight, bits
        with torch.no_grad():
            top = float(weight.abs().max())
        self.n1 = math.floor(math.log2(4 * top / 3)) if top > 0 else 0
        self.n2 = self.n1 + 1 - 2 ** (bits - 1) // 2
        self.frozen = torch.zeros_like(weight, dtype=torch.bool)

    def quantize(self, w: torch.Tensor) -> torch.Tensor:
        """Each weight to the nearest allowed power of two (0 below ``2^(n2−1)·1.5``)."""
        mag = w.abs()
        levels = torch.exp2(torch.arange(self.n2, self.n1 + 1, dtype=w.dtype))
        lower = torch.cat([torch.zeros(1, dtype=w.dtype), levels[:-1]])
        # the paper's rule: β if (α + β)/2 <= |w| < 3β/2, for neighbouring levels α < β
        out = torch.zeros_like(w)
        for a, b in zip(lower.tolist(), levels.tolist()):
            low = (a + b) / 2 if a > 0 else b / 2
            out = torch.where((mag >= low) & (mag < 1.5 * b), torch.full_like(w, b), out)
        out = torch.where(mag >= 1.5 * float(levels[-1]), levels[-1].expand_as(w), out)
        return torch.sign(w) * out

    @torch.no_grad()
    def step(self, fraction: float) -> None:
        free = ~self.frozen
        count = int(round(fraction * self.weight.numel())) - int(self.frozen.sum())
        if count > 0:
            mags = torch.where(free, self.weight.abs(), torch.full_like(self.weight, -1.0))
            pick = torch.topk(mags.flatten(), count).indices
            self.frozen.view(-1)[pick] = True
        self.weight.copy_(torch.where(self.frozen, self.quantize(self.weight), self.weight))

    def mask_grad(self) -> None:
        if self.weight.grad is not None:
            self.weight.grad.masked_fill_(self.frozen, 0.0)


class _Round(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def quantize_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """DoReFa's ``quantize_k`` on [0, 1]: ``round(x·(2^k − 1)) / (2^k − 1)``, gradient
    straight through. (``torch.round`` is half to even, as QONNX's ROUND.)"""
    n = 2 ** k - 1
    return _Round.apply(x * n) / n


def dorefa_weights(w: torch.Tensor, k: int) -> torch.Tensor:
    """DoReFa k-bit weights: ``2·quantize_k(tanh(w) / (2·max|tanh(w)|) + 1/2) − 1``."""
    t = torch.tanh(w)
    return 2 * quantize_k(t / (2 * t.abs().max()) + 0.5, k) - 1


def dorefa_activations(x: torch.Tensor, k: int) -> torch.Tensor:
    """DoReFa k-bit activations: ``quantize_k(clip(x, 0, 1))``."""
    return quantize_k(x.clamp(0, 1), k)


class PACT(torch.nn.Module):
    """PACT: ``y = clip(x, 0, α)`` with a learned ``α``, then k bits on [0, α]. The gradient
    reaches ``α`` where ``x >= α`` (the clipped part), ``x`` where ``0 <= x < α``."""

    def __init__(self, k: int = 4, alpha: float = 6.0):
        super().__init__()
        self.k = k
        self.alpha = torch.nn.Parameter(torch.tensor(float(alpha)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.minimum(torch.relu(x), self.alpha)  # d/dα = 1 where x >= α
        return quantize_k(y / self.alpha, self.k) * self.alpha


class _EDE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, t, k):
        ctx.save_for_backward(x)
        ctx.t, ctx.k = t, k
        return _bipolar(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.k * ctx.t * (1 - torch.tanh(ctx.t * x) ** 2), None, None


def ede_schedule(epoch: int, epochs: int, t_min: float = 0.1, t_max: float = 10.0):
    """IR-Net's error decay estimator parameters at ``epoch`` of ``epochs``:
    ``t = t_min·10^(epoch/epochs · log10(t_max/t_min))`` and ``k = max(1/t, 1)``."""
    t = t_min * 10 ** (epoch / max(epochs, 1) * math.log10(t_max / t_min))
    return t, max(1 / t, 1.0)


def ede_sign(x: torch.Tensor, t: float, k: float) -> torch.Tensor:
    """``sign`` forward; backward ``k·t·(1 − tanh²(t·x))``, IR-Net's EDE."""
    return _EDE.apply(x, t, k)
