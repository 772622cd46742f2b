"""Apps: whole pages put together from the widgets. The live camera app (:class:`FaceApp`), the replay
app and serving either with Voila (``face3d-nb app`` / ``face3d-nb replay``).

The top of the package: may import every layer below; nothing of face3d_nb imports it but the CLI.
"""
