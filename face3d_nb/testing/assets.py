"""Where the real upstream files for the accuracy tests and benchmarks are.

``$FACE3D_TEST_ASSETS`` or ``shared/assets`` beside the source tree: the 3DDFA_V2 weights and
configs, the mean-shape files, photos, a video and upstream's reference outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ASSETS", "IMAGES", "REFERENCE", "ROOT", "VIDEO", "missing_assets"]

ROOT = Path(__file__).resolve().parents[2]
ASSETS = Path(os.environ.get("FACE3D_TEST_ASSETS", ROOT.parent / "shared" / "assets"))
IMAGES = {
    "emma": ASSETS / "3ddfa_v2" / "images" / "emma.jpg",
    "trump_hillary": ASSETS / "3ddfa_v2" / "images" / "trump_hillary.jpg",
    "JianzhuGuo": ASSETS / "3ddfa_v2" / "images" / "JianzhuGuo.jpg",
    "aflw2000_image00427": ASSETS / "aflw2000" / "image00427.jpg",
}
VIDEO = ASSETS / "video" / "obama.mp4"
REFERENCE = ASSETS / "reference"


def missing_assets() -> str | None:
    """One line saying how to enable the real-asset tests, or None when the assets are there."""
    if (ASSETS / "MANIFEST.json").is_file():
        return None
    return (f"real model files not found in {ASSETS}: put the 3DDFA_V2 assets there "
            "or set FACE3D_TEST_ASSETS")
