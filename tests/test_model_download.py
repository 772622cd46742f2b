"""The Basel Face Model is downloaded only with the user's consent, also when the app already runs
without it (as on Binder, whose image carries only the MIT-licensed models)."""

import pytest

from face3d_nb.apps.live_app import FaceApp
from face3d_nb.live.config import EngineConfig
from face3d_nb.testing.file_host import FileHost
from face3d_nb.testing.polling import wait_for
from face3d_nb.widgets.model_download import ModelDownload


@pytest.fixture
def empty_upstream(monkeypatch):
    """A loopback stand-in for upstream's file host that records what is asked of it and has nothing."""
    server = FileHost(lambda handler, _host: handler.send_error(404))
    for source in ("3DDFA_V2", "3DDFA"):
        monkeypatch.setenv(f"FACE3D_URL_{source}", server.url + "/{path}")
    yield server
    server.close()


def test_an_app_on_the_mean_face_offers_the_bfm_only_with_consent(synthetic_store, empty_upstream):
    app = FaceApp(EngineConfig(detail="low"), store=synthetic_store)
    try:
        assert app.engine is not None
        offers = [child for child in app.children if isinstance(child, ModelDownload)]
        assert len(offers) == 1
        offer = offers[0]
        assert "academic use only" in offer.notice.value and "academic use only" in offer.bfm.description
        assert not offer.bfm.value and offer.button.disabled
        offer.bfm.value = True
        assert not offer.button.disabled
        offer.bfm.value = False
        assert offer.button.disabled
        offer.bfm.value = True
        offer.button.click()
        wait_for(lambda: not offer.button.disabled, 60, "the download to end")
        # Everything else is installed: the BFM is the one file asked for, and its absence is reported.
        assert [path for path, _ in empty_upstream.requests] == ["/configs/bfm_noneck_v3.pkl"]
        assert "face3d-fetch-error" in offer.status.value and "HTTP 404" in offer.status.value
        assert app.engine.running
    finally:
        app.close()
