"""Stage 3b (native decode engine): the network's activated maps -> the five decode
outputs, by `nets.native` on a worker of its own.

With `decode.engine` native (the CPU default), the inference stage runs the network
alone on one core and puts its maps in the message; this stage decodes them with the
stages after it on the other core, so the next frame's network runs while this one is
decoded (docs/MATCHING.md, "Two engines"). The outputs' maps are on the cell grid;
postprocess resamples them straight to the frame.
"""

from __future__ import annotations

from typing import Any

from pipeline.engine.messages import Message, ModelPeople


class Decode:
    """`msg.maps` (parts, heatmap, offsets, limbs, hough, dspf) -> `msg.model`, the
    five decode outputs (model space)."""

    name = "decode"
    bottleneck = False
    info: dict[str, Any] | None = None

    def __init__(self, model_cfg: dict[str, Any]) -> None:
        self.model_cfg = model_cfg
        self.decoder: Any = None

    def open(self) -> None:
        from nets.native import NativeDecoder

        self.decoder = NativeDecoder(self.model_cfg)
        self.decoder.warm_up()  # numba compiles (or loads its cache) before frame 1

    def process(self, msg: Message) -> Message:
        out = self.decoder({key: maps[None] for key, maps in msg.maps.items()})
        msg.maps, msg.model = {}, ModelPeople.from_outputs(out)
        return msg

    def close(self) -> dict[str, Any] | None:
        return None
