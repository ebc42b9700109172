"""Loopback live-stream fixtures shared by the live tests and bench/streaming.py:
frame-index stamps that survive H.264 (so whatever leaves the pipeline can be matched
to its send time) and a free local endpoint per protocol.

bench/ imports this module (bench runs from a checkout); nothing here imports bench/.
"""

from __future__ import annotations

import socket

import numpy as np

from pipeline.engine.transport import free_port

STAMP_BITS = 16
STAMP_BLOCK = 16  # pixels per bit; survives H.264 at default quality
PROTOCOLS = ("rtmp", "rtsp", "udp")


def stamp(image: np.ndarray, index: int) -> np.ndarray:
    """A copy of image with `index` written as blocks along its top-left edge."""
    out = image.copy()
    for bit in range(STAMP_BITS):
        x = bit * STAMP_BLOCK
        out[:STAMP_BLOCK, x : x + STAMP_BLOCK] = 255 if (index >> bit) & 1 else 0
    return out


def read_stamp(image: np.ndarray) -> int:
    """The index `stamp` wrote, read from the centre of each block."""
    q, index = STAMP_BLOCK // 4, 0
    for bit in range(STAMP_BITS):
        x = bit * STAMP_BLOCK
        block = image[q : STAMP_BLOCK - q, x + q : x + STAMP_BLOCK - q]
        index |= int(block.mean() > 127) << bit
    return index


def endpoint(protocol: str) -> tuple[str, str, dict[str, str]]:
    """(URL on a free port, publisher muxer, publisher options)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}' (use {', '.join(PROTOCOLS)})")
    if protocol == "udp":
        url = f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        return url, "mpegts", {"flush_packets": "1"}
    url = f"{protocol}://127.0.0.1:{free_port()}/live/bench"
    if protocol == "rtmp":
        return url, "flv", {}
    return url, "rtsp", {"rtsp_transport": "tcp"}
