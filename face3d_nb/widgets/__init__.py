"""Widgets: the pieces a page shows, wiring the layers below into ipywidgets, pythreejs and anywidget.
The 3D viewer and its mesh transports, the page link, the camera frame grabber, the pose plots,
browser downloads, the control and stats panels and the save panel; their JavaScript and CSS ship as
package files in ``static/``.

May import :mod:`face3d_nb.live`, :mod:`face3d_nb.view`, :mod:`face3d_nb.core` and the widget
libraries; never :mod:`face3d_nb.apps`.
"""

from pathlib import Path

import traitlets

#: The widgets' front-end files (JavaScript modules, CSS, shaders), shipped inside the package.
STATIC = Path(__file__).parent / "static"
#: Longest string a page may set on a widget, characters: a reason or a line for people, never a document.
MAX_TEXT = 1000


def check_text(_owner, proposal):
    """A traitlets validator refusing strings longer than :data:`MAX_TEXT` (text a page may set)."""
    if len(proposal["value"]) > MAX_TEXT:
        raise traitlets.TraitError(f"{proposal['trait'].name} is longer than {MAX_TEXT} characters")
    return proposal["value"]
