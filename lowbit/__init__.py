"""lowbit: low-bit neural networks to verified FPGA hardware.

The Python API (:mod:`lowbit.api`) is available from here::

    import lowbit
    design = lowbit.compile(lowbit.load("model.onnx"), target="ice40-up5k")

Names are loaded on first use, so ``import lowbit.errors`` (or any sub-package) stays light.
"""

__version__ = "0.1.0"

_API = ("load", "from_torch", "run", "choose_folding", "compile", "Design", "Simulation",
        "Synthesis", "BoardBuild", "open_board", "train", "Trained", "load_inputs")

__all__ = [*_API, "demo", "Folding", "LayerFolding", "LowbitError", "BUILT_IN_MODEL",
           "__version__"]


def __getattr__(name: str):
    if name in _API:
        from . import api, design

        return getattr(design if name in ("Design", "Simulation", "Synthesis") else api, name)
    if name == "demo":  # the module: lowbit.demo.run()
        import importlib

        return importlib.import_module(".demo", __name__)
    if name in ("Folding", "LayerFolding"):
        from lowbit.hw import plan

        return getattr(plan, name)
    if name == "BUILT_IN_MODEL":  # the demo's model: a BNN 64-128-128-10 on digits
        from importlib.resources import files

        return str(files(__name__) / "data" / "digits_bnn.onnx")
    if name == "LowbitError":
        from .errors import LowbitError

        return LowbitError
    raise AttributeError(f"module 'lowbit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
