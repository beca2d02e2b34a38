"""Progress output on a closed pipe: the command goes on, nothing is raised."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from driftgate.console import PipeSafeStream


def test_a_closed_reader_diverts_the_stream_instead_of_raising() -> None:
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "w", buffering=1)
    safe = PipeSafeStream(stream)
    safe.write("first line\n")
    assert os.read(read_fd, 100) == b"first line\n"
    os.close(read_fd)
    safe.write("into the void\n")  # EPIPE: diverted, not raised
    safe.flush()
    assert safe.broken
    assert safe.write("more\n") == 5
    stream.close()


def test_print_after_the_reader_left_ends_cleanly() -> None:
    """A process whose stdout reader is gone finishes its work and exits 0, silently."""
    script = textwrap.dedent(
        """
        import sys, time
        from driftgate.console import pipe_safe_output
        with pipe_safe_output():
            print("ready", flush=True)
            sys.stdin.readline()  # the parent closes our stdout's reader, then says go
            for i in range(1000):
                print(f"line {i}", flush=True)
            print("done", file=sys.stderr, flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    assert proc.stdout.readline() == "ready\n"
    proc.stdout.close()
    proc.stdin.write("go\n")
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    err = proc.stderr.read()
    assert err == "done\n", err
