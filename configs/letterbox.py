"""The map between a frame and the square network input, one for every package.

The pipeline's preprocess stage, training augmentation and evaluation all letterbox the
same way (fit the long side, pad right and bottom with zeros), so the network sees in a
stream what it was trained and scored on, and a point maps back by dividing by the
per-axis scale. Coordinates follow configs.records: continuous pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Frame (width x height) resized by (sx, sy) into the top-left of size x size.

    Fit the long side, pad right and bottom with zeros: each axis is scaled by
    round(side * size / max(H, W)) / side, and a point maps back by dividing by it.
    """

    width: int
    height: int
    size: int
    new_w: int
    new_h: int

    @classmethod
    def fit(cls, width: int, height: int, size: int) -> Letterbox:
        factor = size / max(width, height)
        return cls(
            width,
            height,
            size,
            max(1, round(width * factor)),
            max(1, round(height * factor)),
        )

    @property
    def sx(self) -> float:
        return self.new_w / self.width

    @property
    def sy(self) -> float:
        return self.new_h / self.height

    @property
    def shrinks(self) -> bool:
        """True when the frame is made smaller (then resizing must anti-alias)."""
        return self.size < max(self.width, self.height)

    def to_frame(self, xy: Any) -> Any:
        """Input-pixel coordinates (..., 2) -> frame pixels (numpy or cupy)."""
        out = xy.copy()
        out[..., 0] = xy[..., 0] / self.sx
        out[..., 1] = xy[..., 1] / self.sy
        return out

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Frame pixels (..., 2 or more) -> input pixels; other columns kept."""
        out = np.asarray(xy, np.float32).copy()
        out[..., 0] *= self.sx
        out[..., 1] *= self.sy
        return out

    def paste(self, m: np.ndarray, interpolation: int | None = None) -> np.ndarray:
        """H x W (x C) array resized into the top-left of a zero size x size array.

        The default interpolation is the image one (area when shrinking, bilinear
        otherwise); label maps pass cv2.INTER_NEAREST_EXACT."""
        if interpolation is None:
            interpolation = cv2.INTER_AREA if self.shrinks else cv2.INTER_LINEAR
        out = np.zeros((self.size, self.size, *m.shape[2:]), m.dtype)
        out[: self.new_h, : self.new_w] = cv2.resize(
            m, (self.new_w, self.new_h), interpolation=interpolation
        )
        return out

    def padding(self) -> np.ndarray:
        """size x size bool, True on the pad (outside the fitted frame)."""
        pad = np.ones((self.size, self.size), bool)
        pad[: self.new_h, : self.new_w] = False
        return pad

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> Letterbox:
        return cls(**d)


def letterbox_image(image: np.ndarray, box: Letterbox) -> np.ndarray:
    """H x W x 3 uint8 -> 3 x S x S float32 in [0, 1] (CPU, OpenCV)."""
    chw = np.ascontiguousarray(box.paste(image).transpose(2, 0, 1), np.float32)
    return chw * np.float32(1 / 255)
