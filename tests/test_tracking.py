"""Tracking on the real video and photos: stable ids, few detections, losing and re-acquiring faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from face3d_nb.core.regressor import roi_box_from_bbox
from face3d_nb.core.tracking import Tracker, iou, landmark_box, visible_share
from face3d_nb.testing.assets import IMAGES, VIDEO


@pytest.fixture
def video(request, face_clip):
    """The test clip at 640x360, as the engine sees it with its default input cap: obama.mp4 for
    tests of tracking quality (marked real_assets), else the generated clip."""
    frames = []
    if request.node.get_closest_marker("real_assets"):
        capture = cv2.VideoCapture(str(VIDEO))
        while (frame := capture.read()[1]) is not None:
            frames.append(frame)
        capture.release()
    else:
        frames = face_clip
    frames = [cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA) for frame in frames]
    assert len(frames) == 55
    return frames


def _centre(face) -> np.ndarray:
    return face.landmarks[:, :2].mean(axis=0)


def test_box_helpers():
    assert iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(1 / 3)
    assert iou(np.array([0, 0, 10, 10]), np.array([20, 20, 30, 30])) == 0.0
    assert visible_share(np.array([-5, 0, 5, 10]), np.array([0, 0, 100, 100])) == pytest.approx(0.5)
    np.testing.assert_array_equal(landmark_box(np.array([[1, 5, 0], [3, 2, 9]])), [1, 2, 3, 5])


@pytest.mark.real_assets
def test_one_track_through_the_video_with_periodic_detection(reconstructor, video):
    tracker = Tracker(reconstructor, detect_interval=30)
    steps = [tracker.step(frame) for frame in video]
    assert all(len(s.faces) == 1 for s in steps)
    assert {s.faces[0][0] for s in steps} == {1}
    assert [i for i, s in enumerate(steps) if s.detected] == [0, 30]
    assert all(s.detect_ms > 0 for s in steps if s.detected)
    assert all(s.detect_ms == 0 and s.regress_ms > 0 for s in steps if not s.detected)
    tracked = [s.faces[0][1] for s in steps]
    assert all(np.isnan(f.box[4]) for f, s in zip(tracked, steps) if not s.detected)
    assert all(f.box[4] > 0.5 for f, s in zip(tracked, steps) if s.detected)

    # Following the landmarks stays on the face: compare with detecting afresh in every frame.
    error = []
    for frame, face in zip(video, tracked):
        box = reconstructor.detector(frame)[0]
        (fresh,) = reconstructor.faces(frame, box[None], [roi_box_from_bbox(box)])
        size = np.ptp(fresh.landmarks[:, 0])
        error.append(np.linalg.norm(face.landmarks[:, :2] - fresh.landmarks[:, :2], axis=1).mean() / size)
    assert max(error) < 0.08, f"tracked landmarks off by up to {max(error):.1%} of the face width"
    # ...and the face really moves in this clip, so this is not a still image in disguise.
    assert np.linalg.norm(_centre(tracked[-1]) - _centre(tracked[0])) > 50


def test_face_leaving_ends_the_track_and_a_new_one_starts(reconstructor, video):
    black = np.zeros_like(video[0])
    frames = video[:20] + [black] * 5 + video[20:]
    tracker = Tracker(reconstructor, detect_interval=30)
    steps = [tracker.step(frame) for frame in frames]
    ids = [[track_id for track_id, _ in s.faces] for s in steps]
    assert ids[:20] == [[1]] * 20
    # The first black frame already ends the track: the regressor's output collapses, the track
    # is doubtful, the detector runs on that same frame and finds nobody.
    assert ids[20:25] == [[]] * 5
    assert all(s.detected for s in steps[20:26])
    assert ids[25:] == [[2]] * len(video[20:])


def _shifted(image: np.ndarray, dx: int, width: int) -> np.ndarray:
    canvas = np.zeros((image.shape[0], width, 3), np.uint8)
    canvas[:, dx : dx + image.shape[1]] = image
    return canvas


@pytest.mark.real_assets
def test_two_faces_keep_two_ids_while_moving(reconstructor):
    photo = cv2.imread(str(IMAGES["trump_hillary"]))
    photo = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    frames = [_shifted(photo, 6 * i, photo.shape[1] + 6 * 30) for i in range(30)]
    tracker = Tracker(reconstructor, detect_interval=10)
    steps = [tracker.step(frame) for frame in frames]
    assert all(len(s.faces) == 2 for s in steps)
    assert {tuple(sorted(i for i, _ in s.faces)) for s in steps} == {(1, 2)}
    assert sum(s.detected for s in steps) == 3
    # Each id stays on its person: its face moves with the photo, 6 px a frame.
    for track_id in (1, 2):
        xs = np.array([_centre(dict(s.faces)[track_id])[0] for s in steps])
        np.testing.assert_allclose(np.diff(xs), 6, atol=3)
    first = dict(steps[0].faces)
    assert abs(_centre(first[1])[0] - _centre(first[2])[0]) > 100


@pytest.mark.real_assets
def test_a_face_hidden_by_another_loses_its_track(reconstructor):
    """A second copy of the photo slides over the first: the covered face's track ends (doubtful,
    re-detected) and the face in front keeps its id."""
    photo = cv2.imread(str(IMAGES["JianzhuGuo"]))
    photo = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    width = photo.shape[1]
    tracker = Tracker(reconstructor, detect_interval=1000)
    steps = []
    for i in range(45):
        canvas = np.zeros((photo.shape[0], 640, 3), np.uint8)
        canvas[:, :width] = photo
        x = max(0, 400 - 10 * i)
        canvas[:, x : x + width] = photo
        steps.append(tracker.step(canvas))
    ids = [[track_id for track_id, _ in s.faces] for s in steps]
    assert ids[:20] == [[1, 2]] * 20
    assert ids[-1] == [2]
    assert sum(s.detected for s in steps) == 2, "one detection to start, one when the track became doubtful"
    front = [dict(s.faces)[2] for s in steps]
    np.testing.assert_allclose(np.diff([_centre(f)[0] for f in front[:40]]), -10, atol=3)


@pytest.mark.real_assets
def test_max_faces_keeps_existing_tracks_first(reconstructor):
    photo = cv2.imread(str(IMAGES["trump_hillary"]))
    tracker = Tracker(reconstructor, detect_interval=1, max_faces=1)
    steps = [tracker.step(photo) for _ in range(3)]
    assert [[i for i, _ in s.faces] for s in steps] == [[1], [1], [1]]
    tracker.max_faces = 2
    assert [i for i, _ in tracker.step(photo).faces] == [1, 2]


def test_reset_and_frame_size_change_start_again_from_a_detection(reconstructor, video):
    tracker = Tracker(reconstructor, detect_interval=30)
    assert tracker.step(video[0]).detected
    assert not tracker.step(video[1]).detected
    tracker.reset()
    assert tracker.track_ids == ()
    step = tracker.step(video[2])
    assert step.detected and [i for i, _ in step.faces] == [2]
    small = cv2.resize(video[3], (480, 270), interpolation=cv2.INTER_AREA)
    step = tracker.step(small)
    assert step.detected and [i for i, _ in step.faces] == [3]


def test_tiny_faces_are_not_tracked(reconstructor, video):
    tracker = Tracker(reconstructor, detect_interval=30, min_face_size=400)
    steps = [tracker.step(frame) for frame in video[:5]]
    # Every frame finds the face again but the track never survives to the next frame.
    assert all(s.detected for s in steps)
