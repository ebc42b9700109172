"""Frames of a video file as square network inputs, for the tests and bench/ (which
imports this module; nothing here imports bench/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def squeezed_frames(path: Path, indices: list[int], size: int) -> list[np.ndarray]:
    """Frames `indices` of a clip squeezed to size x size: 1 x 3 x size x size floats
    in [0, 1] (no letterbox: every pixel of the frame reaches the network)."""
    import av
    import cv2

    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                rgb = cv2.resize(frame.to_ndarray(format="rgb24"), (size, size))
                out.append((rgb.transpose(2, 0, 1)[None] / 255.0).astype(np.float32))
            if i >= max(indices):
                break
    return out
