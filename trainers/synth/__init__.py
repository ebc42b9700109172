"""The synthetic multi-person world: seeded scenes and videos with exact ground truth.

`generate_scene(seed, size, people)` is one still image, `SceneStream` an endless
indexable stream of them for on-the-fly training, `generate_video(seed, size, frames,
people)` a clip with stable track ids; `load_coco_export(dir)` reads back what
`python -m trainers.synth` wrote. See docs/SYNTH.md.
"""

from trainers.synth.coco_export import load_coco_export
from trainers.synth.compose import SceneStream, SynthOptions, generate_scene
from trainers.synth.video import generate_video

__all__ = [
    "SceneStream",
    "SynthOptions",
    "generate_scene",
    "generate_video",
    "load_coco_export",
]
