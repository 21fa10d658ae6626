"""Face detection and 478-point face mesh with mediapipe (legacy solutions API).

Landmarks are returned as float32 [478, 3] in the pixel coordinates of the image
they were measured in: x and y in pixels, z in pixels too (mediapipe's relative
depth scaled like x; smaller is closer to the camera).

The mesh model is always run on a square, face-centred crop that we cut
ourselves: that makes small faces in large photos and wide video shots work
(mediapipe's own detector only finds faces that fill a good part of its input),
and lets a video tracker follow the face from frame to frame.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MESH_INPUT = 256  # side of the crop handed to the mesh model, pixels
MESH_CROP_SCALE = 1.7  # crop side / face size when cutting the crop the mesh model sees
QUIET_CALLS = 3   # first runs of each graph whose native log lines are silenced


@dataclass(frozen=True)
class FaceBox:
    """A detected face: centre and size in pixels, with the detector's score."""

    cx: float
    cy: float
    size: float
    score: float


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence mediapipe's C++ log lines, which bypass Python's sys.stderr."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def box_from_landmarks(landmarks: np.ndarray) -> FaceBox:
    """Face box around landmarks [N>=2, 2+] (pixels)."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    centre = (lo + hi) / 2
    return FaceBox(float(centre[0]), float(centre[1]), float((hi - lo).max()), 1.0)


def _crop_affine(box: FaceBox, side: int, scale: float) -> np.ndarray:
    """2x3 affine taking image pixels to a `side` x `side` crop around `box`."""
    k = side / (box.size * scale)
    return np.array(
        [[k, 0.0, side / 2 - k * box.cx], [0.0, k, side / 2 - k * box.cy]], np.float64
    )


class FaceLandmarker:
    """Finds faces in still images and measures their 478-point mesh.

    Use as a context manager, or call `close()`; one instance is not
    thread-safe.
    """

    def __init__(self) -> None:
        from mediapipe.python.solutions import face_detection, face_mesh

        with _quiet_native_stderr():
            self._detectors = [
                face_detection.FaceDetection(model_selection=m, min_detection_confidence=0.5)
                for m in (1, 0)  # full range first: finds small faces too
            ]
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=True, refine_landmarks=True, max_num_faces=1,
                min_detection_confidence=0.3,
            )
        self._calls: dict[int, int] = {}

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for graph in [*self._detectors, self._mesh]:
            graph.close()

    def _process(self, graph, image: np.ndarray):
        # mediapipe logs a few lines from its own threads on a graph's first runs.
        calls = self._calls[id(graph)] = self._calls.get(id(graph), 0) + 1
        if calls > QUIET_CALLS:
            return graph.process(image)
        with _quiet_native_stderr():
            return graph.process(image)

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Faces in `image` (uint8 [H,W,3] RGB), largest first."""
        h, w = image.shape[:2]
        boxes: list[FaceBox] = []
        for detector in self._detectors:
            found = self._process(detector, np.ascontiguousarray(image)).detections or []
            for det in found:
                rb = det.location_data.relative_bounding_box
                box = FaceBox(
                    (rb.xmin + rb.width / 2) * w, (rb.ymin + rb.height / 2) * h,
                    max(rb.width * w, rb.height * h), float(det.score[0]),
                )
                if not any(_same_face(box, other) for other in boxes):
                    boxes.append(box)
        return sorted(boxes, key=lambda b: -b.size)

    def mesh(self, image: np.ndarray, box: FaceBox, scale: float = MESH_CROP_SCALE) -> np.ndarray | None:
        """478 landmarks float32 [478,3] (pixels of `image`) of the face in `box`, or None."""
        affine = _crop_affine(box, MESH_INPUT, scale)
        crop = cv2.warpAffine(
            image, affine, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_AREA
            if affine[0, 0] < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
        )
        result = self._process(self._mesh, crop)
        if not result.multi_face_landmarks:
            return None
        pts = np.array(
            [(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], np.float64
        ) * MESH_INPUT
        k = affine[0, 0]
        out = np.empty_like(pts)
        out[:, 0] = (pts[:, 0] - affine[0, 2]) / k
        out[:, 1] = (pts[:, 1] - affine[1, 2]) / k
        out[:, 2] = pts[:, 2] / k
        return out.astype(np.float32)

    def faces(self, image: np.ndarray) -> list[np.ndarray]:
        """Meshes [478,3] of every face found in `image`, largest first."""
        found = []
        for box in self.detect(image):
            pts = self.mesh(image, box)
            if pts is not None:
                found.append(_refine(self, image, pts))
        return found


def _refine(landmarker: FaceLandmarker, image: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Measure again on a crop centred on the first measurement (tighter, steadier)."""
    again = landmarker.mesh(image, box_from_landmarks(pts))
    return pts if again is None else again


def _same_face(a: FaceBox, b: FaceBox) -> bool:
    return abs(a.cx - b.cx) < 0.5 * max(a.size, b.size) and abs(a.cy - b.cy) < 0.5 * max(a.size, b.size)


class FaceTracker:
    """Follows one face through a stream of frames.

    Each frame's mesh is measured on a crop around the previous frame's face;
    when the face is lost the whole frame is searched again.
    """

    def __init__(self, landmarker: FaceLandmarker) -> None:
        self._lm = landmarker
        self._box: FaceBox | None = None

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """Landmarks float32 [478,3] for `frame` (uint8 [H,W,3] RGB), or None."""
        pts = None
        if self._box is not None:
            pts = self._lm.mesh(frame, self._box)
        if pts is None:
            boxes = self._lm.detect(frame)
            if boxes:
                pts = self._lm.mesh(frame, boxes[0])
        self._box = None if pts is None else box_from_landmarks(pts)
        return pts
