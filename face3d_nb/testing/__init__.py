"""Test support shipped with the package, like ``numpy.testing``: for the tests and benchmarks only.

- :mod:`.assets` where the real upstream files are (``../shared/assets`` or ``$FACE3D_TEST_ASSETS``);
- :mod:`.synthetic_models` small models with random weights in the real architectures, built
  through our own converter into a model cache, so every test of wiring runs without the assets;
- :mod:`.media` generated pictures and clips with face-like blobs the synthetic detector finds;
- :mod:`.basis` a synthetic identity/expression basis of the real size;
- :mod:`.legacy_pth` a writer of torch's legacy checkpoint format;
- :mod:`.browser` real servers, a real browser and a fake camera for end-to-end runs;
- :mod:`.results` results of known parameters, to feed a viewer without the networks;
- :mod:`.frame_code` frames that carry their index in a corner (which frame a view drew);
- :mod:`.file_host` a loopback file host whose replies a test writes (the download tests);
- :mod:`.tracking_clip` a clip of shots, cuts and entering faces cut from the assets (tracking);
- :mod:`.quantize` INT8 models and the rule that decides whether one may stand in (benchmarks);
- :mod:`.recordings`, :mod:`.polling`, :mod:`.terminal` small helpers of the tests.

May import every layer of face3d_nb; nothing in face3d_nb imports it (an import-linter contract).
"""
