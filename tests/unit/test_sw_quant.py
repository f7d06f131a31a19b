"""Each training quantizer: the forward value and the gradient its method specifies."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from lowbit.sw import quant  # noqa: E402


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


def test_sign_ste_is_bipolar_and_cancels_the_gradient_outside_one():
    x = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.5, 1.0, 1.5])
    assert quant.sign_ste(x).tolist() == [-1, -1, -1, 1, 1, 1, 1]
    assert _grad(quant.sign_ste, x).tolist() == [0, 1, 1, 1, 1, 1, 0]


def test_binary_connect_deterministic_and_stochastic():
    w = torch.tensor([-0.7, 0.0, 0.2, 3.0])
    assert quant.binary_connect(w).tolist() == [-1, 1, 1, 1]
    assert _grad(quant.binary_connect, w).tolist() == [1, 1, 1, 1]
    gen = torch.Generator().manual_seed(0)
    w = torch.full((20000,), 0.5)  # p(+1) = 0.75
    share = (quant.binary_connect(w, stochastic=True, generator=gen) > 0).float().mean().item()
    assert abs(share - 0.75) < 0.02
    assert quant.binary_connect(torch.tensor([-5.0, 5.0]), stochastic=True).tolist() == [-1, 1]


def test_xnor_net_scales_per_output_channel_and_per_sample():
    w = torch.tensor([[1.0, -3.0], [0.5, 0.5]])
    assert quant.xnor_weights(w).tolist() == [[2.0, -2.0], [0.5, 0.5]]
    x = torch.tensor([[2.0, -4.0, 0.0]])
    assert quant.xnor_activations(x).tolist() == [[2.0, -2.0, 2.0]]
    # d/dw of sum(α·sign(w)) with α = mean|w| per row: sign(w)·Σsign/n + α·1{|w|<=1}
    g = _grad(quant.xnor_weights, torch.tensor([[0.5, -2.0]]))
    assert g.tolist() == [[0.0 + 1.25, 0.0]]


def test_twn_threshold_and_scale():
    w = torch.tensor([0.1, -0.2, 0.9, -1.5, 0.05, 1.1])
    delta = 0.7 * w.abs().mean().item()  # 0.4317
    alpha = (0.9 + 1.5 + 1.1) / 3
    expected = [0.0, 0.0, alpha, -alpha, 0.0, alpha]
    assert torch.allclose(quant.twn(w), torch.tensor(expected))
    assert delta == pytest.approx(0.7 * 3.85 / 6)
    assert _grad(quant.twn, w).tolist() == [1] * 6


def test_ttq_learns_positive_and_negative_scales():
    q = quant.TTQ(init=1.0, t=0.5)
    with torch.no_grad():
        q.wp.fill_(0.8)
        q.wn.fill_(1.3)
    w = torch.tensor([0.9, -1.0, 0.1, 0.6], requires_grad=True)  # Δ = 0.5
    y = q(w)
    assert y.tolist() == pytest.approx([0.8, -1.3, 0.0, 0.8])
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert q.wp.grad.item() == pytest.approx(1.0 + 4.0)
    assert q.wn.grad.item() == pytest.approx(-2.0)
    assert w.grad.tolist() == pytest.approx([0.8 * 1, 1.3 * 2, 1 * 3, 0.8 * 4])


def test_inq_quantizes_in_four_steps_and_freezes_what_it_quantized():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(64) * 0.3)
    inq = quant.INQ(w, bits=4)
    assert inq.n1 == math.floor(math.log2(4 * w.abs().max().item() / 3))
    assert inq.n2 == inq.n1 + 1 - 4
    allowed = {0.0} | {2.0 ** e for e in range(inq.n2, inq.n1 + 1)}
    for fraction in quant.INQ.SCHEDULE:
        inq.step(fraction)
        assert int(inq.frozen.sum()) == round(fraction * 64)
        frozen = w.detach()[inq.frozen].abs().tolist()
        assert set(frozen) <= allowed
        w.grad = torch.ones_like(w)
        inq.mask_grad()
        assert w.grad[inq.frozen].abs().sum() == 0 and w.grad[~inq.frozen].eq(1).all()
    # the paper's rounding: 3β/2 is the edge between β and 2β
    assert inq.quantize(torch.tensor([0.74, 0.76]) * 2 ** inq.n1 * 2).tolist() == [
        2.0 ** inq.n1, 2.0 ** inq.n1]


def test_log2_quant_rounds_in_the_log_domain_within_the_code():
    w = torch.tensor([0.9, -0.3, 0.07, 0.04, -2.9])
    y = quant.log2_quant(w, bits=4)  # max exponent round(log2 2.9) = 2; 7 exponents: -4..2
    assert y.tolist() == [1.0, -0.25, 0.0625, 0.0, -4.0]
    assert _grad(lambda t: quant.log2_quant(t, bits=4), w).tolist() == [1] * 5


def test_dorefa_k_bit_weights_and_activations():
    assert quant.quantize_k(torch.tensor([0.0, 0.2, 0.5, 1.0]), 2).tolist() == pytest.approx(
        [0.0, 1 / 3, 2 / 3, 1.0])
    x = torch.tensor([-1.0, 0.4, 2.0])
    assert quant.dorefa_activations(x, 2).tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    assert _grad(lambda t: quant.dorefa_activations(t, 2), x).tolist() == [0, 1, 0]
    w = torch.tensor([-3.0, 0.0, 3.0])
    assert quant.dorefa_weights(w, 2).tolist() == pytest.approx([-1.0, 1 / 3, 1.0])


def test_pact_clips_at_a_learned_alpha():
    p = quant.PACT(k=2, alpha=3.0)
    x = torch.tensor([-1.0, 1.0, 2.9, 5.0], requires_grad=True)
    y = p(x)
    assert y.tolist() == pytest.approx([0.0, 1.0, 3.0, 3.0])
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 0]
    # d/dα: 1 where x >= α; inside, the STE through round(x/α·3)·α/3 gives round(·)/3 − x/α
    assert p.alpha.grad.item() == pytest.approx(1 + (1 / 3 - 1 / 3) + (1 - 2.9 / 3))


def test_ir_net_ede_schedule_and_gradient():
    t0, k0 = quant.ede_schedule(0, 10)
    t1, k1 = quant.ede_schedule(10, 10)
    assert (t0, k0) == pytest.approx((0.1, 10.0)) and (t1, k1) == pytest.approx((10.0, 1.0))
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    y = quant.ede_sign(x, 2.0, 1.0)
    assert y.tolist() == [-1, 1, 1]
    y.sum().backward()
    expected = [2 * (1 - math.tanh(2 * v) ** 2) for v in (-0.5, 0.0, 0.5)]
    assert x.grad.tolist() == pytest.approx(expected)
