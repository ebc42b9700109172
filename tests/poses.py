"""Hand-made COCO-17 poses shared by the decode and body-statistics tests."""

from __future__ import annotations

import numpy as np

# A person standing 120 px tall (x, y), COCO-17 order.
STANDING = np.array(
    [[50, 20], [53, 17], [47, 17], [56, 19], [44, 19], [62, 40], [38, 40], [66, 62],
     [34, 62], [68, 82], [32, 82], [58, 80], [42, 80], [58, 112], [42, 112],
     [58, 142], [42, 142]],
    np.float32,
)  # fmt: skip
