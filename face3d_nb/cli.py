"""The ``face3d-nb`` command: reconstruct faces in image and video files, and manage model files."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import cv2

from . import __version__
from .apps.serve import NotebookMissingError, Serving, add_serve_options, app_notebook, serve_app, serving
from .core.detail import LEVELS, DetailLevels
from .core.frames import ImageError, read_image
from .core.pipeline import Reconstructor, load_morphable_model, scale_face
from .live.config import parse_override
from .live.events import FrameResult
from .live.performance_log import PerformanceLog
from .live.settings_file import Settings, load_settings
from .live.video_source import feed_realtime, open_video
from .models.store import ARCHS, AssetError, ModelStore
from .models.uv_layout import UV_KEY, uv_layout
from .progress import counted, download_bars, print_line

log = logging.getLogger("face3d_nb")


class CliError(Exception):
    """A failure to report as one line (no traceback), with the exit status to use."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def _reconstructor(args):
    try:
        return Reconstructor.installed(args.arch, threads=args.threads, provider=args.provider or "cpu")
    except AssetError as exc:
        raise CliError(str(exc)) from None


def _open_video(path: Path):
    try:
        return open_video(path)
    except ImageError as exc:
        raise CliError(str(exc), status=2) from None


def _pose_text(pose) -> str:
    return f"yaw {pose.yaw:.1f} pitch {pose.pitch:.1f} roll {pose.roll:.1f}"


def cmd_image(args) -> int:
    from .core.export import draw_overlay, vertex_colors, write_ply, write_textured_obj, write_uv_textures  # noqa: PLC0415

    try:
        image = read_image(args.path)
    except ImageError as exc:
        raise CliError(str(exc), status=2) from None
    rec = _reconstructor(args)
    faces = rec(image)
    if not faces:
        log.warning("%s: no face found", args.path)
    meshes = [rec.vertices(f) for f in faces] if (args.obj or args.ply or args.uv_tex) else []
    colors = [vertex_colors(image, m) for m in meshes]
    try:  # the UV layout is fetched on first use; an OBJ cannot name files with spaces
        uv = uv_layout(ModelStore(), progress=download_bars()) if args.uv_tex and faces else None
        textures = write_uv_textures(args.uv_tex, image, meshes, rec.triangles, uv) if uv is not None else []
        if args.obj:
            write_textured_obj(args.obj, meshes, rec.triangles, image.shape[0], colors, uv, textures)
    except (AssetError, OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    if args.ply:
        write_ply(args.ply, meshes, rec.triangles, image.shape[0], colors)
    if args.overlay and not cv2.imwrite(str(args.overlay), draw_overlay(image, faces)):
        raise CliError(f"cannot write {args.overlay} (unknown image extension or unwritable path)")
    if args.json:
        print(json.dumps({"faces": [f.to_dict() for f in faces]}))
    else:
        model = "full BFM" if rec.model.full else "mean shape (bfm_noneck_v3.pkl not installed)"
        print(f"{args.path}: {len(faces)} face(s) [{rec.paths.arch} regressor, {model}]")
        for i, f in enumerate(faces, 1):
            print(f"  #{i} box {[round(float(v)) for v in f.box[:4]]} score {f.box[4]:.3f} {_pose_text(f.pose)}")
    return 0


def cmd_video(args) -> int:
    if not Path(args.path).is_file():
        raise CliError(f"{args.path}: no such file", status=2)
    if args.every < 1:
        raise CliError("--every must be at least 1", status=2)
    if args.live:
        return cmd_video_live(args)
    if args.config or args.set:
        raise CliError("--config and --set only apply with --live", status=2)
    frames, _fps = _open_video(args.path)
    results, index = [], -1
    try:
        rec = _reconstructor(args)
        for index, frame in enumerate(counted(frames, "frames", "frame")):
            if index % args.every == 0:
                faces = rec(frame)
                results.append({"frame": index, "faces": [f.to_dict() for f in faces]})
                if not args.json:
                    print_line(f"frame {index}: {len(faces)} face(s) {'; '.join(_pose_text(f.pose) for f in faces)}")
    finally:
        frames.close()
    if index < 0:
        raise CliError(f"{args.path}: no frame could be decoded", status=2)
    if args.json:
        print(json.dumps({"frames": results}))
    return 0


def _engine_config(args):
    """Engine settings: the --config file, then --arch/--threads/--provider/--every, then each --set; and the
    file's settings."""
    try:
        settings = load_settings(args.config) if args.config else Settings()
        config = settings.engine
        overrides = {k: v for k, v in (("arch", args.arch), ("threads", args.threads), ("provider", args.provider)) if v}
        if args.every != 1:
            overrides["frame_skip"] = args.every
        overrides.update(parse_override(text) for text in args.set)
        return config.replace(**overrides), settings
    except ValueError as exc:
        raise CliError(str(exc), status=2) from None


def cmd_video_live(args) -> int:
    """The video at its own frame rate through the live engine, as a camera would feed it."""
    from .live.engine import Engine  # noqa: PLC0415 - the threaded engine only for --live

    config, settings = _engine_config(args)
    if settings.verbose:
        log.setLevel(logging.DEBUG)
    frames, fps = _open_video(args.path)
    processed: dict[int, list[dict]] = {}

    def on_event(event) -> None:
        if not isinstance(event, FrameResult):
            return
        # In the video's pixels, as the per-frame path reports them.
        processed[event.seq] = [{**scale_face(t.face, 1 / event.scale).to_dict(), "track_id": t.track_id}
                                for t in event.faces]
        if not args.json:
            poses = "; ".join(f"#{t.track_id} {_pose_text(t.face.pose)}" for t in event.faces)
            print(f"frame {event.seq}: {len(event.faces)} face(s) {poses}", flush=True)

    engine = Engine(config)
    engine.subscribe(on_event)
    perf = PerformanceLog.attach(engine, settings.performance_log) if settings.performance_log else None
    try:
        engine.start()
        count = feed_realtime(engine.submit, frames, fps)
        engine.drain(timeout=60)
    except AssetError as exc:
        raise CliError(str(exc)) from None
    finally:
        frames.close()
        engine.stop()
        if perf is not None:
            perf.close()
            print(f"performance log: {perf.path} ({perf.lines} frames)", file=sys.stderr)
    if count == 0:
        raise CliError(f"{args.path}: no frame could be decoded", status=2)
    stats = engine.stats()
    if args.json:
        print(json.dumps({"frames": [{"frame": i, "faces": processed[i]} for i in sorted(processed)]}))
        log.info("%s", stats.summary())
    else:
        print(f"{args.path}: {count} frames at {fps:g} fps, {len(processed)} processed "
              f"({100 * len(processed) / count:.0f}%)")
        print(stats.summary())
    return 0


def cmd_export(args) -> int:
    from .core.export import write_obj, write_ply  # noqa: PLC0415
    from .live.recording import RecordingError, read_recording  # noqa: PLC0415

    try:
        _, frames = read_recording(args.path)
    except RecordingError as exc:
        raise CliError(str(exc), status=2) from None
    try:
        model = DetailLevels(load_morphable_model(ModelStore().resolve())).model(args.level)
    except AssetError as exc:
        raise CliError(str(exc)) from None
    write = write_obj if args.format == "obj" else write_ply
    args.out.mkdir(parents=True, exist_ok=True)
    for frame in counted(frames, "meshes", "file"):
        meshes = [model.vertices(f.params, f.roi_box) for f in frame.faces]
        write(args.out / f"frame_{frame.seq:06d}.{args.format}", meshes, model.triangles, frame.frame_shape[0])
    print(f"wrote {len(frames)} {args.format} file(s) to {args.out}")
    return 0


def cmd_models(args) -> int:
    store = ModelStore()
    if args.models_command == "info":
        print(f"model cache: {store.home}")
        for key, status, path in store.info():
            print(f"  {key:<18} {status:<10} {path}")
        arch = store.default_arch()
        print(f"default arch: {arch or 'none installed'}; "
              f"dense model: {'full BFM' if store.installed('bfm') else 'mean shape'}")
        return 0
    keys = store.keys_for(args.arch, bfm=not args.no_bfm, examples=not args.no_examples)
    try:
        if args.models_command == "fetch":
            new = store.fetch(keys, progress=download_bars())
            print(f"installed {len(new)} new file(s) in {store.home}")
        else:
            imported, missing = store.import_dir(args.dir, keys)
            uv = store.import_dir(args.dir, [UV_KEY])[0]  # optional: taken when there, else fetched on first use
            print(f"imported {len(imported)} file(s) into {store.home}" + (", and the UV layout" if uv else ""))
            if missing:
                print(f"not found in {args.dir}: {', '.join(missing)}")
    except AssetError as exc:
        raise CliError(str(exc)) from None
    return 0


def _serving(args) -> Serving:
    try:
        return serving(args.host, args.port, args.token, args.max_kernels)
    except ValueError as exc:
        raise CliError(str(exc), status=2) from None


def cmd_app(args) -> int:
    where = _serving(args)
    try:
        serve_app(where, open_browser=args.open, config=args.config)
    except NotebookMissingError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # the settings file, checked before serving
        raise CliError(str(exc), status=2) from None
    return 0


def cmd_replay(args) -> int:
    """Serve the replay notebook with Voila, the recording passed to its kernel in the environment."""
    from .apps.replay_app import ENV_DETAIL, ENV_FILE  # noqa: PLC0415
    from .live.recording import RecordingError, read_recording  # noqa: PLC0415

    where = _serving(args)
    try:
        _, frames = read_recording(args.path)
    except RecordingError as exc:
        raise CliError(str(exc), status=2) from None
    try:
        ModelStore().resolve()
        notebook = app_notebook("replay.ipynb")
    except (AssetError, NotebookMissingError) as exc:
        raise CliError(str(exc)) from None
    print(f"replaying {args.path} ({len(frames)} frames) at {where.urls()[0]}", flush=True)
    # The kernels Voila starts inherit this process's environment.
    os.environ[ENV_FILE] = str(args.path.resolve())
    os.environ[ENV_DETAIL] = args.detail
    serve_app(where, open_browser=args.open, notebook=notebook)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="face3d-nb", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def engine_options(p):
        p.add_argument("--arch", choices=ARCHS, help="regressor (default: mb1 when installed, else mb05)")
        p.add_argument("--threads", type=int, default=0, help="detector threads (0: all cores; the regressor uses one)")
        p.add_argument("--provider", choices=("cpu", "cuda"),
                       help="ONNX Runtime execution provider (default: cpu, or the --config file's; cuda needs "
                            "onnxruntime-gpu and falls back to the CPU with a warning without it)")
        p.add_argument("--json", action="store_true", help="print results as JSON")

    image = sub.add_parser("image", help="reconstruct the faces in an image file")
    image.add_argument("path", type=Path)
    engine_options(image)
    image.add_argument("--obj", type=Path, help="write the dense meshes as OBJ with vertex colours")
    image.add_argument("--ply", type=Path, help="write the dense meshes as binary PLY")
    image.add_argument("--overlay", type=Path, help="write the image with boxes, landmarks and pose")
    image.add_argument("--uv-tex", type=Path, metavar="OUT.png", help="write UV textures: OUT.png, OUT-2.png, ...")
    image.set_defaults(func=cmd_image)

    video = sub.add_parser("video", help="reconstruct the faces in every frame of a video file")
    video.add_argument("path", type=Path)
    engine_options(video)
    video.add_argument("--every", type=int, default=1, metavar="N", help="process every N-th frame")
    video.add_argument("--live", action="store_true",
                       help="play the video at its frame rate through the live engine (tracking, smoothing; "
                            "frames it cannot keep up with are dropped) and print its statistics")
    video.add_argument("--config", type=Path, help="settings file (.toml, .yaml or .yml); the app's keys are ignored")
    video.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one live engine setting, e.g. --set smoothing=0.8 (repeatable)")
    video.set_defaults(func=cmd_video)

    models = sub.add_parser("models", help="download, import and list model files")
    msub = models.add_subparsers(dest="models_command", required=True)
    for name, text in (("fetch", "download, verify and convert"), ("import", "install from a local folder")):
        p = msub.add_parser(name, help=text)
        if name == "import":
            p.add_argument("dir", type=Path, help="folder laid out like upstream 3DDFA_V2 or shared/assets")
        p.add_argument("--arch", choices=ARCHS, help="only this regressor (default: both)")
        p.add_argument("--no-bfm", action="store_true", help="skip the Basel Face Model (academic use only)")
        p.add_argument("--no-examples", action="store_true", help="skip upstream's sample photos and clip (1.9 MB)")
    msub.add_parser("info", help="list installed and missing files")
    models.set_defaults(func=cmd_models)

    export = sub.add_parser("export", help="turn a recorded session into one mesh file per frame")
    export.add_argument("path", type=Path, help="a recording (.jsonl) saved by the app")
    export.add_argument("--out", type=Path, default=Path("meshes"), help="output folder (default: meshes)")
    export.add_argument("--format", choices=("obj", "ply"), default="obj")
    export.add_argument("--level", choices=tuple(LEVELS), default="full", help="mesh detail")
    export.set_defaults(func=cmd_export)

    app = sub.add_parser("app", help="serve the live camera app with Voila")
    add_serve_options(app, "app")
    app.add_argument("--config", type=Path, help="settings file (.toml, .yaml or .yml; ours or the seed's sections)")
    app.set_defaults(func=cmd_app)

    replay = sub.add_parser("replay", help="play a recorded session back into the 3D viewer (served with Voila)")
    replay.add_argument("path", type=Path, help="a recording (.jsonl) saved by the app")
    replay.add_argument("--detail", choices=tuple(LEVELS), default="full", help="mesh detail")
    add_serve_options(replay, "replay")
    replay.set_defaults(func=cmd_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="face3d-nb: %(message)s")
    try:
        return args.func(args)
    except CliError as exc:
        print(f"face3d-nb: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
