"""Numbers and names every package agrees on: body size, the network's strides, the
ignore id, the inference backends.

Kept apart from the YAML tables because they are fixed by the network's shape (the heads
emit 17 keypoint channels at stride 4; the DSPF fields sit on four pyramid levels), not
chosen per experiment. tests/test_configs.py checks them against the YAML tables.
"""

from __future__ import annotations

NUM_KEYPOINTS = 17
OUTPUT_STRIDE = 4  # input pixels per cell of the heads' output maps
DSPF_STRIDES = (4, 8, 16, 32)  # pyramid levels that carry a DSPF field
IGNORE = 255  # part id (and mapping entry) meaning "no label here"

# Inference backends (`--backend`), and "auto"'s choice on the CPU per decode engine
# (`decode.engine`), best first among those that import. Measured (docs/PIPELINE.md,
# docs/BENCHMARKS.md; default model, 384 px, f32): the network alone (native engine),
# 1 thread: OpenVINO 62 ms/frame and 1 s to compile, ONNX Runtime 82 ms; with the
# fused decode (graph engine), 2 threads: ONNX Runtime 129 ms/frame and 2.6 s to load,
# OpenVINO 121 ms/frame but 9.5 s to compile, eager torch 1050 ms/frame. On a GPU
# "auto" is TensorRT.
BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
CPU_PREFERENCE = {
    "native": ("openvino", "onnxruntime", "torch"),
    "graph": ("onnxruntime", "openvino", "torch"),
}
