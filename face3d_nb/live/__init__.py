"""The live layer: frames arriving in real time become a stream of events. The event types, the
threaded newest-wins engine, its settings (and the settings file it shares with the app), its
statistics and per-frame performance log, handing slow work on its events to a thread of its own
(the handoff), session recordings, playing recordings back (the replayer), feeding a video file in
as a camera would (the video source), and mapping a page's capture times onto this process's clock
(the capture clock).

May import :mod:`face3d_nb.core` and :mod:`face3d_nb.models`; no widget library and nothing of
:mod:`face3d_nb.view`, so scripts and the CLI run the engine without Jupyter.
"""
