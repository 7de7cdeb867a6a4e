"""ONNX and LiteRT/TFLite export, int8 quantization, fused Grad-CAM, runtime loader (issue 5)."""
