"""Real Brevitas 0.13 exports with multi-bit parts: reference == qonnx (both export paths), and
RTL (Verilator) == reference."""

from __future__ import annotations

import numpy as np
import pytest
from brevitas_models import brevitas_quant_mlp, export_brevitas
from helpers import run_rtl
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sw import reference
from lowbit.sw.ir import WeightKind
from lowbit.sw.onnx_import import import_model
from oracles import assert_equal_to_oracle, qonnx_run

pytest.importorskip("brevitas")

CASES = {
    # weights, activations: expected weight kind, hidden levels, engine
    ("ternary", "ternary"): (WeightKind.TERNARY, 3, "ternary"),
    ("binary", "uint2"): (WeightKind.BINARY, 4, "addsub"),
    ("int4", "uint4"): (WeightKind.INT, 16, "multiply"),
}
SIZES = (40, 30, 20, 10)


@pytest.fixture(scope="module", params=list(CASES), ids=["-".join(c) for c in CASES])
def case(request):
    return request.param


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_reference_equals_qonnx_on_multibit_brevitas_mlp(tmp_path, case, dynamo):
    module, shape = brevitas_quant_mlp(SIZES, *case, seed=5)
    path = export_brevitas(module, shape, tmp_path / "m.onnx", dynamo)
    net = import_model(path)
    kind, levels, _ = CASES[case]
    assert [layer.weight_kind for layer in net.layers] == [kind] * 3
    assert net.input.out.levels == tuple(range(256))  # 8-bit pixels
    assert all(layer.activation.levels == levels - 1 for layer in net.layers[:-1])
    x = np.random.default_rng(1).random((64, *shape), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    for t in hidden:
        assert len(np.unique(inter[t])) > 1, t
    y_q, tensors_q = qonnx_run(path, x, hidden)
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


def test_rtl_equals_reference_on_multibit_brevitas_mlp(tmp_path, case):
    module, shape = brevitas_quant_mlp(SIZES, *case, seed=6)
    net = import_model(export_brevitas(module, shape, tmp_path / "m.onnx", dynamo=False))
    folding = Folding(tuple(LayerFolding(layer.name, pe, simd) for layer, (pe, simd) in
                            zip(net.layers, [(3, 8), (2, 6), (5, 20)])))
    x = np.random.default_rng(2).random((16, *shape), dtype=np.float32)
    y, _, result, perf = run_rtl(net, folding, x)
    assert {lp.engine for lp in perf.layers} == {CASES[case][2]}
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles
