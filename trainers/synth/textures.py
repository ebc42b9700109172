"""Texture bank and the one vectorised pass that paints every person pixel.

Shapes are drawn as ids (part, person, material, shade) into one 4-channel canvas; the
colours come afterwards from per-material tables indexed per pixel, so the cost of
painting does not grow with the number of people or shapes. Textures are tileable
512 x 512 fields built once per process from a fixed seed (deterministic everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

TILE = 512
MATERIALS = 8  # per person: see looks.MAT_*
MAX_IDS = 256  # canvas person ids are uint8; 255 = background clutter

PLAIN, STRIPES, CHECKS, BLOTCH, GRAIN, DOTS, PLAID = range(7)


def _wave(kx: int, ky: int) -> np.ndarray:
    y, x = np.mgrid[0:TILE, 0:TILE].astype(np.float32)
    return np.sin(2 * np.pi * (kx * x + ky * y) / TILE)


def _square(w: np.ndarray, sharp: float = 3.0) -> np.ndarray:
    return np.clip(0.5 + sharp * w, 0, 1)


def _lowpass_noise(rng: np.random.Generator, cutoff: float) -> np.ndarray:
    """Periodic noise, feature size ~ TILE * cutoff (FFT filtering keeps it tiling)."""
    spec = np.fft.fft2(rng.normal(size=(TILE, TILE)))
    f = np.fft.fftfreq(TILE)
    rad = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    out = np.real(np.fft.ifft2(spec * np.exp(-((rad * TILE * cutoff) ** 2))))
    out = (out - out.mean()) / (out.std() + 1e-9)
    return np.clip(0.5 + 0.28 * out, 0, 1).astype(np.float32)


@dataclass(frozen=True)
class Bank:
    """fields: K x TILE x TILE uint8 (0..255 = weight of a material's colour B);
    kind: K texture kinds; period: K feature sizes in tile pixels; by_kind: field ids
    of each kind."""

    fields: np.ndarray
    kind: np.ndarray
    period: np.ndarray
    by_kind: dict[int, tuple[int, ...]]

    def of_kind(self, kind: int) -> tuple[int, ...]:
        """Field ids of one texture kind."""
        return self.by_kind[kind]


@cache
def bank() -> Bank:
    """The process-wide texture bank (fixed seed, ~0.3 s once)."""
    rng = np.random.default_rng(12345)
    fields, kinds, periods = [np.zeros((TILE, TILE), np.float32)], [PLAIN], [16.0]
    for k, (kx, ky) in enumerate(
        [(32, 0), (0, 32), (24, 24), (-24, 24), (0, 48), (48, 0), (16, 48), (0, 20)]
    ):
        fields.append(_square(_wave(kx, ky), 1.5 + k % 3))
        kinds.append(STRIPES)
        periods.append(TILE / np.hypot(kx, ky))
    for k in (24, 40):
        fields.append(_square(_wave(k, 0) * _wave(0, k), 4))
        kinds.append(CHECKS)
        periods.append(TILE / k)
    for cutoff in (0.04, 0.02, 0.01):
        fields.append(_lowpass_noise(rng, cutoff))
        kinds.append(BLOTCH)
        periods.append(TILE * cutoff * 2)
    for cutoff in (0.004, 0.002):
        fields.append(_lowpass_noise(rng, cutoff))
        kinds.append(GRAIN)
        periods.append(8.0)
    for k in (32, 20):
        w = _wave(k, 0) * _wave(0, k)
        fields.append(np.clip((w - 0.55) * 4, 0, 1))
        kinds.append(DOTS)
        periods.append(TILE / k)
    for k in (24, 16):
        w = 0.5 * (_square(_wave(k, 0), 1.2) + _square(_wave(0, k), 1.2))
        fields.append(np.clip(w + 0.3 * _square(_wave(4 * k, 0), 2), 0, 1))
        kinds.append(PLAID)
        periods.append(TILE / k)
    stack = (np.stack(fields) * 255).round().astype(np.uint8)
    by_kind = {k: tuple(i for i, q in enumerate(kinds) if q == k) for k in set(kinds)}
    return Bank(stack, np.array(kinds), np.array(periods, np.float32), by_kind)


class MaterialTable:
    """Per-scene colour tables for canvas ids (person id * MATERIALS + material).

    A material is colour A blended towards colour B by a texture field, sampled in the
    coordinates of the person it belongs to (anchored at the person, scaled with
    distance) so textures move and shrink with their wearer. Stored as what paint()
    needs per pixel: a, b - a, tile px per image px, tile shift, field offset.
    """

    def __init__(self) -> None:
        n = MAX_IDS * MATERIALS
        self.a = np.zeros((n, 3), np.float32)
        self.d = np.zeros((n, 3), np.float32)
        self.scale = np.ones(n, np.float32)
        self.shift = np.zeros((n, 2), np.float32)
        self.base = np.zeros(n, np.int64)

    def set(
        self,
        pid: int,
        mat: int,
        a: np.ndarray,
        b: np.ndarray,
        field: int,
        scale: float,
        anchor: tuple[float, float],
        offset: tuple[int, int],
    ) -> None:
        """Material `mat` of canvas person `pid`; scale = tile px per image px."""
        g = pid * MATERIALS + mat
        self.a[g], self.d[g] = a, b - a
        self.scale[g] = scale
        self.shift[g] = (offset[0] - anchor[0] * scale, offset[1] - anchor[1] * scale)
        self.base[g] = field * TILE * TILE


def paint(
    image: np.ndarray,
    canvas: np.ndarray,
    table: MaterialTable,
    light: tuple[float, float, float],
    blur: float,
) -> None:
    """Paint every canvas pixel with a person id (> 0) into `image` (in place).

    light = (base, dx, dy): brightness base + dx * x/W + dy * y/H, a global light ramp.
    blur: sigma in px of the shade channel (soft roundness and contact shadows); the
    shade channel's 200 is neutral brightness.
    """
    h, w = canvas.shape[:2]
    code = canvas.view("<u4").reshape(-1)  # bytes: part, person, material, shade
    idx = np.flatnonzero(code & 0xFF00)
    if not len(idx):
        return
    sel = code[idx]
    g = ((sel >> 8) & 0xFF).astype(np.int64) * MATERIALS + ((sel >> 16) & 0xFF)
    ys, xs = np.divmod(idx, w)
    sc = table.scale[g]
    u = (xs * sc + table.shift[g, 0]).astype(np.int64) & (TILE - 1)
    v = (ys * sc + table.shift[g, 1]).astype(np.int64) & (TILE - 1)
    t = bank().fields.reshape(-1)[table.base[g] + v * TILE + u] * np.float32(1 / 255)
    col = table.a[g] + table.d[g] * t[:, None]
    shade = np.ascontiguousarray(canvas[..., 3])
    if blur > 0:
        shade = cv2.GaussianBlur(shade, (0, 0), blur)
    base, dx, dy = light
    light_at = base + (dx / w) * xs + (dy / h) * ys
    k = shade.reshape(-1)[idx] * (light_at * (1 / 200)).astype(np.float32)
    col *= k[:, None]
    image.reshape(-1, 3)[idx] = np.clip(col, 0, 255).astype(np.uint8)
