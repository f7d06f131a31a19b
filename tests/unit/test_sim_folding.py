"""lowbit.sim.folding: folding files read back exactly, every bad value refused naming it."""

from __future__ import annotations

import json

import pytest
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sim.folding import MAX_FOLDING_BYTES, load_folding, parse_folding
from lowbit.sw.synthetic import binary_mlp

import lowbit
from lowbit.errors import FoldingError


@pytest.fixture(scope="module")
def net():
    return lowbit.load(binary_mlp((32, 16, 10), seed=5))


def test_a_folding_round_trips_through_its_json(net, tmp_path):
    folding = Folding((LayerFolding("fc0", 2, 8, 1, None, True),
                       LayerFolding("fc1", 5, 4, lut_weights=True, planes_per_cycle=1)),
                      label_select=True,
                      line_buffers=False)
    path = tmp_path / "f.json"
    path.write_text(json.dumps(folding.to_json()))
    assert load_folding(path, net) == folding


def test_the_older_key_popcount_stages_is_read_as_tree_stages(net):
    data = {"layers": [{"pe": 1, "simd": 4, "popcount_stages": 1}, {"pe": 1, "simd": 1}]}
    assert parse_folding(data, net).layers[0].tree_stages == 1


@pytest.mark.parametrize("data,needle", [
    ([], "expected"),
    ({"layers": [{"pe": 1, "simd": 1}], "speed": 2}, "unknown keys ['speed']"),
    ({"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1}], "label_select": "no"},
     "label_select must be true or false"),
    ({"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1}], "line_buffers": 0},
     "line_buffers must be true or false"),
    ({"layers": [{"pe": 1, "simd": 1, "zero_skip": 1}, {"pe": 1, "simd": 1}]},
     "zero_skip must be true or false"),
    ({"layers": [{"pe": 1, "simd": 1, "lut_weights": "yes"}, {"pe": 1, "simd": 1}]},
     "lut_weights must be true or false"),
    ({"layers": [{"pe": 1.5, "simd": 1}, {"pe": 1, "simd": 1}]}, "whole numbers"),
    ({"layers": [{"pe": True, "simd": 1}, {"pe": 1, "simd": 1}]}, "whole numbers"),
    ({"layers": [{"pe": 10 ** 9, "simd": 1}, {"pe": 1, "simd": 1}]}, "out of range"),
    ({"layers": [{"simd": 1}, {"pe": 1, "simd": 1}]}, "whole numbers"),
    ({"layers": [{"pe": 1, "simd": 1, "name": 3}, {"pe": 1, "simd": 1}]},
     "name must be a string"),
    ({"layers": ["x", {"pe": 1, "simd": 1}]}, "layers[0] must be an object"),
    ({"layers": [{"pe": 1, "simd": 1, "planes_per_cycle": "all"}, {"pe": 1, "simd": 1}]},
     "whole numbers (planes_per_cycle is \"all\")"),
])
def test_bad_values_are_refused_naming_them(net, data, needle):
    with pytest.raises(FoldingError) as info:
        parse_folding(data, net, "f.json")
    assert needle in str(info.value) and info.value.param == "folding"


@pytest.mark.parametrize("data,message", [
    ({"layers": [{"pe": 1, "simd": 1, "planes_per_cycle": 2}, {"pe": 1, "simd": 1}]},
     "layer 'fc0': planes_per_cycle=2 must divide its 1 input bits; try one of [1]"),
    ({"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1, "planes_per_cycle": 1,
                                        "zero_skip": True}]},
     "layer 'fc1': the bit-plane engine has no zero-skip schedule (zero_skip and "
     "planes_per_cycle together)"),
])
def test_a_bit_plane_folding_that_does_not_fit_the_layer_is_refused(net, data, message):
    with pytest.raises(FoldingError) as info:
        parse_folding(data, net, "f.json")
    assert str(info.value) == message


def test_files_that_are_not_foldings_are_refused_before_reading_them_whole(net, tmp_path):
    with pytest.raises(FoldingError, match="no such file"):
        load_folding(tmp_path / "none.json", net)
    with pytest.raises(FoldingError, match="not a regular file"):
        load_folding(tmp_path, net)
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_FOLDING_BYTES + 1))
    with pytest.raises(FoldingError, match="larger than"):
        load_folding(big, net)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(FoldingError, match="not valid JSON"):
        load_folding(bad, net)
