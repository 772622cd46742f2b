"""The ONNX graphs of the model cache, built from the installed upstream checkpoints.

Our converter is deterministic and fast (~15 ms a graph), so a graph on disk is checked by
building it again from its verified sources and comparing the bytes: nothing about a graph needs
pinning beyond its sources.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from .convert import build_detector, build_regressor
from .download import AssetError
from .safe_pickle import load_legacy_pth, load_pkl

__all__ = ["build_graph", "graph_matches"]


def build_graph(checkpoint: Path, stats: Path | None) -> onnx.ModelProto:
    """The detector graph of ``checkpoint`` (``stats`` None), or the regressor graph of ``checkpoint``
    de-normalised with the ``param_mean_std`` pickle at ``stats``."""
    try:
        state = load_legacy_pth(checkpoint)
        if stats is None:
            return build_detector(state)
        mean_std = load_pkl(stats)
        return build_regressor(state, mean_std["mean"], mean_std["std"])
    except Exception as exc:  # a verified file that still fails to convert is a bug to report
        raise AssetError(f"converting {checkpoint} failed: {exc}") from exc


def graph_matches(graph: Path, checkpoint: Path, stats: Path | None) -> bool:
    """Whether the file ``graph`` is exactly what :func:`build_graph` builds from these sources."""
    return graph.read_bytes() == build_graph(checkpoint, stats).SerializeToString()
