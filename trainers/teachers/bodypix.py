"""BodyPix 2 (MobileNetV1 0.75, output stride 16) as a teacher: LiteRT runs the heads,
the decoding is ours, vectorised in numpy.

What the tflite file is (read from it, checked on COCO samples): one uint8 input of any
size H x W (it pads one row and column itself, so H + 1 and W + 1 are the 16k + 1
sizes TF.js feeds), quantised as (q - 128) / 128, i.e. q = 256 * pixel / 255 for
MobileNet's [-1, 1]; heads on a (H / 16 + 1) x (W / 16 + 1) grid whose cell (i, j) sits
on input pixel (16 j, 16 i); offsets are in input pixels, y channels before x channels:
- heatmaps (17 logits, COCO order; "left" is the person's own left, as COCO),
- short offsets (17 y, 17 x) from a cell to the nearby keypoint of each type,
- mid offsets [fwd y, fwd x, bwd y, bwd x] x 16 edges of POSE_CHAIN: from a joint to
  its child (fwd) or parent (bwd) in the same person,
- long offsets (17 y, 17 x) from any person pixel to its own person's keypoints,
- person segmentation (1 logit) and 24 part logits (configs/parts.yaml `bodypix24`).

Decoding follows PersonLab as TF.js BodyPix and Coral's decoder do: heatmap local maxima
are root candidates in score order; each is grown along the tree by the mid offsets,
each joint then pulled onto its peak by the short offsets; a candidate whose root lies
within `nms_radius` of the same joint of a kept person is dropped, and a person's score
counts only the joints no kept person already claims. Person pixels follow the long
offsets to where they say their own keypoints are and join the person whose keypoints
are nearest, unless even those are far (pixels of people no pose was decoded for stay
person in the part probabilities but join no instance). Parts become the `fine`
taxonomy with front and back merged, weighted by the person probability
(background = 1 - p(person)).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import maximum_filter

import configs
from configs.constants import NUM_KEYPOINTS
from configs.letterbox import Letterbox, letterbox_image
from trainers.teachers import TeacherError, TeacherOutput

MODEL_FILE = (
    Path("bodypix") / "bodypix_mobilenet_v1_075_1280_720_16_per_tensor_quant.tflite"
)
# ../shared/models beside the repository; PARTSTREAM_MODELS names another models folder.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[3] / "shared" / "models"
STRIDE = 16
MASK_STEP = 8  # input pixels between the points whose person is decided
# (parent, child) COCO ids, rooted at the nose: the mid offsets' edge order.
POSE_CHAIN = (
    (0, 1),
    (1, 3),
    (0, 2),
    (2, 4),
    (0, 5),
    (5, 7),
    (7, 9),
    (5, 11),
    (11, 13),
    (13, 15),
    (0, 6),
    (6, 8),
    (8, 10),
    (6, 12),
    (12, 14),
    (14, 16),
)
NUM_FINE = len(configs.taxonomy("fine")["classes"])
# part channel that a part channel is in the mirror image (left <-> right)
MIRROR_PARTS = np.asarray(configs.taxonomy("bodypix24")["flip"][1:]) - 1
OUTPUTS = {
    "heatmaps": "float_heatmaps",
    "short": "float_short_offsets",
    "mid": "float_mid_offsets",
    "long": "float_long_offsets",
    "segment": "float_segments",
    "parts": "float_part_heatmaps",
}


def default_model_path() -> Path:
    """The tflite file under $PARTSTREAM_MODELS, else under ../shared/models."""
    root = os.environ.get("PARTSTREAM_MODELS")
    return (Path(root) if root else DEFAULT_MODELS_DIR) / MODEL_FILE


@dataclass
class Heads:
    """The model's dequantised heads for one input, H x W x C on the stride-16 grid."""

    heatmaps: np.ndarray  # 17 logits
    short: np.ndarray  # 34: y then x, input pixels
    mid: np.ndarray  # 64: fwd y, fwd x, bwd y, bwd x
    long: np.ndarray  # 34: y then x, input pixels
    segment: np.ndarray  # H x W person logit
    parts: np.ndarray  # 24 part logits, bodypix24 order


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def sample(
    field: np.ndarray, yx: np.ndarray, channels: np.ndarray, stride: int = STRIDE
) -> np.ndarray:
    """Bilinear samples of `field` (H x W x C) at input-pixel points `yx` (N x 2).

    `channels` is N x K (a channel list per point); returns N x K.
    """
    h, w = field.shape[:2]
    y = np.clip(yx[:, 0] / stride, 0, h - 1)
    x = np.clip(yx[:, 1] / stride, 0, w - 1)
    y0, x0 = np.floor(y).astype(np.intp), np.floor(x).astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (y - y0)[:, None], (x - x0)[:, None]
    y0, y1, x0, x1 = y0[:, None], y1[:, None], x0[:, None], x1[:, None]
    top = field[y0, x0, channels] * (1 - wx) + field[y0, x1, channels] * wx
    bottom = field[y1, x0, channels] * (1 - wx) + field[y1, x1, channels] * wx
    return top * (1 - wy) + bottom * wy


def _follow(
    scores: np.ndarray,
    short: np.ndarray,
    mid: np.ndarray,
    src: np.ndarray,
    channel_y: int,
    target: int,
    refine_steps: int,
    stride: int,
) -> tuple[np.ndarray, np.ndarray]:
    """From joints at `src` (N x 2, y x) along one edge: target positions and scores."""
    h, w = scores.shape[:2]
    hi = np.array([(h - 1) * stride, (w - 1) * stride], np.float32)
    n = len(src)
    edges = np.full((n, 2), channel_y)
    edges[:, 1] += len(POSE_CHAIN)
    pos = np.clip(src + sample(mid, src, edges, stride), 0, hi)
    joint = np.full((n, 2), target)
    joint[:, 1] += NUM_KEYPOINTS
    for _ in range(refine_steps):
        pos = np.clip(pos + sample(short, pos, joint, stride), 0, hi)
    return pos, sample(scores, pos, joint[:, :1], stride)[:, 0]


def grow_poses(
    scores: np.ndarray,
    short: np.ndarray,
    mid: np.ndarray,
    roots: np.ndarray,
    root_ids: np.ndarray,
    refine_steps: int = 2,
    stride: int = STRIDE,
) -> tuple[np.ndarray, np.ndarray]:
    """Whole poses from N root joints at once: N x 17 x 2 (y, x) and N x 17 scores.

    Up the tree by the backward mid offsets first, then down by the forward ones, as
    TF.js BodyPix; each step handles every candidate whose source joint is known.
    """
    n = len(roots)
    pos = np.zeros((n, NUM_KEYPOINTS, 2), np.float32)
    score = np.zeros((n, NUM_KEYPOINTS), np.float32)
    known = np.zeros((n, NUM_KEYPOINTS), bool)
    rows = np.arange(n)
    pos[rows, root_ids] = roots
    score[rows, root_ids] = scores[
        np.clip(np.rint(roots[:, 0] / stride).astype(np.intp), 0, scores.shape[0] - 1),
        np.clip(np.rint(roots[:, 1] / stride).astype(np.intp), 0, scores.shape[1] - 1),
        root_ids,
    ]
    known[rows, root_ids] = True
    num_edges = len(POSE_CHAIN)
    passes = [
        (child, parent, 2 * num_edges + e)
        for e, (parent, child) in reversed(list(enumerate(POSE_CHAIN)))
    ]
    passes += [(parent, child, e) for e, (parent, child) in enumerate(POSE_CHAIN)]
    for source, target, channel_y in passes:
        todo = known[:, source] & ~known[:, target]
        if todo.any():
            pos[todo, target], score[todo, target] = _follow(
                scores,
                short,
                mid,
                pos[todo, source],
                channel_y,
                target,
                refine_steps,
                stride,
            )
            known[todo, target] = True
    return pos, score


@dataclass(frozen=True)
class PoseDecoding:
    """PersonLab pose-decode settings, one home for the decoder and the teacher:
    peaks at or above `threshold`, a root within `nms_radius` px of a kept person's
    same joint is that person, people scoring below `min_pose_score` are dropped."""

    threshold: float = 0.1
    nms_radius: float = 20.0
    min_pose_score: float = 0.15
    max_people: int = 30


def decode_poses(
    scores: np.ndarray,
    short: np.ndarray,
    mid: np.ndarray,
    settings: PoseDecoding = PoseDecoding(),
    max_candidates: int = 1000,
    chunk: int = 64,
    stride: int = STRIDE,
) -> tuple[np.ndarray, np.ndarray]:
    """PersonLab multi-person poses from the heatmap probabilities and offsets.

    Returns P x 17 x 3 (x, y, score) in input pixels and P person scores, best first.
    """
    threshold, nms_radius = settings.threshold, settings.nms_radius
    min_pose_score, max_people = settings.min_pose_score, settings.max_people
    peaks = (scores >= threshold) & (scores == maximum_filter(scores, size=(3, 3, 1)))
    i, j, k = np.nonzero(peaks)
    order = np.argsort(-scores[i, j, k], kind="stable")[:max_candidates]
    i, j, k = i[order], j[order], k[order]
    roots = np.stack(
        [i * stride + short[i, j, k], j * stride + short[i, j, k + NUM_KEYPOINTS]], 1
    )
    hi = [(scores.shape[0] - 1) * stride, (scores.shape[1] - 1) * stride]
    roots = np.clip(roots, 0, hi).astype(np.float32)
    kept_pos = np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
    kept_score = np.zeros((0, NUM_KEYPOINTS), np.float32)
    person_scores: list[float] = []
    radius2 = nms_radius**2
    # Candidates go in score order, a chunk at a time: roots already claimed by a kept
    # person are dropped before their (vectorised) growing, the rest decided one by one.
    for start in range(0, len(roots), chunk):
        ids = np.arange(start, min(start + chunk, len(roots)))
        claimed = ((kept_pos[:, k[ids]] - roots[ids]) ** 2).sum(-1) <= radius2
        ids = ids[~claimed.any(0)]
        pos, score = grow_poses(scores, short, mid, roots[ids], k[ids], stride=stride)
        for c, root_id in enumerate(k[ids]):
            near = ((kept_pos - pos[c]) ** 2).sum(-1) <= radius2  # people x 17
            if near[:, root_id].any():
                continue
            person_score = float(score[c][~near.any(0)].sum() / NUM_KEYPOINTS)
            if person_score >= min_pose_score:
                kept_pos = np.concatenate([kept_pos, pos[c : c + 1]])
                kept_score = np.concatenate([kept_score, score[c : c + 1]])
                person_scores.append(person_score)
                if len(person_scores) == max_people:
                    break
        if len(person_scores) == max_people:
            break
    order = np.argsort(-np.asarray(person_scores), kind="stable")
    keypoints = np.concatenate([kept_pos[..., ::-1], kept_score[..., None]], -1)[order]
    return keypoints.astype(np.float32), np.asarray(person_scores, np.float32)[order]


def assign_pixels(
    long: np.ndarray,
    points: np.ndarray,
    keypoints: np.ndarray,
    min_joint_score: float = 0.3,
    refine_steps: int = 3,
    reach: float = 0.6,
    stride: int = STRIDE,
) -> np.ndarray:
    """Person index (-1: none) of each point (N x 2, y x, input pixels).

    A point follows the long offsets to where it says its person's keypoints are
    (`refine_steps` more hops sharpen that), and joins the person whose found joints
    (score >= `min_joint_score`) lie nearest on average, if that root-mean-square
    distance is within `reach` times the person's size (the square root of the area
    of its found joints' box, at least one stride).
    """
    if len(keypoints) == 0 or len(points) == 0:
        return np.full(len(points), -1, np.intp)
    h, w = long.shape[:2]
    hi = np.array([(h - 1) * stride, (w - 1) * stride], np.float32)
    joints = np.arange(NUM_KEYPOINTS)
    channels = np.broadcast_to(
        np.stack([joints, joints + NUM_KEYPOINTS], 1), (len(points), NUM_KEYPOINTS, 2)
    )
    embed = points[:, None, :] + _sample_many(long, points, channels, stride)
    for _ in range(refine_steps):
        flat = np.clip(embed.reshape(-1, 2), 0, hi)
        hop = sample(long, flat, channels.reshape(-1, 2), stride)
        embed = (flat + hop).reshape(embed.shape)
    found = keypoints[:, :, 2] >= min_joint_score  # P x 17
    people_yx = keypoints[:, :, 1::-1]  # P x 17 x 2 (y, x)
    d2 = ((embed[:, None] - people_yx[None]) ** 2).sum(-1)  # N x P x 17
    count = found.sum(1)
    mean = (d2 * found).sum(-1) / np.maximum(count, 1)
    mean[:, count == 0] = np.inf
    found_yx = np.where(found[..., None], people_yx, np.nan)
    extent = np.nan_to_num(np.nanmax(found_yx, 1) - np.nanmin(found_yx, 1))  # P x 2
    size2 = np.maximum(extent.prod(1), stride**2)
    best = mean.argmin(1)
    rows = np.arange(len(points))
    best[~(mean[rows, best] <= reach**2 * size2[best])] = -1
    return best


def _sample_many(
    field: np.ndarray, points: np.ndarray, channels: np.ndarray, stride: int
) -> np.ndarray:
    """`sample` for N points x K channel pairs: N x K x 2."""
    n, k, _ = channels.shape
    flat = np.repeat(points, k, axis=0)
    return sample(field, flat, channels.reshape(-1, 2), stride).reshape(n, k, 2)


def part_conditionals(part_logits: np.ndarray) -> np.ndarray:
    """24 part logits (H x W x 24) -> p(fine class | person), (C - 1) x H x W.

    Softmax over BodyPix's parts, then each part's probability added to the `fine`
    class it maps to (configs/parts.yaml bodypix24 -> fine); hair gets none.
    """
    table = np.asarray(configs.mapping("bodypix24", "fine")[1:])
    z = part_logits - part_logits.max(-1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(-1, keepdims=True)
    merge = np.zeros((len(table), NUM_FINE - 1), np.float32)
    merge[np.arange(len(table)), table - 1] = 1
    return np.moveaxis(p @ merge, -1, 0).astype(np.float32)


def weigh_by_person(probs: np.ndarray, person: np.ndarray) -> np.ndarray:
    """C x H x W whose planes 1.. hold p(class | person) -> the `fine` probabilities.

    In place (frames are large): planes 1.. times p(person), plane 0 = 1 - p(person).
    """
    np.multiply(probs[1:], person, out=probs[1:])
    np.subtract(1, person, out=probs[0])
    return probs


class BodyPixTeacher:
    """BodyPix 2 behind the Teacher interface (trainers.teachers).

    `size`: the letterbox the image's long side is fitted to (a multiple of 16; the
    short side is padded only to the next multiple of 16). 640 by default: on the COCO
    samples it matches 11 of 12 people (OKS AP 0.49; 512: 0.38, 384: 0.20), and on
    real clips 1.1-5x the people 512 finds where people are small (the same where
    they are large), for ~1.3x the time;
    768 finds more still in dense crowds (MOT20: 11 people a frame vs 5) at ~1.9x.
    `threads`: LiteRT's CPU threads; `poses`: the pose decode's settings;
    `person_threshold` cuts the instance masks from p(person). `flip` averages the
    person and part logits with the mirror image's: on the CIHP samples the limbs'
    left and right then agree with the labels on 94 % of pixels instead of 84 %
    (part mIoU unchanged), for a second network pass.
    """

    name = "bodypix"

    def __init__(
        self,
        path: Path | str | None = None,
        size: int = 640,
        threads: int = 2,
        poses: PoseDecoding = PoseDecoding(),
        person_threshold: float = 0.5,
        flip: bool = True,
    ) -> None:
        if size <= 0 or size % STRIDE:
            raise TeacherError(
                f"BodyPix input size must be a multiple of 16, got {size}"
            )
        self.path = Path(path) if path is not None else default_model_path()
        self.size = size
        self.poses = poses
        self.person_threshold = person_threshold
        self.flip = flip
        self._interpreter = _load(self.path, size, threads)
        details = {d["name"]: d for d in self._interpreter.get_output_details()}
        missing = [name for name in OUTPUTS.values() if name not in details]
        if missing:
            raise TeacherError(
                f"{self.path} is not the BodyPix 2 model: no output {missing[0]}"
            )
        self._outputs = {key: details[name] for key, name in OUTPUTS.items()}
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._shape = (size, size)

    def heads(self, image: np.ndarray) -> tuple[Heads, Letterbox]:
        """Run the network on the letterboxed image: its heads and the letterbox."""
        height, width = image.shape[:2]
        box = Letterbox.fit(width, height, self.size)
        # the letterbox's content, padded only up to the next multiple of 16: the
        # model takes any such size, and a 16:9 frame is then 368 x 640, not 640 x 640
        rows, cols = -(-box.new_h // STRIDE) * STRIDE, -(-box.new_w // STRIDE) * STRIDE
        x = letterbox_image(image, box)[:, :rows, :cols]  # 3 x rows x cols in [0, 1]
        q = np.clip(np.rint(x * 256), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        if q.shape[:2] != self._shape:
            self._interpreter.resize_tensor_input(self._input, [1, rows, cols, 3])
            self._interpreter.allocate_tensors()
            self._shape = q.shape[:2]
        self._interpreter.set_tensor(self._input, q[None])
        self._interpreter.invoke()
        out = {}
        for key, detail in self._outputs.items():
            scale, zero = detail["quantization"]
            raw = self._interpreter.get_tensor(detail["index"])[0]
            out[key] = (raw.astype(np.float32) - zero) * np.float32(scale)
        out["segment"] = out["segment"][..., 0]
        return Heads(**out), box

    def __call__(self, image: np.ndarray) -> TeacherOutput:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected H x W x 3 uint8 RGB, got {image.shape} {image.dtype}"
            )
        heads, box = self.heads(image)
        if self.flip:
            _average_mirror(
                heads, self.heads(np.ascontiguousarray(image[:, ::-1]))[0], box
            )
        scores = _sigmoid(heads.heatmaps)
        keypoints, person_scores = decode_poses(
            scores, heads.short, heads.mid, self.poses
        )
        # model positions are pixel indices; the letterbox maps continuous coordinates
        height, width = image.shape[:2]
        keypoints[..., :2] = np.clip(
            box.to_frame(keypoints[..., :2] + 0.5) - 0.5, 0, [width - 1, height - 1]
        )
        probs = np.empty((NUM_FINE, height, width), np.float32)
        _to_image(heads.segment[None], box, probs[:1])
        person = _sigmoid(probs[0])
        _to_image(part_conditionals(heads.parts), box, probs[1:])
        instances = self._instances(heads, box, keypoints, person)
        return TeacherOutput(
            keypoints, person_scores, instances, weigh_by_person(probs, person)
        )

    def _instances(
        self, heads: Heads, box: Letterbox, keypoints: np.ndarray, person: np.ndarray
    ) -> np.ndarray:
        """Instance ids in the image grid, decided on a MASK_STEP grid of the input."""
        step = MASK_STEP
        grid_h, grid_w = -(-box.new_h // step), -(-box.new_w // step)
        ys, xs = np.mgrid[0:grid_h, 0:grid_w]
        points = np.stack([ys.ravel(), xs.ravel()], 1).astype(np.float32) * step
        seg = sample(
            heads.segment[..., None], points, np.zeros((len(points), 1), np.intp)
        )[:, 0]
        near = seg > -2.0  # p(person) > 0.12: the image's mask is thresholded below
        to_input = _image_to_grid(box, 1)  # image pixel -> input pixel
        in_input = keypoints.copy()
        in_input[..., :2] *= to_input[[0, 1], [0, 1]]
        in_input[..., :2] += to_input[:, 2]
        owner = np.full(len(points), -1, np.intp)
        owner[near] = assign_pixels(heads.long, points[near], in_input)
        grid = (owner + 1).reshape(grid_h, grid_w).astype(np.uint16)
        # grid cell (r, c) is input pixel (step r, step c): to the image by nearest
        image_ids = cv2.warpAffine(
            grid,
            _image_to_grid(box, step),
            (person.shape[1], person.shape[0]),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        image_ids[person <= self.person_threshold] = 0
        return image_ids


def _average_mirror(heads: Heads, mirrored: Heads, box: Letterbox) -> None:
    """Average the person and part logits with those of the mirrored image (in place).

    The mirror's grid is flipped back (input pixel x of the mirror is new_w - 1 - x
    here) and its left and right parts swapped; poses and long offsets stay unmirrored.
    """
    h, w = heads.segment.shape
    back = np.array([[-1, 0, (box.new_w - 1) / STRIDE], [0, 1, 0]])

    def unflip(m: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(
            m,
            back,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )

    heads.segment = (heads.segment + unflip(mirrored.segment)) / 2
    heads.parts = (heads.parts + unflip(mirrored.parts)[..., MIRROR_PARTS]) / 2


def _image_to_grid(box: Letterbox, step: float) -> np.ndarray:
    """2 x 3 affine map from image pixels (x, y) to a grid of input pixel `step`.

    Image pixel u has its centre at input pixel (u + 0.5) sx - 0.5 (the letterbox
    resizes pixel areas), i.e. at that over `step` on the grid.
    """
    return np.array(
        [
            [box.sx / step, 0, (0.5 * box.sx - 0.5) / step],
            [0, box.sy / step, (0.5 * box.sy - 0.5) / step],
        ]
    )


def _to_image(maps: np.ndarray, box: Letterbox, out: np.ndarray) -> None:
    """C x h x w maps on the stride-16 grid -> `out` (C x height x width), bilinear;
    cells past the letterbox's content are never reached."""
    matrix = _image_to_grid(box, STRIDE)
    size = (out.shape[2], out.shape[1])
    for m, plane in zip(maps, out, strict=True):
        cv2.warpAffine(
            np.ascontiguousarray(m, np.float32),
            matrix,
            size,
            dst=plane,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )


def _load(path: Path, size: int, threads: int):
    """A LiteRT interpreter for `path` at size x size, or one clear TeacherError."""
    if not path.is_file():
        raise TeacherError(
            f"BodyPix model not found: {path} (pass path= or set PARTSTREAM_MODELS to "
            "the folder holding bodypix/)"
        )
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise TeacherError(
            "BodyPix needs LiteRT: pip install -e '.[train]' (ai-edge-litert)"
        ) from exc
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.resize_tensor_input(
            interpreter.get_input_details()[0]["index"], [1, size, size, 3]
        )
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise TeacherError(
            f"cannot read the BodyPix model {path}: {str(exc).splitlines()[0]}"
        ) from exc
    return interpreter
