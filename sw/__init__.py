"""The network in software: IR, ONNX/QONNX import, the bit-exact reference."""
