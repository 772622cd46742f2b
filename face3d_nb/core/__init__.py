"""The numeric core: one image in, faces out. Frames, ONNX Runtime sessions, the FaceBoxes detector,
the 3DMM regressor, the morphable model and its detail levels, the per-image pipeline, tracking
across frames, smoothing and exports.

May import :mod:`face3d_nb.models` and numeric libraries (numpy, OpenCV, Pillow's image headers,
onnxruntime, threadpoolctl); never a widget library or a thread of its own, so it runs and tests without Jupyter.
"""
