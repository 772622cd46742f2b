"""Session recordings made the way the live app makes them, for the replay tests."""

from __future__ import annotations

from pathlib import Path

from ..live.config import EngineConfig
from ..live.engine import Engine
from ..live.recording import Recorder
from ..live.video_source import open_video
from .media import FPS, clip_frames

__all__ = ["record_video"]


def record_video(reconstructor, path: Path, frames: int, video: Path | None = None) -> Path:
    """A session recording at ``path``: the first ``frames`` frames of ``video`` (default: the
    generated clip of :mod:`.media`) through the live engine, at 25 frames/s."""
    source = iter(clip_frames(frames)) if video is None else open_video(video)[0]
    with Recorder(path, arch=reconstructor.paths.arch) as recorder, \
            Engine(EngineConfig(), reconstructor) as engine:
        engine.subscribe(recorder)
        for i in range(frames):
            frame = next(source, None)
            assert frame is not None, f"the video has fewer than {frames} frames"
            engine.submit(frame, captured_at=i / FPS)
            assert engine.drain(60)
    return path
