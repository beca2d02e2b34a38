"""Progress output that cannot break a command: a closed pipe ends the printing, not the run.

``driftgate demo | tee demo.log`` and Ctrl-C (or ``| head``) close the reader's end of
stdout. Python then raises :class:`BrokenPipeError` from the next ``print``, wherever it
is, the cleanup path included, which used to cut the stopping of child processes short.
Inside :func:`pipe_safe_output`, a write to a closed pipe redirects that stream to
``/dev/null`` instead (the remedy the Python documentation gives for SIGPIPE), so the
command goes on and still stops everything it started.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO


class PipeSafeStream:
    """Wraps a text stream; after the first broken-pipe error its output is discarded.

    >>> import io
    >>> s = PipeSafeStream(io.StringIO())
    >>> s.write("hello")
    5
    >>> s.broken
    False
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def _divert(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        if self.broken:
            return len(text)
        try:
            return self._stream.write(text)
        except OSError as exc:
            if not _is_closed_pipe(exc):
                raise
            self._divert()
            return len(text)

    def flush(self) -> None:
        if self.broken:
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()  # pending bytes now go to /dev/null
            return
        try:
            self._stream.flush()
        except OSError as exc:
            if not _is_closed_pipe(exc):
                raise
            self._divert()
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _is_closed_pipe(exc: OSError) -> bool:
    return isinstance(exc, BrokenPipeError) or exc.errno in (errno.EPIPE, errno.EINVAL)


@contextlib.contextmanager
def pipe_safe_output() -> Iterator[None]:
    """Within the block, ``sys.stdout`` and ``sys.stderr`` survive a closed reader."""
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = PipeSafeStream(old_out)
    sys.stderr = PipeSafeStream(old_err)
    try:
        yield
    finally:
        for safe in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                safe.flush()
        sys.stdout, sys.stderr = old_out, old_err
