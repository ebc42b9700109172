"""`--results-json PATH`: every person of every frame in COCO's results format, so
any COCO tool scores it (pycocotools' `loadRes`, then COCOeval for keypoints, segm or
bbox), for images and videos alike.

One record per person:

    {"image_id": 785, "category_id": 1, "score": 0.41,
     "bbox": [x, y, w, h], "keypoints": [x1, y1, s1, ... x17, y17, s17],
     "segmentation": {"size": [h, w], "counts": "..."},         # COCO RLE
     "file_name": "000000000785.jpg", "frame": 0, "track_id": -1, "instance": 1}

`image_id` is the number a file is named by (COCO's `000000000785.jpg` is 785), else
the frame's index. Keypoint triplets carry the joint's score where COCO ground truth
has a visibility flag (COCOeval ignores it in results; the decode's guesses for joints
a skeleton lacked, `decode.complete_joints`, score at most 0.05). Beside the JSON,
the folder `<stem>_maps/` holds each frame's part map (`<name>_parts.png`: the part
id of every pixel, `parts.json` names them) and person map (`<name>_people.png`,
16-bit: the record's `instance` on that person's pixels). Both are written under
temporary names and moved into place at the end, and only if a frame came
(`pipeline.engine.output_files`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from configs.errors import StageError
from pipeline.engine.messages import Message
from pipeline.engine.output_files import check_writable, finish, partial_path
from pipeline.engine.stage import Sink
from pipeline.io.feed import label_rles


class ResultsSink(Sink):
    """Collects COCO results per frame and writes them when the run ends (a
    `pipeline.engine.stage.Sink`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.maps = self.path.with_name(f"{self.path.stem}_maps")
        self.name = f"results:{self.path}"
        self.frames = 0
        self.records: list[dict[str, Any]] = []
        self._maps_partial: Path | None = None

    def check(self) -> None:
        if self.path.suffix.lower() != ".json":
            raise StageError(f"--results-json {self.path}: give a .json path")
        check_writable(self.path)

    def open(self) -> None:
        self.check()
        self._maps_partial = partial_path(self.maps)
        shutil.rmtree(self._maps_partial, ignore_errors=True)
        self._maps_partial.mkdir()

    def write(self, msg: Message) -> None:
        import cv2

        assert self._maps_partial is not None, "open() first"
        p, index = msg.people, int(msg.header.get("index", 0))
        name = msg.header.get("name") or f"frame{index:06d}"
        stem = Path(name).stem
        image_id = int(stem) if stem.isdigit() else index
        scores, instances = p.scores, p.instances
        count = len(scores)
        masks = label_rles(instances, list(range(1, count + 1))) if count else {}
        ids = p.ids()
        for k in range(count):
            x0, y0, x1, y1 = (float(v) for v in p.boxes[k])
            self.records.append({
                "image_id": image_id, "category_id": 1,
                "score": round(float(scores[k]), 5),
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2),
                         round(y1 - y0, 2)],
                "keypoints": [round(float(v), 3) for v in p.keypoints[k].ravel()],
                "segmentation": masks[k + 1],
                "file_name": name, "frame": index, "track_id": int(ids[k]),
                "instance": k + 1,
            })  # fmt: skip
        cv2.imwrite(
            str(self._maps_partial / f"{stem}_parts.png"), p.parts.astype(np.uint8)
        )
        cv2.imwrite(
            str(self._maps_partial / f"{stem}_people.png"), instances.astype(np.uint16)
        )
        self.frames += 1

    def close(self) -> dict[str, Any]:
        if self._maps_partial is None:
            return {"path": str(self.path), "frames": 0, "people": 0}
        if self.frames:
            names = dict(enumerate(self.part_names))
            (self._maps_partial / "parts.json").write_text(json.dumps(names, indent=1))
            partial = partial_path(self.path)
            partial.write_text(json.dumps(self.records))
            finish(partial, self.path, keep=True)
            shutil.rmtree(self.maps, ignore_errors=True)
            self._maps_partial.rename(self.maps)
        else:
            shutil.rmtree(self._maps_partial, ignore_errors=True)
        return {
            "path": str(self.path),
            "frames": self.frames,
            "people": len(self.records),
        }
