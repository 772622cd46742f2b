"""A synthetic identity/expression basis of the real size (50 x 3*38365 float32).

The Basel Face Model (bfm_noneck_v3.pkl) is not among the test assets, so the GPU decode is checked
with this stand-in on the real mean shape: smooth deformations (sines over the face) whose sizes
match real coefficients, which span five orders of magnitude (identity ~1e5, expression ~1), so
that real parameter vectors from the reference outputs deform the face by a few per cent.
"""

from __future__ import annotations

import numpy as np

from face3d_nb.core.morphable import MorphableModel

# Typical magnitude of each real coefficient (roughly the regressor's de-normalisation std).
COEFFICIENT_SIZES = np.concatenate([np.logspace(5.7, 4.1, 40), np.logspace(0.2, -0.8, 10)])
# Model units a coefficient of typical size moves the face (the face is ~1.6e5 units wide).
_DEFORMATION = 3000.0


def synthetic_basis(mean: np.ndarray, seed: int = 0) -> np.ndarray:
    """(50, 3V) float32 basis for the mean shape ``mean`` (V, 3), coefficient-major like
    ``MorphableModel.basis``."""
    rng = np.random.default_rng(seed)
    u = np.asarray(mean, np.float64)
    unit = (u - u.mean(axis=0)) / np.ptp(u, axis=0)
    rows = []
    for size in COEFFICIENT_SIZES:
        frequencies = rng.normal(0.0, 3.0, (3, 3))
        phases = rng.uniform(0.0, 2 * np.pi, 3)
        rows.append((np.sin(unit @ frequencies + phases) * (_DEFORMATION / size)).reshape(-1))
    return np.asarray(rows, np.float32)


def with_synthetic_basis(model: MorphableModel, seed: int = 0) -> MorphableModel:
    """``model`` (mean-shape mode) with :func:`synthetic_basis` as its identity/expression basis."""
    return MorphableModel(model.mean, synthetic_basis(model.mean, seed), model.triangles, model.landmarks)
