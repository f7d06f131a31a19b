"""The board top (network behind a UART) in Amaranth's simulator, driven through a UART model by
the host link's own encoding, against the reference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from amaranth.sim import Simulator
from lowbit.boards.link import decode_reply, frame_bytes, reply_bytes
from lowbit.boards.top import UartNetwork
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sim.perf import analyze
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model
from lowbit.sw.synthetic import binary_mlp, quant_mlp
from streams import uart_receive, uart_send

DIVISOR = 5


def _run_link(net, folding, x, gap=0):
    perf = analyze(net, folding)
    dut = UartNetwork(perf.plan, "ice40", DIVISOR)
    frames = frame_bytes(net, perf, x)
    want = reply_bytes(perf) * len(x)
    got = []

    async def host(ctx):
        await uart_send(ctx, dut.rx, frames.tobytes(), DIVISOR, gap)

    async def listener(ctx):
        got.append(await uart_receive(ctx, dut.tx, want, DIVISOR, limit=200_000))
        assert ctx.get(dut.overruns) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host, background=True)
    sim.add_testbench(listener)
    sim.run()
    return decode_reply(net, perf, got[0], len(x))


@pytest.mark.parametrize("label_select", [False, True])
def test_board_top_over_uart_equals_reference(label_select):
    net = import_model(binary_mlp((16, 8, 4), seed=2))
    folding = Folding((LayerFolding("fc0", 4, 8), LayerFolding("fc1", 4, 2)), label_select)
    x = np.random.default_rng(0).random((6, 16), dtype=np.float32)
    y, ints = _run_link(net, folding, x, gap=3)
    if label_select:
        np.testing.assert_array_equal(ints, reference.run(net, x).argmax(1))
    else:
        np.testing.assert_array_equal(y, reference.run(net, x))


def test_board_top_with_multibit_layers_and_wide_beats():
    net = import_model(quant_mlp((12, 6, 3), weights="ternary", act_bits=2, in_bits=4, seed=1))
    folding = Folding((LayerFolding("fc0", 3, 6), LayerFolding("fc1", 3, 3)))
    x = np.random.default_rng(1).random((4, 12), dtype=np.float32)
    y, _ = _run_link(net, folding, x)
    np.testing.assert_array_equal(y, reference.run(net, x))


def test_lowbit_board_run_talks_to_the_simulated_board_through_a_serial_url(tmp_path):
    """The host tool, as a user runs it, against the board top in simulation: pyserial's
    socket:// port reaches a bridge that drives the UART model."""
    import json
    import socket
    import subprocess
    import sys
    import threading

    import onnx

    model = binary_mlp((16, 8, 4), seed=5)
    onnx.save(model, tmp_path / "m.onnx")
    net = import_model(tmp_path / "m.onnx")
    folding = Folding((LayerFolding("fc0", 2, 8), LayerFolding("fc1", 4, 4)))
    build = tmp_path / "build"
    build.mkdir()
    (build / "folding.json").write_text(json.dumps(folding.to_json()))
    (build / "build.json").write_text(json.dumps({"board": "icebreaker", "baud": 115200}))
    x = np.random.default_rng(3).random((5, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)

    perf = analyze(net, folding)
    dut = UartNetwork(perf.plan, "ice40", DIVISOR)
    per_frame = frame_bytes(net, perf, x[:1]).shape[1]
    want = reply_bytes(perf)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()

        async def bridge(ctx):
            while True:
                frame = b""
                while len(frame) < per_frame:
                    chunk = conn.recv(per_frame - len(frame))
                    if not chunk:
                        return
                    frame += chunk
                await uart_send(ctx, dut.rx, frame, DIVISOR)
                conn.sendall(await uart_receive(ctx, dut.tx, want, DIVISOR, limit=100_000))

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bridge)
        sim.run()
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    proc = subprocess.run(
        [sys.executable, "-m", "lowbit", "board", "run", str(tmp_path / "m.onnx"), "--build",
         str(build), "--port", f"socket://127.0.0.1:{port}", "--inputs", str(tmp_path / "x.npy"),
         "--out", str(tmp_path / "y.npy"), "--timeout", "30"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), reference.run(net, x))


def test_board_run_without_a_build_folder_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    import onnx

    onnx.save(binary_mlp((16, 8, 4)), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.zeros((1, 16), np.float32))
    proc = subprocess.run(
        [sys.executable, "-m", "lowbit", "board", "run", str(tmp_path / "m.onnx"), "--build",
         str(tmp_path / "nope"), "--port", "/dev/null", "--inputs", str(tmp_path / "x.npy"),
         "--out", str(tmp_path / "y.npy")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "run lowbit build first" in proc.stderr


@pytest.mark.slow
def test_lowbit_build_writes_an_icebreaker_bitstream(tmp_path):
    import json
    import subprocess
    import sys

    import onnx

    onnx.save(binary_mlp((64, 32, 10), seed=4), tmp_path / "m.onnx")
    proc = subprocess.run(
        [sys.executable, "-m", "lowbit", "build", str(tmp_path / "m.onnx"), "--board",
         "icebreaker", "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    bitstream = tmp_path / "out" / "lowbit.bin"
    assert bitstream.stat().st_size > 100_000  # an UP5K image is 104,090 bytes
    info = json.loads((tmp_path / "out" / "build.json").read_text())
    assert info["fmax_mhz"] >= 12.0
    assert info["utilization"]["ICESTORM_LC"]["used"] > 0


def test_board_drops_an_incomplete_frame_after_silence_and_resynchronizes():
    from lowbit.boards.top import RESYNC_BYTES

    net = import_model(binary_mlp((16, 8, 4), seed=2))
    folding = Folding((LayerFolding("fc0", 4, 8), LayerFolding("fc1", 4, 2)))
    perf = analyze(net, folding)
    dut = UartNetwork(perf.plan, "ice40", DIVISOR)
    x = np.random.default_rng(4).random((3, 16), dtype=np.float32)
    frames = frame_bytes(net, perf, x)
    want = reply_bytes(perf) * len(x)
    got = []

    async def host(ctx):
        await uart_send(ctx, dut.rx, frames[0, :1].tobytes(), DIVISOR)  # a frame cut short
        await ctx.tick().repeat((RESYNC_BYTES + 2) * 10 * DIVISOR)  # silence
        await uart_send(ctx, dut.rx, frames.tobytes(), DIVISOR)

    async def listener(ctx):
        got.append(await uart_receive(ctx, dut.tx, want, DIVISOR, limit=300_000))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host, background=True)
    sim.add_testbench(listener)
    sim.run()
    y, _ = decode_reply(net, perf, got[0], len(x))
    np.testing.assert_array_equal(y, reference.run(net, x))


def test_board_top_with_a_convolutional_network(tmp_path):
    from brevitas_models import brevitas_binary_cnn, export_brevitas

    module, shape = brevitas_binary_cnn((2, 6, 6), [(4, 3, 1, 2)], [5], seed=3)
    net = import_model(export_brevitas(module, shape, tmp_path / "cnn.onnx", dynamo=False))
    folding = Folding((LayerFolding(net.layers[0].name, 2, 6),
                       LayerFolding(net.layers[1].name, 5, 4)))
    x = np.random.default_rng(2).random((3, *shape), dtype=np.float32)
    y, _ = _run_link(net, folding, x)
    np.testing.assert_array_equal(y, reference.run(net, x))


@pytest.mark.parametrize("baud", ["0", "-5", "10000000"])
def test_build_refuses_a_baud_rate_the_board_clock_cannot_make(tmp_path, baud):
    model = tmp_path / "m.onnx"
    model.write_bytes(binary_mlp((16, 8, 4), seed=2).SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "lowbit", "build", str(model), "--board",
                           "icebreaker", "-o", str(tmp_path / "out"), "--baud", baud],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"--baud {baud}" in proc.stderr and not (tmp_path / "out").exists()
