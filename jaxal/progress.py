"""The progress bar of long calls, one implementation for the Python API and the command line.

:func:`jaxal.loop.run`, :func:`jaxal.loop.compare`, :func:`jaxal.bench.record` and
:func:`jaxal.bench.replay` take ``progress=True`` (the default) and the ``jaxal`` commands
show the same bar. It is drawn only where someone watches it: in a terminal, and in a Jupyter
notebook when ``ipywidgets`` is installed (rich draws notebook bars with it). Piped or
redirected output, log files, pytest and notebook runs without ``ipywidgets`` (``nbmake``)
get nothing, so scripts and tests stay quiet without passing ``progress=False``, which turns
the bar off everywhere. Bars of nested calls stack (rich's nested live displays).
"""

import contextlib
import importlib.util
from collections.abc import Callable, Iterator

import rich
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

Update = Callable[[int, str], None]
"""``update(completed, status)``: steps done so far and a short status shown beside the bar."""


def watched(console: Console) -> bool:
    """Whether ``console`` shows a live bar: a terminal, or Jupyter with ``ipywidgets``."""
    if console.is_jupyter:
        return importlib.util.find_spec("ipywidgets") is not None
    return console.is_terminal and not console.is_dumb_terminal


@contextlib.contextmanager
def bar(
    description: str,
    total: int,
    *,
    completed: int = 0,
    enabled: bool = True,
    console: Console | None = None,
) -> Iterator[Update | None]:
    """A bar of ``total`` steps (``completed`` done) labelled ``description``, while in the block.

    Yields its :data:`Update`, or ``None`` when nothing is drawn (``enabled`` false, or nobody
    watches ``console``, default rich's global console: see :func:`watched`), so that callers
    skip computing a status nobody sees.
    """
    console = rich.get_console() if console is None else console
    if not (enabled and watched(console)):
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=total, completed=completed, status="")

        def update(completed: int, status: str) -> None:
            progress.update(task, completed=completed, status=status)

        yield update
