"""Downloader, Python side: files split into ordered pieces, screenshot requests, the page's reports.

No browser here: ``send`` is replaced by a list (the page side is tested in tests/browser).
"""

import pytest
import pythreejs as three

from face3d_nb.widgets.download import Downloader, safe_filename


@pytest.fixture
def downloader():
    widget = Downloader(chunk_size=1024)
    widget.sent = []
    widget.send = lambda content, buffers=None: widget.sent.append((content, [bytes(b) for b in buffers or []]))
    yield widget
    widget.close()


def test_a_file_goes_in_ordered_pieces_that_join_to_it(downloader):
    data = bytes(range(256)) * 10  # 2560 bytes: 3 pieces of at most 1024
    first = downloader.deliver("face.ply", data, "application/ply")
    second = downloader.deliver("empty.obj", b"")
    pieces = [(c, b) for c, b in downloader.sent if c["id"] == first]
    assert [c["part"] for c, _ in pieces] == [0, 1, 2]
    assert all(c["parts"] == 3 and c["size"] == len(data) and c["name"] == "face.ply" and c["type"] == "file"
               and c["mime"] == "application/ply" for c, _ in pieces)
    assert all(len(b) == 1 for _, b in pieces)
    assert b"".join(b[0] for _, b in pieces) == data
    (content, buffers), = [(c, b) for c, b in downloader.sent if c["id"] == second]
    assert second > first and content["parts"] == 1 and buffers == [b""]
    assert downloader.message == "saving empty.obj (0.0 kB)…"


def test_page_reports_count_and_show_in_the_status_line(downloader):
    downloader._handle_message(downloader, {"type": "delivered", "id": 1, "name": "face.obj", "size": 3_400_000}, [])
    assert downloader.message == "saved face.obj (3.4 MB)"
    downloader._handle_message(downloader, {"type": "failed", "id": 2, "reason": "the 3D view is not shown"}, [])
    downloader._handle_message(downloader, {"type": "nonsense"}, [])
    downloader._handle_message(downloader, "not even a dict", [])
    assert (downloader.delivered, downloader.failed) == (1, 1)
    assert downloader.message == "could not save: the 3D view is not shown"


def test_screenshot_asks_the_page_and_needs_a_target(downloader):
    with pytest.raises(ValueError, match="no target"):
        downloader.screenshot("view.png")
    renderer = three.Renderer(scene=three.Scene(), camera=three.PerspectiveCamera())
    downloader.target = renderer
    ident = downloader.screenshot("view.png")
    assert downloader.sent[-1] == ({"type": "screenshot", "id": ident, "name": "view.png"}, [])


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a/b.obj", ".hidden", "-rf", "x" * 200, "face 1.obj", None])
def test_only_plain_file_names(downloader, name):
    with pytest.raises(ValueError, match="not a plain file name"):
        safe_filename(name)
    with pytest.raises(ValueError):
        downloader.deliver(name, b"data")
    assert downloader.sent == []


def test_chunk_size_has_a_floor():
    with pytest.raises(Exception, match="chunk_size must be at least 1024"):
        Downloader(chunk_size=10)
