"""End-to-end `talkhead.animate` on a real portrait and a driving clip with KNOWN motion.

The driving clip is the portrait itself moved by known similarity transforms
(see conftest). With the first driving frame as the reference (it is the
identity), the animated face must follow those transforms: we measure the
output's landmarks and compare them with the portrait's landmarks mapped by
each frame's known affine.
"""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

import talkhead
from talkhead import AnimateOptions
from talkhead.face.pose import STABLE
from talkhead.io.video import iter_frames

from conftest import apply_affine, write_frames

# Errors are mean distances over the STABLE points, relative to the outer-eye-
# corner distance (points 33, 263; ~61 px on the astronaut).
# Measured: mediapipe re-measuring the driving frames themselves is off by
# 0.7 % (max 1.1 %); the animated output (size 256) by 1.6 % mean, 1.9 % max
# per frame, while leaving the face still would be off by 25 % on the frames
# rotated more than 3 degrees. Head pose not transferred (parts=mouth): output
# stays within 0.8 % (max 1.0 %) of the portrait's landmarks.
FOLLOW_MEAN_TOL = 0.04      # mean over frames
FOLLOW_FRAME_TOL = 0.06     # any single frame
BASELINE_RATIO = 0.2        # animated error must be < 20 % of the static baseline's
STILL_TOL = 0.03            # parts=mouth: mean distance to the portrait's own landmarks
ROTATED = 3.0               # degrees: frames counted as "rotated"


def eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[33, :2] - landmarks[263, :2]))


def stable_error(measured: np.ndarray, expected: np.ndarray, unit: float) -> float:
    """Mean distance over the stable points, in units of `unit` pixels."""
    return float(np.linalg.norm(measured[STABLE, :2] - expected[STABLE, :2], axis=1).mean() / unit)


def output_landmarks(path, landmarker) -> list[np.ndarray]:
    found = []
    for frame in iter_frames(path):
        faces = landmarker.faces(frame)
        assert faces, "no face found in an output frame"
        found.append(faces[0])
    return found


@pytest.fixture(scope="module")
def animated(tmp_path_factory, astronaut_png, driving_clip):
    out = tmp_path_factory.mktemp("animate") / "out.mp4"
    result = talkhead.animate(astronaut_png, driving_clip.path, out, AnimateOptions(size=256, reference="first"))
    return out, result


def test_output_follows_known_motion(animated, driving_clip, source_landmarks, landmarker):
    out, _ = animated
    measured = output_landmarks(out, landmarker)
    unit = eye_distance(source_landmarks)
    n = min(len(measured), len(driving_clip))
    errors = np.array([stable_error(measured[t], apply_affine(driving_clip.affines[t], source_landmarks), unit)
                       for t in range(n)])
    static = np.array([stable_error(source_landmarks, apply_affine(driving_clip.affines[t], source_landmarks),
                                    unit) for t in range(n)])
    rotated = driving_clip.angles[:n] > ROTATED
    assert rotated.sum() > n // 2
    assert errors.mean() < FOLLOW_MEAN_TOL, errors
    assert errors.max() < FOLLOW_FRAME_TOL, errors
    assert errors[rotated].mean() < BASELINE_RATIO * static[rotated].mean(), (errors[rotated].mean(),
                                                                             static[rotated].mean())


def test_output_matches_driving_clip(animated, driving_clip):
    out, result = animated
    with av.open(str(out)) as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == 1
        video = container.streams.video[0]
        assert float(video.average_rate) == pytest.approx(driving_clip.fps, rel=1e-3)
        frames = sum(1 for _ in container.decode(video=0))
    assert abs(frames - len(driving_clip)) <= 1
    first = next(iter_frames(out))
    assert first.shape == (512, 512, 3)  # the whole portrait, face pasted back
    assert result.frames == frames
    assert result.fps == pytest.approx(driving_clip.fps)
    assert (result.width, result.height) == (512, 512)
    assert result.audio is True
    assert result.duration == pytest.approx(result.frames / result.fps)
    assert result.reference_frame == 0
    assert result.lost_frames == 0 and result.warnings == ()
    assert result.output == str(out)


def test_crop_only_is_face_crop(tmp_path, astronaut_png, driving_clip):
    out = tmp_path / "crop.mp4"
    result = talkhead.animate(astronaut_png, driving_clip.path, out,
                              AnimateOptions(size=256, reference="first", crop_only=True, max_seconds=0.4))
    frames = list(iter_frames(out))
    assert frames[0].shape == (256, 256, 3)
    assert (result.width, result.height) == (256, 256)
    assert abs(len(frames) - 10) <= 1 and result.frames == len(frames)
    assert result.audio is True


def test_mouth_only_keeps_head_still(tmp_path, astronaut_png, driving_clip, source_landmarks, landmarker):
    out = tmp_path / "mouth.mp4"
    talkhead.animate(astronaut_png, driving_clip.path, out,
                     AnimateOptions(size=256, reference="first", parts=frozenset({"mouth"})))
    unit = eye_distance(source_landmarks)
    frames = list(iter_frames(out))
    rotated = np.flatnonzero(driving_clip.angles > 8)  # the frames where the driving head turns most
    errors = np.array([stable_error(landmarker.faces(frames[t])[0], source_landmarks, unit) for t in rotated])
    moved = np.array([stable_error(apply_affine(driving_clip.affines[t], source_landmarks), source_landmarks, unit)
                      for t in rotated])
    assert errors.mean() < STILL_TOL, errors
    assert moved.mean() > 5 * STILL_TOL  # the driving head did move a lot there


def test_saved_motion_round_trip_and_animate(tmp_path, astronaut_png, driving_clip):
    from talkhead.drivers.video import motion_from_video
    from talkhead.io.motionfile import load_motion, save_motion

    measured = motion_from_video(driving_clip.path)
    assert measured.frames == len(measured.motion) and abs(measured.frames - len(driving_clip)) <= 1
    assert measured.lost == 0
    path = tmp_path / "m.npz"
    save_motion(path, measured.motion)
    loaded = load_motion(path)
    assert loaded.fps == measured.motion.fps
    for name, array in measured.motion.to_arrays().items():
        np.testing.assert_array_equal(loaded.to_arrays()[name], array, err_msg=name)
    out = tmp_path / "from-npz.mp4"
    result = talkhead.animate(astronaut_png, path, out, AnimateOptions(size=256, reference="first"))
    assert result.frames == len(loaded)
    assert result.audio is False
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 0
        assert sum(1 for _ in container.decode(video=0)) == len(loaded)


BLANKED = range(20, 24)  # driving frames replaced by flat grey


def test_frames_without_face_are_bridged(tmp_path, astronaut_png, driving_frames):
    frames = [np.full_like(f, 128) if i in BLANKED else f for i, f in enumerate(driving_frames[0])]
    clip = write_frames(tmp_path / "gaps.mp4", frames)
    out = tmp_path / "gaps-out.mp4"
    result = talkhead.animate(astronaut_png, clip, out, AnimateOptions(size=256, reference="first"))
    assert abs(result.lost_frames - len(BLANKED)) <= 1
    assert result.warnings and any("no face" in w and str(result.lost_frames) in w for w in result.warnings)
    assert abs(result.frames - len(frames)) <= 1
    # the bridged frames still show the (interpolated) face
    output = list(iter_frames(out))
    assert len(output) == result.frames
    gray = cv2.cvtColor(output[BLANKED[1]], cv2.COLOR_RGB2GRAY)
    assert gray.std() > 20
