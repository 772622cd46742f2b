"""Tracking: stable ids, few detections, losing and re-acquiring faces, shot cuts, faces that enter,
confirming new faces; on the real video and photos, and on generated pictures for the bookkeeping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from face3d_nb.core.regressor import roi_box_from_bbox
from face3d_nb.core.shot_cut import ShotCutDetector, colour_histogram
from face3d_nb.core.track_match import continues
from face3d_nb.core.tracking import Tracker, iou, landmark_box, visible_share
from face3d_nb.testing.assets import IMAGES, VIDEO
from face3d_nb.testing.media import face_picture


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


def test_a_detection_continues_a_track_it_overlaps_or_whose_centre_it_holds_at_a_like_size():
    track = np.array([100.0, 100.0, 160.0, 180.0])
    assert continues(np.array([95, 95, 165, 185, 0.9]), track, 0.3)
    larger = np.array([60, 60, 230, 230, 0.9])  # 2.1x the size, overlap 0.17, holds the centre
    assert iou(larger, track) < 0.3 and continues(larger, track, 0.3)
    assert not continues(larger, track, 0.3, centred=False)
    assert not continues(np.array([0, 0, 300, 300, 0.9]), track, 0.3), "3.75x the size"
    assert not continues(np.array([140, 150, 300, 310, 0.9]), track, 0.3), "the centre is outside"


@pytest.mark.real_assets
def test_one_track_through_the_video_with_periodic_detection(reconstructor, video):
    # One face wanted: with it tracked there is nothing to search for, only the periodic detection.
    tracker = Tracker(reconstructor, detect_interval=30, max_faces=1)
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


@pytest.mark.parametrize(("gap", "after"), [(5, 1), (12, 2)])
def test_a_face_gone_for_up_to_max_misses_frames_keeps_its_id(reconstructor, video, gap, after):
    black = np.zeros_like(video[0])
    frames = video[:20] + [black] * gap + video[20:]
    tracker = Tracker(reconstructor, detect_interval=30, max_misses=10)
    steps = [tracker.step(frame) for frame in frames]
    ids = [[track_id for track_id, _ in s.faces] for s in steps]
    assert ids[:20] == [[1]] * 20
    # The first black frame already loses the face: the regressor's output collapses, the track is
    # doubtful, the detector runs on that same frame and finds nobody. The missing face is not
    # shown, and the detector runs on every frame until it is back or its track has ended.
    assert ids[20 : 20 + gap] == [[]] * gap
    assert all(s.detected for s in steps[20 : 21 + gap])
    assert tracker.track_ids == (after,)
    assert ids[20 + gap :] == [[after]] * len(video[20:])


def _shifted(image: np.ndarray, dx: int, width: int) -> np.ndarray:
    canvas = np.zeros((image.shape[0], width, 3), np.uint8)
    canvas[:, dx : dx + image.shape[1]] = image
    return canvas


@pytest.mark.real_assets
def test_two_faces_keep_two_ids_while_moving(reconstructor):
    photo = cv2.imread(str(IMAGES["trump_hillary"]))
    photo = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    frames = [_shifted(photo, 6 * i, photo.shape[1] + 6 * 30) for i in range(30)]
    tracker = Tracker(reconstructor, detect_interval=10, max_faces=2)
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
    tracker = Tracker(reconstructor, detect_interval=1000, max_faces=2)
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
    # One detection to start; then, from the frame the covered face's track became doubtful, one a
    # frame while it is missing, until it ends.
    doubtful = ids.index([2])
    assert [i for i, s in enumerate(steps) if s.detected] == [0, *range(doubtful, doubtful + tracker.max_misses + 1)]
    assert tracker.track_ids == (2,)
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
    assert step.detected and tracker.track_ids == ()
    # The smaller face scores below confirm_score: a second detection in a row confirms it.
    assert reconstructor.detector(small)[0, 4] < tracker.confirm_score
    step = tracker.step(small)
    assert step.detected and [i for i, _ in step.faces] == [3]


def test_tiny_faces_are_not_tracked(reconstructor, video):
    tracker = Tracker(reconstructor, detect_interval=30, min_face_size=400)
    steps = [tracker.step(frame) for frame in video[:5]]
    # Every frame finds the face again but the track never survives to the next frame.
    assert all(s.detected for s in steps)


def _ids(steps) -> list[list[int]]:
    return [[track_id for track_id, _ in s.faces] for s in steps]


def _tinted(image: np.ndarray, bgr: tuple[int, int, int]) -> np.ndarray:
    """The same picture in other colours: a new shot of the same scene."""
    return cv2.add(image, (*bgr, 0))


class _Recording:
    """The reconstructor, recording the size of every frame its detector sees."""

    def __init__(self, reconstructor):
        self._real = reconstructor
        self.shapes: list[tuple[int, int]] = []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def detector(self, image):
        self.shapes.append(image.shape[:2])
        return self._real.detector(image)


def test_shot_cut_scores_change_of_colours_not_motion():
    picture = face_picture(640, 360, ((0.3, 0.5),))
    moved = face_picture(640, 360, ((0.7, 0.5),), seed=1)
    hist = colour_histogram(picture)
    assert hist.shape == (64,) and hist.sum() == pytest.approx(1.0)
    cuts = ShotCutDetector()
    assert cuts.score(picture) == 0.0, "the first frame has nothing to differ from"
    assert cuts.score(picture) == 0.0
    assert cuts.score(moved) < 0.05
    assert cuts.score(_tinted(moved, (0, 0, 80))) > 0.5
    cuts.reset()
    assert cuts.score(255 - picture) == 0.0


def test_a_cut_ends_the_tracks_unless_a_face_clearly_continues_one(reconstructor):
    left = face_picture(640, 360, ((0.3, 0.5),))
    right = _tinted(face_picture(640, 360, ((0.7, 0.5),)), (80, 0, 0))
    frames = [left, left, _tinted(left, (0, 0, 80)), _tinted(left, (0, 0, 80)), right, right]
    tracker = Tracker(reconstructor)
    steps = [tracker.step(frame) for frame in frames]
    assert [s.cut for s in steps] == [False, False, True, False, True, False]
    assert all(s.detected and not s.searched for s in steps if s.cut)
    # Across the first cut the face stays where it was: the same face, the same track. Across the
    # second a face elsewhere is another face, and the left face's track ends there (not missing).
    assert _ids(steps) == [[1], [1], [1], [1], [2], [2]]
    assert tracker.track_ids == (2,)
    without = Tracker(reconstructor, cut_threshold=1.0)
    assert not any(without.step(frame).cut for frame in frames)


def test_a_marginal_face_shows_once_confirmed_and_costs_no_id_before(reconstructor):
    marginal, sure = face_picture(640, 360, size=0.4), face_picture(640, 360, size=0.5)
    blank = face_picture(640, 360, centres=())
    assert 0.5 < reconstructor.detector(marginal)[0, 4] < 0.9 < reconstructor.detector(sure)[0, 4]
    tracker = Tracker(reconstructor, confirm_hits=2, confirm_score=0.9)
    steps = [tracker.step(frame) for frame in (marginal, blank, blank, marginal, marginal, marginal)]
    # Seen once and gone: never shown, no id. Seen twice in a row: shown from the second frame, id 1.
    assert _ids(steps) == [[], [], [], [], [1], [1]]
    assert [s.detected for s in steps] == [True, True, True, True, True, False]
    assert _ids([Tracker(reconstructor).step(sure)]) == [[1]], "a sure detection is confirmed at once"
    assert _ids([Tracker(reconstructor, confirm_hits=1).step(marginal)]) == [[1]]


def test_a_face_that_enters_is_found_by_a_search_pass_at_half_size(reconstructor):
    one = face_picture(1280, 720, ((0.25, 0.5),))
    two = face_picture(1280, 720, ((0.25, 0.5), (0.75, 0.5)))
    frames = [one] * 6 + [two] * 6
    recording = _Recording(reconstructor)
    tracker = Tracker(recording, search_interval=4, search_scale=0.5, detect_interval=30)
    steps = [tracker.step(frame) for frame in frames]
    assert _ids(steps) == [[1]] * 8 + [[1, 2]] * 4
    assert [i for i, s in enumerate(steps) if s.detected] == [0, 4, 8]
    assert [i for i, s in enumerate(steps) if s.searched] == [4, 8]
    assert recording.shapes == [(720, 1280), (360, 640), (360, 640)]
    # Without searching, the face that entered waits for the periodic detection.
    tracker = Tracker(reconstructor, search_interval=0, detect_interval=10)
    steps = [tracker.step(frame) for frame in frames]
    assert [i for i, s in enumerate(steps) if s.detected] == [0, 10]
    assert _ids(steps) == [[1]] * 10 + [[1, 2]] * 2
    # With max_faces tracked there is nothing to look for.
    tracker = Tracker(reconstructor, search_interval=4, max_faces=1, detect_interval=30)
    steps = [tracker.step(frame) for frame in frames]
    assert [i for i, s in enumerate(steps) if s.detected] == [0]
    assert _ids(steps) == [[1]] * len(frames)
