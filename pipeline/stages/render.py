"""Stage 6: draw what the pipeline knows onto the frame (array `rendered`).

Modes:
* ``overlay``: part colours blended over the frame, tinted per person so neighbours
  stay apart, each person's outline, skeleton, track id, optional HUD.
* ``masks``: the coloured part masks alone, RGBA with alpha = person pixels (for
  compositing the parsing over something else).
* ``regions``: per-person try-on regions (head, upper body, hands, lower body, feet by
  default: `pipeline.render.regions` in the config), each person in its own colour
  with a shade per region, RGBA.

Part colours come from the taxonomy in configs/parts.yaml, person colours and the
skeleton from configs/drawing.py, so a new taxonomy needs no code here. Colours follow
track ids, so a person keeps their colour for as long as they keep their id.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from configs import taxonomy
from configs.drawing import (
    colour_slots,
    draw_skeleton,
    line_thickness,
    person_colours,
)
from pipeline.engine.messages import Message
from pipeline.options import MODES


def part_lut(tax: str, tint: float) -> np.ndarray:
    """(PALETTE + 1) x C x 3 uint8: part colour mixed with the person's colour."""
    parts = np.asarray(taxonomy(tax)["colors"], np.float32)
    people = person_colours().astype(np.float32)
    lut = (1 - tint) * parts[None] + tint * people[:, None]
    lut[:, 0] = people  # person pixels without a part label
    return np.clip(lut, 0, 255).astype(np.uint8)


def region_lut(tax: str, regions: dict[str, list[str]]) -> np.ndarray:
    """(PALETTE + 1) x C x 3 uint8: a person's colour, one shade per try-on region."""
    classes = taxonomy(tax)["classes"]
    region_of = np.zeros(len(classes), np.int64)
    for r, names in enumerate(regions.values()):
        for name in names:
            if name in classes:
                region_of[classes.index(name)] = r + 1
    shades = np.linspace(1.0, 0.35, max(len(regions), 1) + 1)
    people = person_colours().astype(np.float32)
    return (people[:, None] * shades[region_of][None, :, None]).astype(np.uint8)


class Render:
    """tracked people + frame -> `rendered` (H x W x 3 overlay, or H x W x 4 RGBA).

    Only people scoring at least `display_threshold` are drawn, and the HUD counts
    exactly those; the header's `people_shown` hands the same count to the run's
    summary. The decode keeps weaker people (its own `person_threshold`) for the
    tracker and the results feed, which carry every person with its score.
    """

    name = "render"
    bottleneck = False
    info: dict[str, Any] | None = None

    def __init__(
        self,
        taxonomy: str = "fine",
        mode: str = "overlay",
        hud: bool = True,
        alpha: float = 0.55,
        tint: float = 0.35,
        keypoint_threshold: float = 0.1,
        regions: dict[str, list[str]] | None = None,
        display_threshold: float = 0.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown render mode '{mode}' (use {', '.join(MODES)})")
        self.taxonomy, self.mode, self.hud = taxonomy, mode, hud
        self.alpha, self.tint = alpha, tint
        self.keypoint_threshold = keypoint_threshold
        self.display_threshold = display_threshold
        self.regions = regions or {}
        self._fps = 0.0
        self._last: float | None = None

    def open(self) -> None:
        lut = region_lut if self.mode == "regions" else part_lut
        arg = self.regions if self.mode == "regions" else self.tint
        self.lut = lut(self.taxonomy, arg)
        self.people = person_colours()

    def process(self, msg: Message) -> Message:
        p, image = msg.people, msg.pixels("image")
        parts = p.parts
        shown = np.asarray(p.scores) >= self.display_threshold
        # people below the display threshold become background for the drawing
        instances = np.where(
            np.concatenate([[False], shown])[p.instances], p.instances, 0
        )
        ids = p.ids()
        slot = colour_slots(ids)
        slot_of_label = np.concatenate([colour_slots([-1]), slot])
        # Colour only the person pixels (usually a small part of the frame).
        fg = instances > 0
        where = np.flatnonzero(fg)
        person = slot_of_label[instances.ravel()[where]]
        n_parts = self.lut.shape[1]
        part = np.minimum(parts.ravel()[where], n_parts - 1)
        colour = self.lut.reshape(-1, 3)[person * n_parts + part]
        if self.mode == "overlay":
            out = image.copy()
            flat = out.reshape(-1, 3)
            flat[where] = (
                flat[where] * (1 - self.alpha) + colour * self.alpha + 0.5
            ).astype(np.uint8)
            edge = np.flatnonzero(_edges(instances, fg, line_thickness(image.shape)))
            flat[edge] = self.people[slot_of_label[instances.ravel()[edge]]]
            self._skeletons(out, p.keypoints[shown], slot[shown])
            self._labels(out, p.boxes[shown], ids[shown], slot[shown])
        else:
            out = np.zeros((*instances.shape, 4), np.uint8)
            flat = out.reshape(-1, 4)
            flat[where, :3] = colour
            flat[where, 3] = 255
        msg.header["people_shown"] = int(shown.sum())
        msg.header["display_threshold"] = self.display_threshold
        if self.hud:
            self._draw_hud(out, msg, int(shown.sum()))
        msg.rendered = out
        return msg

    def _skeletons(
        self, out: np.ndarray, keypoints: np.ndarray, slot: np.ndarray
    ) -> None:
        t = line_thickness(out.shape)
        for kps, s in zip(keypoints, slot, strict=True):
            colour = tuple(int(c) for c in self.people[s])
            draw_skeleton(out, kps, colour, kps[:, 2] > self.keypoint_threshold, t)

    def _labels(
        self, out: np.ndarray, boxes: np.ndarray, ids: np.ndarray, slot: np.ndarray
    ) -> None:
        scale = max(0.4, out.shape[0] / 720)
        for box, tid, s in zip(boxes, ids, slot, strict=True):
            if tid < 0:
                continue
            text = f"#{tid}"
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            x = int(np.clip(box[0], 0, out.shape[1] - tw - 4))
            y = int(np.clip(box[1] - 4, th + base + 2, out.shape[0] - 2))
            colour = tuple(int(c) for c in self.people[s])
            cv2.rectangle(out, (x, y - th - base - 2), (x + tw + 4, y), colour, -1)
            cv2.putText(
                out,
                text,
                (x + 2, y - base),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (0, 0, 0),
                max(1, round(scale)),
                cv2.LINE_AA,
            )

    def _draw_hud(self, out: np.ndarray, msg: Message, people: int) -> None:
        now = time.time()
        if self._last is not None and now > self._last:
            rate = 1.0 / (now - self._last)
            self._fps = rate if not self._fps else 0.9 * self._fps + 0.1 * rate
        self._last = now
        latency = 1000 * (now - msg.header["capture_ts"])
        text = f"PartStream  {self._fps:4.1f} fps  {latency:4.0f} ms  {people} people"
        scale = max(0.45, out.shape[0] / 900)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x1, y1 = min(out.shape[1], tw + 16), min(out.shape[0], th + base + 14)
        panel = out[:y1, :x1]
        panel[..., :3] = (panel[..., :3] * 0.35).astype(np.uint8)
        if out.shape[2] == 4:
            panel[..., 3] = 255
        cv2.putText(
            out,
            text,
            (8, th + 6),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255,) * out.shape[2],
            max(1, round(scale)),
            cv2.LINE_AA,
        )

    def close(self) -> dict[str, Any] | None:
        return None


def _edges(instances: np.ndarray, fg: np.ndarray, thickness: int) -> np.ndarray:
    """Person pixels next to a pixel of another label (person or background)."""
    edge = np.zeros_like(fg)
    dx = instances[:, 1:] != instances[:, :-1]
    dy = instances[1:] != instances[:-1]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:] |= dy
    edge[:-1] |= dy
    if thickness > 1:
        kernel = np.ones((thickness, thickness), np.uint8)
        edge = cv2.dilate(edge.view(np.uint8), kernel).view(bool)
    return edge & fg
