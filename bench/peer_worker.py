"""MediaPipe top-down pose worker: runs in .venv-peer/ (bench/peer_env.sh), not ours.

A top-down system finds people with a detector, then runs a landmark model on each
person's crop, so its cost grows with the number of people. This worker is that system
built from the two models mediapipe 0.10.14 ships in its wheel (BlazePose detector,
landmark model "full" = model_complexity 1), wired as MediaPipe graphs so every step
runs in MediaPipe's own C++ calculators, not in Python.

Protocol (binary frames on stdin, one JSON line per frame on stdout):
  request: header "<IIII" (height, width, n_boxes, 0), n_boxes x 4 float32 person
           boxes (x0, y0, x1, y1 pixels; 0 boxes = use the detector's people), then
           height x width x 3 uint8 RGB bytes. End of stdin ends the worker.
  reply:   {"ms", "detect_ms", "detected", "people", "keypoints"} where ms is the
           whole frame (detector + every landmark crop), keypoints P x 17 x 3 (x, y,
           visibility) in pixels in COCO-17 order.
With boxes the detector still runs (its cost is part of a top-down frame) but the
landmark model runs on the given boxes: a top-down system with a perfect detector.
Imports only mediapipe, numpy and the standard library: this file runs in another venv.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time

import mediapipe as mp
import numpy as np
from mediapipe.framework.formats import detection_pb2
from mediapipe.python._framework_bindings import resource_util

HEADER = struct.Struct("<IIII")
# BlazePose's 33 landmarks -> COCO-17 order (nose, eyes, ears, shoulders, elbows,
# wrists, hips, knees, ankles).
COCO_FROM_BLAZEPOSE = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]

DETECTOR_GRAPH = """
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu"
       input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
"""

# One person per timestamp: a detection (its hip centre and the point that encodes
# body size and rotation) becomes a rotated ROI, cropped and run through the model.
LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "detection"
input_side_packet: "model_complexity"
input_side_packet: "enable_segmentation"
output_stream: "landmarks"
node { calculator: "ImagePropertiesCalculator"
       input_stream: "IMAGE_CPU:image" output_stream: "SIZE:image_size" }
node { calculator: "PoseDetectionToRoi" input_stream: "DETECTION:detection"
       input_stream: "IMAGE_SIZE:image_size" output_stream: "ROI:roi" }
node { calculator: "PoseLandmarkByRoiCpu"
       input_side_packet: "MODEL_COMPLEXITY:model_complexity"
       input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
       input_stream: "IMAGE:image" input_stream: "ROI:roi"
       output_stream: "LANDMARKS:landmarks" }
"""


def box_detection(box: np.ndarray, width: int, height: int) -> detection_pb2.Detection:
    """A detection whose ROI is the box's square (keypoint 1 above the centre)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2
    det = detection_pb2.Detection()
    det.location_data.format = det.location_data.RELATIVE_BOUNDING_BOX
    for x, y in ((cx, cy), (cx, cy - half)):
        point = det.location_data.relative_keypoints.add()
        point.x, point.y = x / width, y / height
    return det


class TopDownPose:
    """Detector graph + per-person landmark graph, fed in sync, one frame at a time."""

    def __init__(self) -> None:
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
        self.detections: list = []
        self.landmarks: list = []
        self.detector = mp.CalculatorGraph(graph_config=DETECTOR_GRAPH)
        self.detector.observe_output_stream(
            "detections",
            lambda _, p: self.detections.extend(mp.packet_getter.get_proto_list(p)),
        )
        self.detector.start_run()
        self.landmarker = mp.CalculatorGraph(graph_config=LANDMARK_GRAPH)
        self.landmarker.observe_output_stream(
            "landmarks",
            lambda _, p: self.landmarks.append(mp.packet_getter.get_proto(p)),
        )
        self.landmarker.start_run(
            input_side_packets={
                "model_complexity": mp.packet_creator.create_int(1),
                "enable_segmentation": mp.packet_creator.create_bool(False),
            }
        )
        self.frame_ts = 0
        self.person_ts = 0

    def process(self, rgb: np.ndarray, boxes: np.ndarray) -> dict:
        """Run one frame; boxes (N x 4) replace the detector's people when given."""
        height, width = rgb.shape[:2]
        self.detections.clear()
        self.landmarks.clear()
        start = time.perf_counter()
        image = mp.packet_creator.create_image_frame(
            image_format=mp.ImageFormat.SRGB, data=rgb
        )
        self.detector.add_packet_to_input_stream("image", image.at(self.frame_ts))
        self.frame_ts += 1
        self.detector.wait_until_idle()
        detect_ms = (time.perf_counter() - start) * 1e3
        people = (
            [box_detection(b, width, height) for b in boxes]
            if len(boxes)
            else list(self.detections)
        )
        for det in people:
            ts = self.person_ts
            self.person_ts += 1
            self.landmarker.add_packet_to_input_stream("image", image.at(ts))
            self.landmarker.add_packet_to_input_stream(
                "detection", mp.packet_creator.create_proto(det).at(ts)
            )
        self.landmarker.wait_until_idle()
        ms = (time.perf_counter() - start) * 1e3
        keypoints = [
            [
                [
                    lm.landmark[i].x * width,
                    lm.landmark[i].y * height,
                    lm.landmark[i].visibility,
                ]
                for i in COCO_FROM_BLAZEPOSE
            ]
            for lm in self.landmarks
        ]
        return {
            "ms": ms,
            "detect_ms": detect_ms,
            "detected": len(self.detections),
            "people": len(keypoints),
            "keypoints": keypoints,
        }

    def close(self) -> None:
        for graph in (self.detector, self.landmarker):
            graph.close()


def read_exact(stream, size: int) -> bytes | None:
    """size bytes from stream, or None at a clean end of stream."""
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout
    pose = TopDownPose()
    stdout.write(json.dumps({"ready": True}) + "\n")
    stdout.flush()
    while (header := read_exact(stdin, HEADER.size)) is not None:
        height, width, n_boxes, _ = HEADER.unpack(header)
        boxes = read_exact(stdin, 16 * n_boxes)
        pixels = read_exact(stdin, height * width * 3)
        if boxes is None or pixels is None:
            break
        rgb = np.frombuffer(pixels, np.uint8).reshape(height, width, 3)
        reply = pose.process(rgb, np.frombuffer(boxes, np.float32).reshape(-1, 4))
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()
    pose.close()


if __name__ == "__main__":
    main()
