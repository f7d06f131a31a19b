"""Xilinx's trained TFC networks from ../shared (old onnx.brevitas dialect, opset 9)."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model
from oracles import assert_equal_to_oracle, qonnx_run


def test_tfc_1w1a_reference_equals_qonnx_on_1000_mnist_images(tfc_model, mnist_test):
    path = tfc_model("TFC_1W1A")
    images, labels = mnist_test
    x = images[:1000]
    net = import_model(path)
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    y_q, tensors_q = qonnx_run(path, x, hidden)
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


def test_tfc_1w1a_accuracy_on_all_10000_images(tfc_model, mnist_test):
    """qonnx's executor gives 92.96 % on this set; the reference must give the same top-1."""
    net = import_model(tfc_model("TFC_1W1A"))
    images, labels = mnist_test
    correct = int((reference.run(net, images).argmax(1) == labels).sum())
    assert correct == 9296


@pytest.mark.parametrize("name", ["TFC_1W2A", "TFC_2W2A"])
def test_multibit_tfc_reference_equals_qonnx_on_1000_mnist_images(tfc_model, mnist_test, name):
    """2-bit narrow activations ({-1, 0, 1}: two thresholds per channel), binary (1W2A) or
    ternary (2W2A) weights, 2-bit input quantizer."""
    path = tfc_model(name)
    images, _ = mnist_test
    x = images[:1000]
    net = import_model(path)
    assert all(layer.activation.levels == 2 for layer in net.layers[:-1])
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    y_q, tensors_q = qonnx_run(path, x, hidden)
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["TFC_1W2A", "TFC_2W2A"])
def test_multibit_tfc_rtl_equals_reference_on_200_mnist_images(tfc_model, mnist_test, name):
    """Binary (add/subtract) or ternary (zero-skip) weights on 2-bit activations (and the
    bit-plane engine where ``auto`` picks it), in Verilator; measured cycles ==
    lowbit.sim.perf."""
    from helpers import run_rtl
    from lowbit.sim.auto import auto_folding

    net = import_model(tfc_model(name))
    images, _ = mnist_test
    x = images[:200]
    folding = auto_folding(net)  # 5,000 LUT4, or fully folded when that is larger
    y, _, result, perf = run_rtl(net, folding, x)
    main = "addsub" if name == "TFC_1W2A" else "ternary"
    # auto puts a layer on the bit-plane engine where the estimate finds it cheaper
    assert {main} <= {lp.engine for lp in perf.layers} <= {main, "bitplane"}
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles


@pytest.mark.slow
@pytest.mark.parametrize("planes", [2, 1], ids=["all-planes", "bit-serial"])
def test_tfc_2w2a_runs_on_the_bit_plane_engine_as_on_its_own(tfc_model, mnist_test, planes):
    """Every layer of TFC_2W2A (ternary weights on 2-bit inputs) on the bit-plane engine, at
    both settings of its two input planes: outputs == reference on 100 MNIST images, and the
    cycles the model states (twice the dense schedule's when bit-serial)."""
    from helpers import run_rtl
    from lowbit.hw.plan import Folding, LayerFolding

    net = import_model(tfc_model("TFC_2W2A"))
    x = mnist_test[0][:100]
    pe_simd = [(4, 49), (4, 16), (4, 16), (2, 16)]
    folding = Folding(tuple(LayerFolding(layer.name, pe, simd, planes_per_cycle=planes)
                            for layer, (pe, simd) in zip(net.layers, pe_simd)))
    y, _, result, perf = run_rtl(net, folding, x)
    assert {lp.engine for lp in perf.layers} == {"bitplane"}
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles
    first = perf.layers[0]
    assert first.compute_cycles == first.neuron_fold * first.synapse_fold * (2 // planes)
