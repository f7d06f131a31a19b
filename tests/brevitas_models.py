"""Real exports: Brevitas binary MLPs (both export paths) and a plain-torch sign-STE network."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def _randomize_batchnorm(bn, rng: np.random.Generator, fan_in: int, negative: float = 0.3):
    import torch

    c = bn.num_features
    sign = np.where(rng.random(c) < negative, -1.0, 1.0)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(rng.uniform(0.3, 2.0, c) * sign, dtype=torch.float32))
        bn.bias.copy_(torch.tensor(rng.normal(0, 0.5, c), dtype=torch.float32))
        bn.running_mean.copy_(torch.tensor(rng.normal(0, np.sqrt(fan_in) / 2, c),
                                           dtype=torch.float32))
        bn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2.0, c) * fan_in, dtype=torch.float32))


def brevitas_binary_mlp(sizes, seed: int = 0, input_shape=None, weight_scale: float = 1.0):
    """A Brevitas 1W1A MLP like TFC: 2x-1 input, BipolarQuant everywhere, BN between layers.

    ``weight_scale`` is the constant binary weight scale; bnn_pynq (TFC) uses 1.0, Brevitas's own
    default for ``SignedBinaryWeightPerTensorConst`` is 0.1.
    """
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst

    class WeightQuant(SignedBinaryWeightPerTensorConst):
        scaling_const = weight_scale

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
            layers = []
            for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(qnn.QuantLinear(a, b, bias=False,
                                              weight_quant=WeightQuant))
                if k < len(sizes) - 2:
                    bn = nn.BatchNorm1d(b)
                    _randomize_batchnorm(bn, rng, a)
                    layers += [bn, qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)]
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            x = x.reshape(x.shape[0], -1)
            return self.body(self.inp(2.0 * x - 1.0))

    return Mlp().eval(), tuple(input_shape or (sizes[0],))


def export_brevitas(module, input_shape, path: Path, dynamo: bool) -> Path:
    import torch
    from brevitas.export import export_qonnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(module, torch.rand(1, *input_shape), str(path), dynamo=dynamo)
    return path


def sign_ste_mlp(sizes, seed: int = 0, zero_bias_bn: bool = False):
    """Plain torch: Sign with a straight-through gradient on weights and activations."""
    import torch
    import torch.nn as nn

    class SignSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.sign(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x.abs() <= 1)

    class BinLinear(nn.Linear):
        def forward(self, x):
            return nn.functional.linear(x, SignSTE.apply(self.weight))

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(BinLinear(a, b, bias=False))
                if k < len(sizes) - 2:
                    bn = nn.BatchNorm1d(b)
                    if not zero_bias_bn:
                        _randomize_batchnorm(bn, rng, a)
                    layers.append(bn)
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            x = SignSTE.apply(x)
            for layer in self.layers:
                x = layer(x)
                if isinstance(layer, nn.BatchNorm1d):
                    x = SignSTE.apply(x)
            return x

    return Net().eval()


def export_plain(module, n_in: int, path: Path) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, n_in),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"], opset_version=13)
    return path


def brevitas_quant_mlp(sizes, weights: str, act: str, seed: int = 0, in_bits: int = 8):
    """A Brevitas MLP with multi-bit parts, fixed-point (power-of-two) scales throughout.

    ``weights``: ``binary`` (±1), ``ternary`` (2-bit narrow: {-1, 0, +1}·2^k) or ``int4``.
    ``act``: ``ternary`` (2-bit signed narrow: {-1, 0, +1}·2^k), ``uint2`` or ``uint4`` (ReLU).
    The input is an unsigned ``in_bits``-bit quantizer on [0, 1) pixels.
    """
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        SignedBinaryWeightPerTensorConst,
        Uint8ActPerTensorFixedPoint,
    )

    class Ternary(Int8ActPerTensorFixedPoint):
        bit_width = 2
        narrow_range = True
        max_val = 1.0

    class Input(Uint8ActPerTensorFixedPoint):
        bit_width = in_bits
        max_val = 1.0

    class Binary(SignedBinaryWeightPerTensorConst):
        scaling_const = 0.5  # a power of two, as bnn_pynq's 1.0 (Brevitas's default is 0.1)

    if weights == "binary":
        wq, wbits = Binary, 1
    else:
        wq, wbits = Int8WeightPerTensorFixedPoint, 2 if weights == "ternary" else 4
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def activation():
        if act == "ternary":
            return qnn.QuantIdentity(act_quant=Ternary)
        return qnn.QuantReLU(bit_width=int(act[-1]), act_quant=Uint8ActPerTensorFixedPoint,
                             max_val=2.0)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Input)
            layers = []
            for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                layers.append(qnn.QuantLinear(a, b, bias=False, weight_quant=wq,
                                              weight_bit_width=wbits))
                if k < len(sizes) - 2:
                    bn = nn.BatchNorm1d(b)
                    _randomize_batchnorm(bn, rng, a / 4)
                    layers += [bn, activation()]
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return self.body(self.inp(x.reshape(x.shape[0], -1)))

    return Mlp().eval(), (sizes[0],)


def brevitas_binary_cnn(in_shape, convs, fcs, seed: int = 0, in_bits: int | None = None,
                        act_bits: int | None = None, global_pool: bool = False):
    """A Brevitas binary-weight CNN in the bnn_pynq style.

    ``convs``: ``(out_channels, kernel, padding, pool[, stride])`` per convolution (``pool`` is a
    kernel size or 0; ``kernel`` an int or a pair); then ``Flatten`` and the dense ``fcs``
    (hidden sizes..., classes). The input is ``2x − 1`` then BipolarQuant, or, with
    ``in_bits``, an ``in_bits``-bit signed quantizer (CNV's Q1.7 input). Activations are
    bipolar, or ``act_bits``-bit unsigned ReLUs; ``global_pool`` averages the last map
    (``AdaptiveAvgPool2d(1)``) before the dense layers. BatchNorm statistics are random, with
    some negative gammas.
    """
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        SignedBinaryActPerTensorConst,
        SignedBinaryWeightPerTensorConst,
        Uint8ActPerTensorFixedPoint,
    )

    class WeightQuant(SignedBinaryWeightPerTensorConst):
        scaling_const = 1.0

    class InputQuant(Int8ActPerTensorFixedPoint):
        bit_width = in_bits or 8
        max_val = 1.0

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def act():
        if act_bits:
            return qnn.QuantReLU(bit_width=act_bits, act_quant=Uint8ActPerTensorFixedPoint,
                                 max_val=2.0)
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)

    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = (qnn.QuantIdentity(act_quant=InputQuant) if in_bits else
                        qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst))
            layers, c, (h, w) = [], in_shape[0], in_shape[1:]
            for oc, k, pad, pool, *rest in convs:
                stride = rest[0] if rest else 1
                kh, kw = (k, k) if isinstance(k, int) else k
                conv = qnn.QuantConv2d(c, oc, (kh, kw), stride=stride, padding=pad, bias=False,
                                       weight_quant=WeightQuant)
                torch.nn.init.uniform_(conv.weight.data, -1, 1)
                bn = nn.BatchNorm2d(oc)
                _randomize_batchnorm(bn, rng, c * kh * kw / (4 if act_bits else 1))
                layers += [conv, bn, act()]
                h = (h + 2 * pad - kh) // stride + 1
                w = (w + 2 * pad - kw) // stride + 1
                if pool:
                    layers.append(nn.MaxPool2d(pool))
                    h, w = h // pool, w // pool
                c = oc
            if global_pool:
                layers.append(nn.AdaptiveAvgPool2d(1))
                h = w = 1
            layers.append(nn.Flatten())
            n = c * h * w
            for k, m in enumerate(fcs):
                layers.append(qnn.QuantLinear(n, m, bias=False, weight_quant=WeightQuant))
                if k < len(fcs) - 1:
                    bn = nn.BatchNorm1d(m)
                    _randomize_batchnorm(bn, rng, n)
                    layers += [bn, act()]
                n = m
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return self.body(self.inp(2.0 * x - 1.0))

    return Cnn().eval(), tuple(in_shape)


def brevitas_cnv(seed: int = 0):
    """bnn_pynq's CNV_1W1A topology (``model_with_cfg("cnv_1w1a", pretrained=False)``) with its
    uniform random weights and randomized BatchNorm statistics; input (3, 32, 32)."""
    import torch
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, _ = model_with_cfg("cnv_1w1a", pretrained=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            _randomize_batchnorm(module, rng, 9 * module.num_features)
    return model.eval(), (3, 32, 32)


def brevitas_stock(kind: str = "mlp", weight_quant: str = "Int8WeightPerTensorFloat",
                   weight_bits: int = 4, act_quant: str = "Uint8ActPerTensorFloat",
                   act_bits: int = 4, bias: bool = False, int32_bias: bool = False,
                   input_bits: int = 8, seed: int = 0):
    """A network as a Brevitas user builds it: stock quantizers (``brevitas.quant``), layers
    ``QuantLinear`` / ``QuantConv2d`` with ``weight_bit_width``, activations ``QuantIdentity``
    (signed), ``QuantReLU`` (unsigned) or ``QuantHardTanh``, float BatchNorm, optional biases
    (float, or ``Int32Bias``), an ``Int8ActPerTensorFloat`` input quantizer of
    ``input_bits``. Weights are random (Kaiming), BatchNorm statistics randomized; float
    scales are whatever the quantizers initialize to. ``kind``: ``mlp`` (64-32-24-10 on an
    8×8 input) or ``cnn`` (1×8×8 → conv 3×3 pad 1 → 8, pool 2 → conv 3×3 → 8 → fc 10)."""
    import brevitas.nn as qnn
    import brevitas.quant as bq
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    wq = getattr(bq, weight_quant)
    wkw = {"weight_quant": wq}
    if "Binary" not in weight_quant and "Ternary" not in weight_quant:
        wkw["weight_bit_width"] = weight_bits
    if int32_bias:
        wkw["bias_quant"] = bq.Int32Bias
    needs_quant_tensor = int32_bias

    def activation():
        if act_quant == "QuantHardTanh":
            return qnn.QuantHardTanh(bit_width=act_bits, max_val=1.0, min_val=-1.0,
                                     return_quant_tensor=needs_quant_tensor)
        if act_quant.startswith("Uint8"):
            return qnn.QuantReLU(act_quant=getattr(bq, act_quant), bit_width=act_bits,
                                 return_quant_tensor=needs_quant_tensor)
        return qnn.QuantIdentity(act_quant=getattr(bq, act_quant), bit_width=act_bits,
                                 return_quant_tensor=needs_quant_tensor)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFloat,
                                         bit_width=input_bits,
                                         return_quant_tensor=needs_quant_tensor)
            layers = []
            if kind == "mlp":
                sizes = (64, 32, 24, 10)
                for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                    layers.append(qnn.QuantLinear(a, b, bias=bias, **wkw))
                    if k < len(sizes) - 2:
                        bn = nn.BatchNorm1d(b)
                        _randomize_batchnorm(bn, rng, a / 8)
                        layers += [bn, activation()]
                self.flatten = True
            else:
                for a, b, pool in ((1, 8, True), (8, 8, False)):
                    layers.append(qnn.QuantConv2d(a, b, 3, padding=1 if pool else 0, bias=bias,
                                                  **wkw))
                    bn = nn.BatchNorm2d(b)
                    _randomize_batchnorm(bn, rng, a * 9 / 8)
                    layers += [bn, activation()]
                    if pool:
                        layers.append(nn.MaxPool2d(2))
                layers += [nn.Flatten(), qnn.QuantLinear(8 * 2 * 2, 10, bias=bias, **wkw)]
                self.flatten = False
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            if self.flatten:
                x = x.reshape(x.shape[0], -1)
            return self.body(self.inp(x))

    return Net().eval(), ((64,) if kind == "mlp" else (1, 8, 8))


def stock_matrix() -> list[tuple[str, dict]]:
    """The configurations of Brevitas's stock quantizers that lowbit reads: ``(id, kwargs of
    brevitas_stock)``, MLP and CNN. Weights at each bit width with the default activation
    (``QuantReLU``, ``Uint8ActPerTensorFloat``, 4 bits), activations at each bit width with the
    default weights (``Int8WeightPerTensorFloat``, 4 bits), biases (float, ``Int32Bias``) and a
    4-bit input beside the default 8-bit one."""
    rows = []
    for wq in ("Int8WeightPerTensorFloat", "Int8WeightPerChannelFloat"):
        for bits in (2, 3, 4, 8):
            rows.append((f"{wq}-w{bits}", {"weight_quant": wq, "weight_bits": bits}))
    for wq in ("Int8WeightPerTensorFixedPoint", "Int8WeightPerChannelFixedPointMSE",
               "ShiftedUint8WeightPerTensorFloat"):
        rows.append((f"{wq}-w4", {"weight_quant": wq, "weight_bits": 4}))
    for wq in ("SignedBinaryWeightPerTensorConst", "SignedTernaryWeightPerTensorConst"):
        rows.append((wq, {"weight_quant": wq}))
    for aq in ("Int8ActPerTensorFloat", "Uint8ActPerTensorFloat", "QuantHardTanh"):
        for bits in (2, 3, 4, 8):
            rows.append((f"{aq}-a{bits}", {"act_quant": aq, "act_bits": bits}))
    rows.append(("float-bias", {"bias": True}))
    rows.append(("Int32Bias-w3-per-channel", {"int32_bias": True, "weight_bits": 3,
                                              "weight_quant": "Int8WeightPerChannelFloat"}))
    rows.append(("input-4-bit", {"input_bits": 4}))
    return [(f"{kind}-{name}", {**kwargs, "kind": kind})
            for kind in ("mlp", "cnn") for name, kwargs in rows]
