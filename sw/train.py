"""Training low-bit MLPs and CNNs with the methods of :mod:`lowbit.sw.quant`, on data that needs
no download: scikit-learn's digits (8×8, shipped with scikit-learn) or MNIST IDX files.

Every network is ``input Quant → [Linear → BatchNorm → activation] × hidden → Linear``, or with
convolutions in the architecture (``c16,p,c32,p,f64``: :func:`parse_arch`) ``input Quant →
[Conv 3×3 → BatchNorm → activation (→ MaxPool 2×2)] × convs → [Linear → BatchNorm →
activation] × dense → Linear`` on the image (digits 1×8×8, MNIST 1×28×28). The input
is pixels in [0, 1] (digits: value / 16, exact at a 5-bit step of 1/16; MNIST: 8 bits at a step
of 1/256). Each method picks the weight quantizer and the activation:

| method | weights | activations |
|---|---|---|
| float | float | ReLU (the baseline; not exportable to low-bit hardware) |
| bnn | sign, STE cancelled beyond ±1 | sign |
| binaryconnect | sign (deterministic; stochastic on request) | 4-bit DoReFa |
| xnor | α·sign per output channel | sign (β is dropped: BatchNorm follows) |
| twn | ternary, Δ = 0.7·mean\\|W\\| | 4-bit DoReFa |
| ttq | ternary, learned +Wp / −Wn | 4-bit DoReFa |
| inq | 4-bit powers of two, 50→75→87.5→100 % | 4-bit DoReFa |
| log2 | 4-bit powers of two | 4-bit DoReFa |
| dorefa | 2-bit DoReFa | 2-bit DoReFa |
| pact | 4-bit DoReFa | 4-bit PACT (learned clip) |
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import quant
from .arch import parse_arch
from .datasets import Dataset

__all__ = ["METHODS", "QuantMLP", "train", "TrainResult", "parse_arch"]

METHODS = ("float", "bnn", "binaryconnect", "xnor", "twn", "ttq", "inq", "log2", "dorefa",
           "pact")
ACT_BITS = {"binaryconnect": 4, "twn": 4, "ttq": 4, "inq": 4, "log2": 4, "dorefa": 2,
            "pact": 4}  # the default activation bits of the methods with multi-bit activations


def _torch():
    import torch

    return torch


class QuantMLP:
    """The network for one method: plain tensors, so the exporter can read every parameter.

    ``sizes`` are the dense layers' widths (input first, 10 last); ``convs`` the convolutions
    in front of them, ``(channels, pool)`` each (3×3, stride 1, no padding; a 2×2 max pool after
    the activation when ``pool``), on images of ``image`` ``(channels, height, width)``; then
    ``sizes[0]`` is the flattened map. ``act_bits``: the unsigned activations' bits (the
    method's :data:`ACT_BITS` when None)."""

    def __init__(self, sizes: tuple[int, ...], method: str, seed: int = 0, convs=(),
                 image: tuple[int, int, int] | None = None, act_bits: int | None = None):
        torch = _torch()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        if act_bits is not None and method not in ACT_BITS:
            raise ValueError(f"method {method!r} has no multi-bit activations to size")
        self.act_bits = act_bits or ACT_BITS.get(method)
        torch.manual_seed(seed)
        self.sizes, self.method = tuple(sizes), method
        self.convs, self.image = tuple(convs), image
        channels = [image[0]] + [c for c, _ in self.convs] if self.convs else []
        self.linears = torch.nn.ModuleList(
            [torch.nn.Conv2d(a, b, 3, bias=False) for a, b in zip(channels[:-1], channels[1:])]
            + [torch.nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])])
        self.norms = torch.nn.ModuleList(
            [torch.nn.BatchNorm2d(c) for c, _ in self.convs]
            + [torch.nn.BatchNorm1d(b) for b in sizes[1:-1]])
        self.ttq = torch.nn.ModuleList(quant.TTQ(0.05) for _ in self.linears) \
            if method == "ttq" else None
        self.pact = torch.nn.ModuleList(quant.PACT(self.act_bits, 2.0) for _ in self.norms) \
            if method == "pact" else None
        self.inq = None
        self.stochastic = False  # BinaryConnect's stochastic variant (slower to train)
        self.training = True
        self.epoch, self.epochs = 0, 1

    def parameters(self):
        params = list(self.linears.parameters()) + list(self.norms.parameters())
        for extra in (self.ttq, self.pact):
            if extra is not None:
                params += list(extra.parameters())
        return params

    def train_mode(self, on: bool):
        self.training = on
        self.norms.train(on)

    def weight(self, k: int):
        """Layer ``k``'s weights as the forward pass uses them (out, in)."""
        w = self.linears[k].weight
        m = self.method
        if m == "float":
            return w
        if m == "bnn":
            return quant.sign_ste(w)
        if m == "binaryconnect":
            return quant.binary_connect(w, stochastic=self.training and self.stochastic)
        if m == "xnor":
            return quant.xnor_weights(w)
        if m == "twn":
            return quant.twn(w)
        if m == "ttq":
            return self.ttq[k](w)
        if m == "inq":
            return w  # INQ quantizes the stored weights in place, step by step
        if m == "log2":
            return quant.log2_quant(w, 4)
        if m in ("dorefa", "pact"):
            return quant.dorefa_weights(w, 2 if m == "dorefa" else 4)
        raise AssertionError(m)

    def activation(self, k: int, x):
        torch = _torch()
        m = self.method
        if m == "float":
            return torch.relu(x)
        if m in ("bnn", "xnor"):
            return quant.sign_ste(x)
        if m == "pact":
            return self.pact[k](x)
        return quant.dorefa_activations(x, self.act_bits)

    def __call__(self, x):
        torch = _torch()
        if self.convs:
            x = x.reshape(len(x), *self.image)
        for k, linear in enumerate(self.linears):
            if k < len(self.convs):
                x = torch.nn.functional.conv2d(x, self.weight(k))
            else:
                x = x.flatten(1) @ self.weight(k).t()
            if k < len(self.norms):
                x = self.activation(k, self.norms[k](x))
            if k < len(self.convs) and self.convs[k][1]:
                x = torch.nn.functional.max_pool2d(x, 2)
        return x


@dataclass
class TrainResult:
    model: QuantMLP
    test_accuracy: float  # the torch model's, in %
    seconds: float
    epochs: int


def train(data: Dataset, method: str, *, hidden: tuple = (256, 256),
          epochs: int = 60, batch: int = 64, lr: float = 0.01, seed: int = 0,
          stochastic: bool = False, act_bits: int | None = None,
          progress=None) -> TrainResult:
    """Train ``method`` on ``data``; ``hidden``: the dense widths, or an architecture with
    convolutions (:func:`lowbit.sw.arch.parse_arch`); ``act_bits``: see :class:`QuantMLP`;
    ``progress(epoch, epochs, loss)`` after each epoch."""
    torch = _torch()
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    image = data.image
    layers = parse_arch(hidden, image)
    convs, dense, first = [], [], data.x_train.shape[1]
    for kind, n, shape in layers:
        if kind == "conv":
            convs.append([n, False])
        elif kind == "pool":
            convs[-1][1] = True
        else:
            dense.append(n)
        if shape is not None:  # the flattened map the first dense layer reads
            first = shape[0] * shape[1] * shape[2]
    model = QuantMLP((first, *dense, 10), method, seed, [tuple(v) for v in convs], image,
                     act_bits)
    model.stochastic = stochastic
    if method == "inq":
        model.inq = [quant.INQ(linear.weight, 4) for linear in model.linears]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    x = torch.tensor(data.x_train)
    y = torch.tensor(data.y_train, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    stages = quant.INQ.SCHEDULE
    for epoch in range(epochs):
        model.train_mode(True)
        model.epoch, model.epochs = epoch, epochs
        if model.inq is not None:  # quantize one more share at the start of each quarter
            stage = min(len(stages) - 1, epoch * len(stages) // epochs)
            for q in model.inq:
                q.step(stages[stage])
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            if model.inq is not None:
                for q in model.inq:
                    q.mask_grad()
            opt.step()
            if method in ("bnn", "binaryconnect", "xnor"):
                with torch.no_grad():
                    for linear in model.linears:
                        linear.weight.clamp_(-1, 1)
            total += float(loss.detach()) * len(idx)
        sched.step()
        if progress:
            progress(epoch + 1, epochs, total / len(x))
    if model.inq is not None:
        for q in model.inq:
            q.step(1.0)
    model.train_mode(False)
    with torch.no_grad():
        pred = model(torch.tensor(data.x_test)).argmax(1).numpy()
    accuracy = 100.0 * float((pred == data.y_test).mean())
    return TrainResult(model, accuracy, time.perf_counter() - start, epochs)
