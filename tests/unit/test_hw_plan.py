"""lowbit.hw.plan: foldings refused with what would fit, and the streams between layers."""

from __future__ import annotations

import pytest
from lowbit.hw.network import NetworkTop
from lowbit.hw.plan import Folding, LayerFolding, plan_network, validate_folding
from lowbit.sw.synthetic import binary_mlp, conv_net

import lowbit
from lowbit.errors import FoldingError


@pytest.fixture(scope="module")
def net():
    return lowbit.load(binary_mlp((24, 12, 8, 6), seed=1))


def _folding(net, pairs, **kwargs):
    return Folding(tuple(LayerFolding(layer.name, pe, simd, **kwargs)
                         for layer, (pe, simd) in zip(net.layers, pairs)))


@pytest.mark.parametrize("pairs,message", [
    ([(5, 1), (1, 1), (1, 1)], r"pe=5 must divide its 12 output channels \(MH % PE == 0\); "
                               r"try one of \[1, 2, 3, 4, 6, 12\]"),
    ([(1, 5), (1, 1), (1, 1)], r"simd=5 must divide its 24 inputs"),
    ([(1, 1), (1, 1)], "folding has 2 layers, the network 3"),
])
def test_foldings_that_do_not_fit_are_refused_with_what_would(net, pairs, message):
    with pytest.raises(FoldingError, match=message):
        validate_folding(net, _folding(net, pairs))


def test_tree_stages_beyond_the_tree_are_refused(net):
    with pytest.raises(FoldingError, match=r"tree_stages=9 must be 0..\d+ for simd=4"):
        validate_folding(net, _folding(net, [(1, 4), (1, 1), (1, 1)], tree_stages=9))


def test_a_layer_in_the_wrong_place_is_refused(net):
    f = Folding((LayerFolding("fc1", 1, 1), LayerFolding("fc0", 1, 1),
                 LayerFolding("fc2", 1, 1)))
    with pytest.raises(FoldingError, match="folding layer 'fc1' is in the place of 'fc0'"):
        validate_folding(net, f)


@pytest.mark.parametrize("build", [
    lambda: binary_mlp((24, 12, 8, 6), seed=1),
    lambda: conv_net((2, 6, 6), (("conv", 4, 3, 1, 1), ("pool", 2), ("conv", 2, 2, 1, 0),
                                 ("fc", 5)), seed=2),
])
def test_each_layer_reads_the_stream_the_one_before_writes(build):
    net = lowbit.load(build())
    folding = Folding(tuple(LayerFolding(layer.name, layer.out_features, 1)
                            for layer in net.layers))
    plan = plan_network(net, folding)
    for a, b in zip(plan.layers, plan.layers[1:]):
        assert (b.in_width, b.in_beats, b.in_elem_bits) == (a.out_width, a.out_beats,
                                                            a.lane_bits)
    assert plan.in_width == plan.layers[0].in_width
    assert plan.out_width == plan.layers[-1].out_width
    top = NetworkTop(plan)
    assert len(top.i.payload) == plan.in_width and len(top.o.payload) == plan.out_width
