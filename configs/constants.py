"""Numbers every package agrees on: body size, the network's strides, the ignore id.

Kept apart from the YAML tables because they are fixed by the network's shape (the heads
emit 17 keypoint channels at stride 4; the DSPF fields sit on four pyramid levels), not
chosen per experiment. tests/test_configs.py checks them against the YAML tables.
"""

from __future__ import annotations

NUM_KEYPOINTS = 17
OUTPUT_STRIDE = 4  # input pixels per cell of the heads' output maps
DSPF_STRIDES = (4, 8, 16, 32)  # pyramid levels that carry a DSPF field
IGNORE = 255  # part id (and mapping entry) meaning "no label here"
