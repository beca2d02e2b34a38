"""What every area's ``run.py`` shares: its ``--quick`` / ``--json`` flags, where its
result document goes, the command line and load average it records, and the write.

An area's ``main`` builds its parser with :func:`area_parser`, adds its own flags, and
calls :meth:`AreaRun.start` just before it measures (the load average is taken then);
:meth:`AreaRun.write` builds and writes the :mod:`~benchmarks.suite.contract` document.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.suite.contract import command_line, document, loadavg, write_document

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent

QUICK_HELP = "smoke run: proves the script works; its numbers are not results"


def area_parser(
    description: str | None, *, quick_help: str = QUICK_HELP
) -> argparse.ArgumentParser:
    """A parser with the flags the suite passes to every area (``--quick``, ``--json``)."""
    ap = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", type=Path, help="where the result document goes")
    return ap


def recorded_path(area: str) -> Path:
    """The area's recorded result document, which RESULTS.md is composed from."""
    return BENCH / area / "results.json"


def result_path(area: str, given: Path | None, *, quick: bool) -> Path:
    """``--json`` when given; else the recorded document for a full run, and for a quick
    run a fresh temporary folder (a smoke run never overwrites recorded results)."""
    if given is not None:
        return given
    if quick:
        return Path(tempfile.mkdtemp(prefix=f"driftgate-{area}-quick-")) / "results.json"
    return recorded_path(area)


def shown_path(path: Path) -> str:
    """A path as a document records it: relative to the repository when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


@dataclass(frozen=True)
class AreaRun:
    """One run of an area: what its result document records besides the measurements."""

    area: str
    quick: bool
    out: Path
    command: str
    loadavg_before: tuple[float, ...]

    @classmethod
    def start(
        cls,
        area: str,
        args: argparse.Namespace,
        argv: Sequence[str] | None,
    ) -> AreaRun:
        """Call just before measuring: the load average "before" is taken now."""
        quick = bool(args.quick)
        return cls(
            area=area,
            quick=quick,
            out=result_path(area, args.json, quick=quick),
            command=command_line(f"benchmarks.{area}.run", sys.argv[1:] if argv is None else argv),
            loadavg_before=tuple(loadavg()),
        )

    def plot_path(self, name: str) -> Path:
        """Where a plot goes: beside the recorded document, or a quick run's own document
        (a smoke run never overwrites a recorded plot)."""
        folder = self.out.resolve().parent if self.quick else BENCH / self.area
        return folder / name

    def write(
        self,
        *,
        title: str,
        figures: list[dict[str, Any]],
        details_md: str,
        plots: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Build the contract document, write it to :attr:`out` and return it."""
        doc = document(
            area=self.area,
            title=title,
            command=self.command,
            quick=self.quick,
            loadavg_before=self.loadavg_before,
            figures=figures,
            details_md=details_md,
            plots=plots,
            extra=extra,
        )
        write_document(doc, self.out)
        return doc
