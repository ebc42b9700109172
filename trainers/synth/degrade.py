"""Camera-like degradation of a finished image: exposure, cast, blur, noise, JPEG.

Ground truth is untouched: these only make the pixels harder. Sensor noise is cut from
one precomputed field (fixed seed) at a random offset, because drawing fresh Gaussian
noise for every frame would cost more than rendering the people.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from trainers.synth.rand import Rand

NOISE_TILE = 768


@cache
def _noise() -> np.ndarray:
    rng = np.random.default_rng(54321)
    return np.clip(rng.normal(0, 32, (NOISE_TILE, NOISE_TILE, 3)), -127, 127).astype(
        np.int8
    )


@dataclass
class Degradation:
    """One camera's settings; a video keeps them and only re-draws the noise."""

    gain: float
    bias: float
    cast: tuple[float, float, float]
    blur: float
    motion: int
    noise: float
    jpeg: int

    @classmethod
    def sample(cls, rng: Rand, strength: float = 1.0) -> Degradation:
        r = rng.random(5)
        return cls(
            gain=float(np.exp(rng.normal(0, 0.18 * strength))),
            bias=float(rng.normal(0, 14 * strength)),
            cast=tuple(float(c) for c in np.exp(rng.normal(0, 0.06 * strength, 3))),
            blur=float(rng.uniform(0.4, 1.4)) if r[0] < 0.3 * strength else 0.0,
            motion=int(rng.integers(3, 8)) if r[1] < 0.08 * strength else 0,
            noise=float(rng.uniform(0.05, 0.35)) if r[2] < 0.5 * strength else 0.0,
            jpeg=int(rng.integers(25, 92)) if r[3] < 0.5 * strength else 0,
        )

    def apply(self, image: np.ndarray, rng: Rand) -> np.ndarray:
        """The degraded copy of an RGB uint8 image."""
        out = cv2.convertScaleAbs(image, alpha=self.gain, beta=self.bias)
        out = cv2.multiply(out, np.array(self.cast + (1.0,)), dtype=cv2.CV_8U)
        if self.blur:
            out = cv2.GaussianBlur(out, (0, 0), self.blur)
        if self.motion:
            k = np.zeros((self.motion, self.motion), np.float32)
            k[self.motion // 2] = 1.0 / self.motion
            angle = float(rng.uniform(0, 180))
            rot = cv2.getRotationMatrix2D(((self.motion - 1) / 2,) * 2, angle, 1.0)
            k = cv2.warpAffine(k, rot, k.shape)
            out = cv2.filter2D(out, -1, k / max(k.sum(), 1e-6))
        if self.noise:
            out = _add_noise(out, rng, self.noise)
        if self.jpeg:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg])
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        return out


def _add_noise(image: np.ndarray, rng: Rand, amount: float) -> np.ndarray:
    h, w = image.shape[:2]
    field = _noise()
    if h > NOISE_TILE or w > NOISE_TILE:
        field = np.tile(field, (h // NOISE_TILE + 1, w // NOISE_TILE + 1, 1))
    y0 = int(rng.integers(field.shape[0] - h + 1))
    x0 = int(rng.integers(field.shape[1] - w + 1))
    crop = field[y0 : y0 + h, x0 : x0 + w]
    return cv2.addWeighted(image, 1.0, crop, amount, 0.0, dtype=cv2.CV_8U)
