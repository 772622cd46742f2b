"""Model files: where the upstream weights and the Basel Face Model live, how they are fetched,
verified, safely unpickled and converted to ONNX.

Lowest layer: imports only the standard library, numpy, onnx, filelock and scipy's MATLAB reader
(never onnxruntime, OpenCV or any widget library), and nothing else of face3d_nb, so every layer above can find and
load its files.
"""
