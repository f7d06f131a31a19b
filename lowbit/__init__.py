"""lowbit: low-bit neural networks to verified FPGA hardware."""

__version__ = "0.1.0"
