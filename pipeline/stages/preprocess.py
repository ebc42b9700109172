"""Stage 2: frame -> the network's square input, keeping the map back to the frame.

The letterbox is configs.letterbox.Letterbox, the one augmentation and evaluation use:
fit the long side, pad right and bottom with black, so the network sees what it was
trained on and a point maps back by dividing by the per-axis scale. Normalisation to the
network's statistics happens inside the network; here pixels only become [0, 1] floats.

On the CPU this stage does the work with OpenCV. When torch runs the network on a GPU
(`on_device=True`), the frame is uploaded as uint8 and letterboxed by `letterbox_tensor`
on the device inside the inference stage, so this stage only attaches the transform
(no float frame crosses a socket).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from configs.letterbox import Letterbox, letterbox_image
from pipeline.engine.messages import Message


def letterbox_tensor(image: Any, box: Letterbox, device: str) -> Any:
    """The same with torch on `device`: uint8 H x W x 3 (numpy) -> 1 x 3 x S x S."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(image)).to(device, non_blocking=True)
    x = x.permute(2, 0, 1)[None].float().mul_(1 / 255)
    x = F.interpolate(
        x,
        size=(box.new_h, box.new_w),
        mode="bilinear",
        align_corners=False,
        antialias=box.shrinks,
    )
    return F.pad(x, (0, box.size - box.new_w, 0, box.size - box.new_h))


class Preprocess:
    """frame message (image) -> + `input` 3 x S x S float32 and header `transform`."""

    name = "preprocess"
    bottleneck = False
    info: dict[str, Any] | None = None

    def __init__(self, size: int, on_device: bool = False) -> None:
        self.size = size
        self.on_device = on_device

    def open(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # the network has the other core (docs/PIPELINE.md)

    def process(self, msg: Message) -> Message:
        image = msg.pixels("image")
        box = Letterbox.fit(image.shape[1], image.shape[0], self.size)
        msg.header["transform"] = box.as_dict()
        if not self.on_device:
            msg.input = letterbox_image(image, box)
        return msg

    def close(self) -> dict[str, Any] | None:
        return None
