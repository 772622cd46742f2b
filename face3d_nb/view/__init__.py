"""View maths: what a 3D view of the faces needs, in plain numpy. Fitting faces to the view, packing
the model for the page's GPU decode and the per-update uniforms, choosing the mesh transport from
the measured link, and the app's starting settings for a page's distance.

May import :mod:`face3d_nb.core`; no widget library and nothing of :mod:`face3d_nb.live`, so the
viewer's maths is testable on its own.
"""
