"""The top-down peer (MediaPipe pose detector + per-person landmark model) as a client.

MediaPipe lives in its own virtual environment (bench/peer_env.sh) so its pins never
touch ours; this module starts bench/peer_worker.py there as a subprocess and trades
raw frames for per-frame timings and COCO-17 keypoints over its stdin/stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"


class PeerError(RuntimeError):
    """The peer's environment cannot be built or its worker stopped answering."""


@dataclass
class PeerResult:
    """One frame through the peer: times in ms measured inside the worker."""

    ms: float
    detect_ms: float
    detected: int
    keypoints: np.ndarray  # P x 17 x 3 (x, y, visibility), pixels

    @property
    def people(self) -> int:
        return int(self.keypoints.shape[0])


def peer_python(build: bool = True) -> Path:
    """The peer venv's interpreter, building the venv (one pip install) when missing."""
    if PEER_PYTHON.exists():
        return PEER_PYTHON
    if not build:
        raise PeerError(f"{PEER_PYTHON} missing: run bash bench/peer_env.sh")
    print("building .venv-peer (mediapipe 0.10.14), about a minute...", file=sys.stderr)
    done = subprocess.run(
        ["bash", str(BENCH_DIR / "peer_env.sh")], capture_output=True, text=True
    )
    if done.returncode or not PEER_PYTHON.exists():
        raise PeerError("bench/peer_env.sh failed: " + done.stderr.strip()[-300:])
    return PEER_PYTHON


class MediaPipePeer:
    """A running peer worker; use as a context manager so the process always ends."""

    def __init__(self, build: bool = True) -> None:
        self.proc = subprocess.Popen(
            [str(peer_python(build)), str(BENCH_DIR / "peer_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if not self._reply().get("ready"):
            raise PeerError("peer worker did not start")

    def _reply(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(b"{"):
                return json.loads(line)
        raise PeerError(f"peer worker exited (code {self.proc.poll()})")

    def process(self, rgb: np.ndarray, boxes: np.ndarray | None = None) -> PeerResult:
        """One RGB frame; boxes (N x 4 x0, y0, x1, y1) stand in for the detector."""
        rgb = np.ascontiguousarray(rgb, np.uint8)
        boxes = np.zeros((0, 4), np.float32) if boxes is None else boxes
        boxes = np.ascontiguousarray(boxes, np.float32).reshape(-1, 4)
        header = np.array([rgb.shape[0], rgb.shape[1], len(boxes), 0], "<u4")
        try:
            self.proc.stdin.write(header.tobytes() + boxes.tobytes() + rgb.tobytes())
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise PeerError("peer worker exited") from exc
        reply = self._reply()
        keypoints = np.asarray(reply["keypoints"], np.float32).reshape(-1, 17, 3)
        return PeerResult(reply["ms"], reply["detect_ms"], reply["detected"], keypoints)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> MediaPipePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
