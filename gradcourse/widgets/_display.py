"""Show a matplotlib Figure as a PNG display that an explorer can update in place.

A bare ``Figure`` (not made through pyplot) displays as text in a kernel where the inline
backend was never loaded, so explorers always send PNG bytes. Layer: presentation (widgets).
"""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any


def figure_image(fig: Any):
    """``IPython.display.Image`` of ``fig`` rendered to PNG at its own dpi."""
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return Image(data=buf.getvalue(), format="png")


def guarded(update: Callable[[], None], handle_of: Callable[[], Any]) -> Callable[[Any], None]:
    """A widget ``observe`` callback running ``update``; an exception is shown in the figure's place.

    Without this, an error inside a callback goes to the log console and the learner sees nothing.
    """

    def callback(_change: Any) -> None:
        try:
            update()
        except Exception as e:  # show the learner what went wrong where they are looking
            handle = handle_of()
            if handle is None:
                raise
            handle.update({"text/plain": f"Explorer error: {type(e).__name__}: {e}"}, raw=True)

    return callback
