"""lowbit.sim.timing: the composed cycle model against the network top in Amaranth's simulator
(every unit, window generator, pool and label select in one chain), exactly, with line buffers
(a chain of convolutions reserving room in each other's rings) and with frame buffers."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sim.perf import analyze
from lowbit.sw.synthetic import conv_net, quant_mlp
from streams import stream_through

import lowbit

NETWORKS = {
    "binary-mlp": (lambda: quant_mlp((12, 8, 6), weights="binary", act_bits=1, seed=1),
                   [(2, 4), (3, 2)]),
    "ternary-mlp": (lambda: quant_mlp((16, 8, 4), weights="ternary", act_bits=2, sparsity=0.6,
                                      seed=2), [(2, 4), (1, 2)]),
    "conv-pool": (lambda: conv_net((2, 6, 6), (("conv", 4, 3, 1, 1), ("pool", 2), ("fc", 5)),
                                   seed=3), [(2, 6), (1, 4)]),
    "conv-stride": (lambda: conv_net((1, 7, 7), (("conv", 2, 3, 2, 0), ("fc", 4)),
                                     weights="int4", act_bits=2, in_bits=2, seed=4),
                    [(1, 3), (2, 2)]),
    # three convolutions in a chain, a pool between the last two (reservations for every
    # fourth window), padding and a stride, multi-bit levels; the second is the slowest, so
    # the first waits for room in its ring within a frame (the coupled model's II and latency
    # are above the uncoupled bounds: checked below)
    "conv-chain": (lambda: conv_net((2, 12, 12), (("conv", 4, 3, 1, 1), ("conv", 4, 3, 1, 0),
                                                  ("pool", 2), ("conv", 6, 2, 2, 0),
                                                  ("fc", 5)),
                                    weights="ternary", act_bits=2, in_bits=2, seed=6),
                   [(2, 6), (1, 12), (3, 4), (5, 2)]),
}


CASES = [(name, label, line) for name in NETWORKS for label in (False, True)
         for line in ((True, False) if name.startswith("conv") else (True,))]


@pytest.mark.parametrize("name,label_select,line", CASES,
                         ids=[f"{n}-{'label' if s else 'acc'}-{'line' if b else 'frames'}"
                              for n, s, b in CASES])
def test_measured_ii_and_latency_equal_the_model(name, label_select, line):
    build, pairs = NETWORKS[name]
    net = lowbit.load(build())
    folding = Folding(tuple(LayerFolding(layer.name, pe, simd)
                            for layer, (pe, simd) in zip(net.layers, pairs)), label_select,
                      line_buffers=line)
    try:
        design = lowbit.compile(net, folding)
    except lowbit.LowbitError as exc:  # label select needs one increasing tail
        assert label_select and "label_select" in str(exc)
        pytest.skip("this tail is not one increasing map")
    x = np.random.default_rng(5).random((4, *net.input_shape), dtype=np.float32)
    beats = [int.from_bytes(b.tobytes(), "little") for f in design.input_beats(x) for b in f]
    p = design.perf
    if name == "conv-chain" and line:  # back-pressure inside a frame and between frames
        bound = analyze(net, folding, exact=False)
        assert p.latency_cycles > bound.latency_cycles and p.ii_cycles > bound.ii_cycles
    outs, t_in, t_out = stream_through(design.component(), beats, len(x) * p.out_beats)
    assert t_out[p.out_beats - 1] - t_in[0] == p.latency_cycles
    ends = t_out[p.out_beats - 1::p.out_beats]
    assert ends[-1] - ends[-2] == p.ii_cycles
    nbytes = -(-p.out_width // 8)
    raw = np.array([list(o.to_bytes(nbytes, "little")) for o in outs], dtype=np.uint8)
    y, ints = design.decode(raw)
    reference = lowbit.run(net, x)
    if label_select:
        np.testing.assert_array_equal(ints, reference.argmax(-1))
    else:
        np.testing.assert_array_equal(y, reference)
