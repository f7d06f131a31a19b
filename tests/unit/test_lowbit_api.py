"""lowbit.api: the README's Python example as written, the design as an Amaranth component
inside a user's own component, and a design shown in a notebook."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from streams import stream_through

import lowbit

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no Python example"
    return blocks[0]


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_python(), "README.md", "exec"), namespace)
    design = namespace["design"]
    assert isinstance(design, lowbit.Design)
    assert (tmp_path / "out" / "lowbit_top.v").is_file()


class Wrapper(wiring.Component):
    """A user's design: the network behind a register stage of their own."""

    def __init__(self, design):
        self.network = design.component()
        sig = self.network.signature.members
        super().__init__({"i": In(stream.Signature(sig["i"].signature.members["payload"].shape)),
                          "o": Out(stream.Signature(sig["o"].signature.members["payload"]
                                                    .shape))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = self.network
        wiring.connect(m, wiring.flipped(self.i), self.network.i)
        wiring.connect(m, self.network.o, wiring.flipped(self.o))
        return m


def test_the_component_embeds_in_a_users_design_and_computes_the_model():
    net = lowbit.load(lowbit.BUILT_IN_MODEL)
    design = lowbit.compile(net, lut_budget=3000)
    x = np.random.default_rng(0).random((5, *net.input_shape), dtype=np.float32)
    beats = [int.from_bytes(b.tobytes(), "little") for f in design.input_beats(x) for b in f]
    outs, _, _ = stream_through(Wrapper(design), beats, len(x) * design.perf.out_beats,
                                stall_in=0.3, stall_out=0.3)
    nbytes = -(-design.perf.out_width // 8)
    y, _ = design.decode(np.array([list(o.to_bytes(nbytes, "little")) for o in outs],
                                  dtype=np.uint8))
    np.testing.assert_array_equal(y, lowbit.run(net, x))


def test_a_design_shows_its_layer_table_in_a_notebook():
    design = lowbit.compile(lowbit.BUILT_IN_MODEL)
    page = design._repr_html_()
    assert "<table>" in page and all(f"<td>{layer.name}</td>" in page
                                     for layer in design.net.layers)
    assert f"II {design.perf.ii_cycles:,} cycles" in page and "lowbit.Design" in repr(design)


def test_compile_takes_a_folding_as_a_dict_or_a_file(tmp_path):
    design = lowbit.compile(lowbit.BUILT_IN_MODEL, lut_budget=2000)
    data = design.folding.to_json()
    assert lowbit.compile(design.net, data).folding == design.folding
    design.write(tmp_path / "o")
    again = lowbit.compile(design.net, tmp_path / "o" / "folding.json")
    assert again.folding == design.folding and again.verilog == design.verilog


@pytest.mark.parametrize("kwargs,needle", [
    ({"clock_mhz": 0}, "clock_mhz 0: must be a finite number greater than 0"),
    ({"lut_budget": -5}, "lut_budget -5"),
    ({"fps": float("nan")}, "fps nan"),
    ({"target": "ice40-lp1k"}, "target ice40-lp1k: unknown"),
    ({"family": "virtex"}, "family virtex"),
])
def test_bad_arguments_are_one_line_errors_naming_the_parameter(kwargs, needle):
    with pytest.raises(lowbit.LowbitError) as info:
        lowbit.compile(lowbit.BUILT_IN_MODEL, **kwargs)
    assert needle in str(info.value)
