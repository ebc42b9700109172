"""Clips: people walk, run, stand and wave on a ground plane; enter, leave, cross.

Each person keeps body, clothes and track id for the whole clip; motion is integrated
in metres per second (smoothly drifting headings, turning back at the near and far
limits), the gait phase advances with the distance walked, and the body yaw follows the
heading, so front, profile and back views come and go as people turn. Camera,
background, light and lens stay fixed; only the sensor noise changes per frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from configs.records import Scene
from trainers.synth.background import make_background, occluder_shapes
from trainers.synth.body import P, gait_pose, sample_pose, sample_proportions
from trainers.synth.compose import (
    Camera,
    Person,
    SynthOptions,
    _check_people,
    render,
    sample_light,
)
from trainers.synth.degrade import Degradation
from trainers.synth.looks import sample_look
from trainers.synth.rand import Rand, choose, pick

MODES = ("walk", "run", "stand", "wave")
MODE_P = (0.62, 0.1, 0.16, 0.12)
SPAWN_RATE = 0.6  # new people per second while below the clip's crowd size


@dataclass
class Walker:
    """A person's motion state: heading in degrees (0 = towards the camera), speed m/s,
    gait phase (rad), heading drift deg/s; `rest`: the standing pose of idle people."""

    person: Person
    mode: str
    speed: float
    heading: float
    phase: float
    amp: float
    drift: float
    rest: np.ndarray


class _World:
    def __init__(self, rng: Rand, size: int, people, opts: SynthOptions):
        self.rng, self.size, self.opts = rng, size, opts
        self.lo, self.hi = people
        self.camera = cam = Camera.sample(rng, size)
        near = cam.f * 1.75 / (0.95 * size * min(opts.max_height, 1.0))
        if cam.height > 1.8:  # keep heads in view under a high camera
            near = max(
                near, cam.f * (cam.height - 1.6) / max(0.9 * size - cam.horizon, 1)
            )
        self.near = near
        self.far = max(cam.f * 1.6 / max(opts.min_height, 20), near * 1.5)
        self.next_id = 0
        self.target = int(rng.integers(self.lo, self.hi + 1))
        self.walkers = [self._spawn(entering=False) for _ in range(self.target)]

    def _spawn(self, entering: bool) -> Walker:
        rng, cam = self.rng, self.camera
        mode = MODES[pick(rng, MODE_P)] if not entering else "walk"
        depth = float(
            np.exp(rng.uniform(np.log(self.near * 1.1), np.log(self.far * 0.9)))
        )
        half = (self.size / 2) * depth / cam.f
        if entering:
            side = 1.0 if rng.random() < 0.5 else -1.0
            x = side * (half + 0.6)
            heading = -side * 90 + rng.normal(0, 20)
        else:
            x = rng.uniform(-half, half)
            heading = choose(rng, (90, -90, 0, 180)) + rng.normal(0, 25)
        speed = {"walk": rng.uniform(0.9, 1.6), "run": rng.uniform(2.4, 3.8)}.get(
            mode, 0.0
        )
        rest = sample_pose(rng, "stand")
        person = Person(
            sample_proportions(rng),
            sample_look(rng),
            rest,
            heading,
            x,
            depth,
            self.next_id,
        )
        self.next_id += 1
        walker = Walker(
            person,
            mode,
            speed,
            heading,
            rng.uniform(0, 2 * np.pi),
            rng.uniform(0.7, 1.15),
            rng.normal(0, 8),
            rest,
        )
        person.pose = self._pose(walker, 0.0)
        return walker

    def step(self, dt: float, t: float) -> None:
        rng = self.rng
        for w in self.walkers:
            p = w.person
            if w.speed:
                w.drift = float(np.clip(w.drift + rng.normal(0, 20) * dt, -25, 25))
                w.heading += w.drift * dt
                towards = np.cos(np.radians(w.heading))
                if (p.depth < self.near * 1.15 and towards > 0) or (
                    p.depth > self.far * 0.9 and towards < 0
                ):
                    w.heading += (
                        70 * dt * (1 if np.sin(np.radians(w.heading)) >= 0 else -1)
                    )
                h = np.radians(w.heading)
                p.x += w.speed * dt * np.sin(h)
                p.depth -= w.speed * dt * np.cos(h)
                stride = 2 * p.prop.upper_leg * (1.4 if w.mode == "run" else 1.1)
                w.phase += 2 * np.pi * w.speed * dt / stride
                p.yaw = w.heading
            else:
                w.phase += 2 * np.pi * 1.3 * dt
            p.pose = self._pose(w, t)
        self.walkers = [w for w in self.walkers if not self._gone(w)]
        if len(self.walkers) < self.target and rng.random() < SPAWN_RATE * dt:
            self.walkers.append(self._spawn(entering=True))

    def _pose(self, w: Walker, t: float) -> np.ndarray:
        if w.mode in ("walk", "run"):
            pose = gait_pose(w.phase, w.amp, 0.85 if w.mode == "run" else 0.0)
            pose[P["head_yaw"]] = 25 * np.sin(0.4 * t + w.amp * 10)
            return pose
        pose = w.rest.copy()
        pose[P["head_yaw"]] += 20 * np.sin(0.5 * t + w.amp * 10)
        if w.mode == "wave":
            pose[P["r_arm_a"]] = 125 + 25 * np.sin(w.phase)
            pose[P["r_elbow"]] = 60 + 20 * np.sin(w.phase + 1)
        return pose

    def _gone(self, w: Walker) -> bool:
        """Left through a side of the image (and still walking away from it)."""
        p, cam = w.person, self.camera
        u, _, s = cam.project(p.x, p.depth)
        margin = 0.5 * s * p.prop.height
        outward = np.sin(np.radians(w.heading)) * np.sign(u - self.size / 2) > 0
        return bool(w.speed and outward and (u < -margin or u > self.size + margin))


def generate_video(
    seed: int,
    size: int = 384,
    frames: int = 30,
    people: tuple[int, int] = (1, 8),
    fps: float = 15.0,
    **opts,
) -> Iterator[Scene]:
    """A clip of `frames` scenes; a track id names the same person in every frame."""
    o = SynthOptions.from_kwargs(opts)
    people = _check_people(people)
    if frames < 1 or fps <= 0:
        raise ValueError("frames must be >= 1 and fps > 0")
    rng = Rand(seed)
    world = _World(rng, size, people, o)
    background = make_background(rng, size, world.camera.horizon, o.backgrounds)
    if not o.clutter:
        background.clutter = []
    occ = (
        occluder_shapes(rng, size, int(rng.integers(1, 3)))
        if rng.random() < o.occluders
        else []
    )
    degr = Degradation.sample(rng, o.degrade) if o.degrade > 0 else None
    light = sample_light(rng)
    dt = 1.0 / fps
    for k in range(frames):
        if k:
            world.step(dt, k * dt)
        crowd = [w.person for w in world.walkers]
        yield render(crowd, world.camera, background, occ, degr, light, rng)
