"""Reliability: downloads and installed files against hostile servers, racing kernels and planted files.

Each test runs a real HTTP server on loopback (:class:`~face3d_nb.testing.file_host.FileHost`) that
misbehaves in one way, serving small synthetic files whose pins the test puts in the store's
manifest; nothing here needs the real model files.
"""

import hashlib
import os
import subprocess
import sys
import threading
import urllib.request

import cv2
import numpy as np
import pytest

from face3d_nb.apps.live_app import FaceApp
from face3d_nb.live.config import EngineConfig
from face3d_nb.models.store import AssetError, ModelsMissingError, ModelStore, git_blob_sha1, load_manifest
from face3d_nb.testing.file_host import FileHost, send
from face3d_nb.testing.polling import wait_for
from face3d_nb.testing.synthetic_models import install_synthetic_models
from face3d_nb.widgets.model_download import ModelDownload

DATA = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
HAVE = 100_000  # bytes of DATA already in the .part when a resume is tested


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def serve(monkeypatch):
    """Start a :class:`FileHost` with a reply function; the store's upstream URLs point at it."""
    started = []

    def start(reply) -> FileHost:
        server = FileHost(reply)
        started.append(server)
        monkeypatch.setenv("FACE3D_URL_3DDFA_V2", server.url + "/{path}")
        return server

    yield start
    for server in started:
        server.close()


def pinned_store(home, key: str = "tri", data: bytes = DATA) -> ModelStore:
    """A store whose manifest pins ``key`` to ``data``."""
    store = ModelStore(home)
    store.files[key] = {**store.files[key], "sha1": blob_sha1(data), "size": len(data)}
    return store


def half_downloaded(store: ModelStore):
    """The .part of ``tri`` holding the first HAVE bytes of DATA, as an interrupted download leaves it."""
    part = store.raw_path("tri").with_name("tri.pkl.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:HAVE])
    return part


def stall_midway(handler, server) -> None:
    """Send the first HAVE bytes of DATA, then the rest once ``server.release`` is set."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(DATA)))
    handler.end_headers()
    handler.wfile.write(DATA[:HAVE])
    handler.wfile.flush()
    server.release.wait(60)
    handler.wfile.write(DATA[HAVE:])


# -- (b) every file has a size limit, and a stream past it stops there ----------------------------
def test_every_manifest_file_pins_its_size():
    files = load_manifest()["files"]
    assert {key: entry["size"] for key, entry in files.items() if not isinstance(entry["size"], int)} == {}


def test_an_endless_stream_stops_at_the_pinned_size(serve, tmp_path):
    def endless(handler, server):
        # Close-delimited (no Content-Length) and endless; capped only so that a client without a
        # limit fails here instead of filling the disk.
        handler.send_response(200)
        handler.end_headers()
        for _ in range(8_000_000 // len(DATA)):
            handler.wfile.write(DATA)

    serve(endless)
    store = pinned_store(tmp_path)
    with pytest.raises(AssetError, match=f"sent more than the {len(DATA)} bytes of the pinned file"):
        store.fetch(["tri"])
    assert not store.installed("tri") and not list(tmp_path.rglob("*.part"))


def test_a_reply_announcing_more_than_the_pinned_size_is_refused(serve, tmp_path):
    serve(lambda handler, server: send(handler, DATA + DATA))
    store = pinned_store(tmp_path)
    with pytest.raises(AssetError, match=f"offers {2 * len(DATA)} bytes but the pinned file has {len(DATA)}"):
        store.fetch(["tri"])
    assert not store.installed("tri") and not list(tmp_path.rglob("*.part"))
    serve(lambda handler, server: send(handler, DATA))  # the next good server is served
    assert store.fetch(["tri"]) == ["tri"]


# -- (c) a 206 is appended only when its Content-Range continues exactly where the .part ends -------
@pytest.mark.parametrize("reply", ["honest", "from the start", "no Content-Range", "range says resumed, body is whole"])
def test_a_resume_is_appended_only_after_an_honest_content_range(serve, tmp_path, reply):
    size = len(DATA)

    def resume(handler, server):
        if handler.headers.get("Range") is None:
            send(handler, DATA)
        elif reply == "honest":
            send(handler, DATA[HAVE:], 206, Content_Range=f"bytes {HAVE}-{size - 1}/{size}")
        elif reply == "from the start":
            send(handler, DATA, 206, Content_Range=f"bytes 0-{size - 1}/{size}")
        elif reply == "no Content-Range":
            send(handler, DATA, 206)
        else:
            send(handler, DATA, 206, Content_Range=f"bytes {HAVE}-{size - 1}/{size}")

    server = serve(resume)
    store = pinned_store(tmp_path)
    part = half_downloaded(store)
    assert store.fetch(["tri"]) == ["tri"]
    # Any reply but the honest one is dropped and the whole file asked for.
    assert [rng for _, rng in server.requests] == [f"bytes={HAVE}-", *([] if reply == "honest" else [None])]
    assert store.raw_path("tri").read_bytes() == DATA and not part.exists()


# -- (d) https only ---------------------------------------------------------------------------------
def test_only_https_or_loopback_http_urls_are_fetched():
    from face3d_nb.models.download import check_url

    for url in ("https://raw.githubusercontent.com/x", "http://127.0.0.1:8000/x", "http://localhost/x",
                "http://[::1]:9/x"):
        check_url(url)
    for url in ("http://example.com/x", "http://10.0.0.1/x", "file:///etc/passwd", "ftp://example.com/x",
                "https:///x"):
        with pytest.raises(AssetError, match="https only"):
            check_url(url)


def test_a_plain_http_mirror_is_refused_before_connecting(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE3D_URL_3DDFA_V2", "http://models.example.invalid/{path}")
    with pytest.raises(AssetError, match="refusing http://models.example.invalid/configs/tri.pkl: .*https only"):
        ModelStore(tmp_path).fetch(["tri"])


def test_a_redirect_to_plain_http_is_refused(serve, tmp_path):
    from face3d_nb.models.download import HttpsOnlyRedirects

    def redirect(handler, server):
        handler.send_response(302)
        handler.send_header("Location", "http://models.example.invalid/configs/tri.pkl")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    serve(redirect)
    with pytest.raises(AssetError, match="refusing a redirect from .* to http://models.example.invalid/.*https only"):
        pinned_store(tmp_path).fetch(["tri"])
    # From https even a loopback http target is refused (no https server here: the handler is asked
    # directly, as urllib asks it).
    request = urllib.request.Request("https://raw.githubusercontent.com/x")
    with pytest.raises(AssetError, match="refusing a redirect from https://raw.githubusercontent.com/x to http://"):
        HttpsOnlyRedirects().redirect_request(request, None, 302, "Found", {}, "http://127.0.0.1:8000/x")
    assert HttpsOnlyRedirects().redirect_request(request, None, 302, "Found", {}, "https://example.org/x") is not None


# -- (a) two processes fetching one file ---------------------------------------------------------
FETCHER = """
import logging, sys
from face3d_nb.models.store import ModelStore
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
store = ModelStore(sys.argv[1])
store.files["tri"] = {**store.files["tri"], "sha1": sys.argv[2], "size": int(sys.argv[3])}
print(store.fetch(["tri"]), flush=True)
"""


def test_two_processes_fetching_one_file_install_it_once(serve, tmp_path):
    server = serve(stall_midway)  # released once the second fetcher has come and is waiting
    command = [sys.executable, "-c", FETCHER, str(tmp_path), blob_sha1(DATA), str(len(DATA))]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        wait_for(lambda: server.requests, 60, "the first fetcher's request")
        second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(second.stderr), daemon=True)
        reader.start()
        wait_for(lambda: any("waiting for another download of tri.pkl" in line for line in lines)
                 or len(server.requests) > 1, 60, "the second fetcher to wait or to download too")
        assert len(server.requests) == 1
        server.release.set()
        out_first, err_first = first.communicate(timeout=60)
        second.wait(timeout=60)
        reader.join(timeout=60)
        out_second = second.stdout.read()
    finally:
        server.release.set()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert first.returncode == 0 and second.returncode == 0, (err_first, lines)
    assert out_first.strip() == "['tri']" and out_second.strip() == "[]"  # one install, the other waited
    assert len(server.requests) == 1
    final = tmp_path / "upstream" / "configs" / "tri.pkl"
    assert final.read_bytes() == DATA and not list(tmp_path.rglob("*.part"))


# -- (e) a file planted in a cache others can write is refused when loaded ----------------------------
@pytest.fixture
def shared_home(tmp_path):
    """The synthetic models in a world-writable cache, pinned in the store's manifest as they are."""
    store = install_synthetic_models(tmp_path / "shared")
    for key in ("faceboxes", "mb05", "param_mean_std", "tri", "indices", "u_shp", "u_exp", "keypoints_sim"):
        path = store.raw_path(key)
        store.files[key] = {**store.files[key], "sha1": git_blob_sha1(path), "size": path.stat().st_size}
    for folder in (store.home, *store.home.rglob("*")):
        if folder.is_dir():
            folder.chmod(0o777)
    return store


def test_a_file_planted_in_a_shared_cache_is_refused_and_fetch_replaces_it(shared_home, serve):
    store = shared_home
    assert store.resolve("mb05").arch == "mb05"  # verified files load
    tri, graph = store.raw_path("tri"), store.onnx_path("mb05")
    good_tri = tri.read_bytes()
    serve(lambda handler, server: send(handler, good_tri))
    tri.write_bytes(good_tri[:-1] + bytes([good_tri[-1] ^ 1]))
    with pytest.raises(ModelsMissingError, match="face3d-nb models fetch") as info:
        store.resolve("mb05")
    assert str(info.value).startswith(f"{tri} is not the pinned") and "writable by everyone" in str(info.value)
    assert store.fetch(["tri"]) == ["tri"] and tri.read_bytes() == good_tri
    graph.write_bytes(store.onnx_path("faceboxes").read_bytes())  # a valid ONNX file, not ours
    with pytest.raises(ModelsMissingError, match="face3d-nb models fetch") as info:
        store.resolve("mb05")
    assert str(info.value).startswith(f"{graph} is not the graph face3d_nb builds")
    assert store.fetch(["mb05"]) == [] and store.resolve("mb05").regressor == graph  # rebuilt


def test_the_cli_refuses_a_shared_cache_holding_unpinned_files(tmp_path, face_photo):
    home = tmp_path / "shared"
    install_synthetic_models(home)  # not upstream's files: to the manifest, they are planted ones
    home.chmod(0o777)
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), face_photo)
    env = {**os.environ, "FACE3D_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "face3d_nb.cli", "image", str(photo)],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "is not the pinned" in proc.stderr and "face3d-nb models fetch" in proc.stderr


# -- (f) the page's download thread ------------------------------------------------------------------
def spawner(threads):
    def spawn(target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        threads.append(thread)
        thread.start()

    return spawn


def test_the_download_thread_survives_any_error_and_offers_the_button_again(tmp_path, caplog):
    outcomes = [ValueError("the runtime refused the graph"), None]
    installed = []

    def on_installed():
        if outcome := outcomes.pop(0):
            raise outcome
        installed.append(True)

    threads = []
    panel = ModelDownload(ModelStore(tmp_path), lambda bfm: [], "models not installed", spawner(threads),
                          on_installed)
    try:
        panel.button.click()
        wait_for(lambda: not threads[0].is_alive(), 30, "the download thread to end")
        assert not panel.button.disabled and not panel.bfm.disabled
        assert "face3d-fetch-error" in panel.status.value and "the runtime refused the graph" in panel.status.value
        assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)
        panel.button.click()  # and the next try goes through
        wait_for(lambda: not threads[1].is_alive(), 30, "the second download thread to end")
        assert installed == [True]
    finally:
        panel.close()


def test_closing_the_panel_stops_a_download_in_progress(serve, tmp_path):
    server = serve(stall_midway)
    store = pinned_store(tmp_path)
    threads = []
    panel = ModelDownload(store, lambda bfm: ["tri"], "models not installed", spawner(threads),
                          on_installed=lambda: pytest.fail("installed after close"))
    panel.button.click()
    wait_for(lambda: "downloading tri" in panel.status.value, 30, "the download to start")
    panel.close()
    server.release.set()
    wait_for(lambda: not threads[0].is_alive(), 30, "the download thread to stop")
    assert not [t.name for t in threading.enumerate() if t.name.startswith("face3d")]
    assert not store.installed("tri")
    part = store.raw_path("tri").with_name("tri.pkl.part")
    kept = part.read_bytes()
    assert 0 < len(kept) < len(DATA) and DATA.startswith(kept)  # left to resume, never installed half


def test_closing_the_app_mid_download_leaves_no_thread(serve, tmp_path):
    server = serve(stall_midway)
    store = pinned_store(tmp_path, key="faceboxes")  # the first file the app fetches
    app = FaceApp(EngineConfig(arch="mb05"), store=store)
    panel = app.children[0]
    panel.bfm.value = False
    panel.button.click()
    wait_for(lambda: "downloading faceboxes" in panel.status.value, 30, "the download to start")

    def release_once_closed():
        wait_for(lambda: panel.comm is None, 60, "the panel to close")
        server.release.set()  # the download is mid-file when its panel closes

    watcher = threading.Thread(target=release_once_closed, daemon=True)
    watcher.start()
    app.close()
    watcher.join(timeout=60)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("face3d")]
    assert not store.installed("faceboxes") and app.engine is None
