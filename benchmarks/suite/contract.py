"""The result document every benchmark area writes (issue "Benchmarks, side by side").

``benchmarks/<area>/run.py --quick --json PATH`` writes one JSON document::

    {"area", "title", "command", "date", "machine", "quick", "figures", "details_md", "plots"}

:func:`check_document` lists what is wrong with a document (empty: it has the contract's
shape); :func:`machine` and :func:`document` help an area script build one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

AREAS = ("gateway", "drift", "serving", "swap", "retrain", "loop")

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "area": str,
    "title": str,
    "command": str,
    "date": str,
    "machine": dict,
    "quick": bool,
    "figures": list,
    "details_md": str,
    "plots": list,
}
_NUMBER = (int, float)
_FIGURE_OPTIONAL: dict[str, tuple[type, ...]] = {
    "reference": (str,),
    "reference_value": _NUMBER,
    "ratio": _NUMBER,
    "target": (str,),
    "met": (bool,),
    "note": (str,),
}


def _is(value: Any, types: type | tuple[type, ...]) -> bool:
    # bool is an int in Python; a number field holding True is a bug in the script
    if isinstance(value, bool) and types in (_NUMBER, int, float):
        return False
    return isinstance(value, types)


def _check_figure(i: int, fig: Any) -> list[str]:
    where = f"figures[{i}]"
    if not isinstance(fig, dict):
        return [f"{where} is not an object"]
    errors: list[str] = []
    if not isinstance(fig.get("name"), str) or not fig.get("name"):
        errors.append(f"{where}.name is missing")
    if not isinstance(fig.get("unit"), str):
        errors.append(f"{where}.unit is missing")
    value = fig.get("value")
    # a figure that could not be measured keeps its row, with a note saying why
    if value is None:
        if not fig.get("note"):
            errors.append(f"{where}.value is null without a note")
    elif not _is(value, _NUMBER):
        errors.append(f"{where}.value is not a number")
    for key, types in _FIGURE_OPTIONAL.items():
        if key not in fig:
            errors.append(f"{where}.{key} is missing (null where it does not apply)")
        elif fig[key] is not None and not _is(fig[key], types):
            errors.append(f"{where}.{key} has the wrong type")
    if fig.get("target") is not None and fig.get("met") is None:
        errors.append(f"{where} has a target but met is null")
    return errors


def check_document(doc: Any, *, area: str | None = None, quick: bool | None = None) -> list[str]:
    """What is wrong with ``doc`` against the contract (an empty list: nothing)."""
    if not isinstance(doc, dict):
        return ["the document is not a JSON object"]
    errors: list[str] = []
    for key, types in _FIELDS.items():
        if key not in doc:
            errors.append(f"{key} is missing")
        elif not _is(doc[key], types):
            errors.append(f"{key} has the wrong type")
    if area is not None and doc.get("area") != area:
        errors.append(f"area is {doc.get('area')!r}, expected {area!r}")
    if quick is not None and isinstance(doc.get("quick"), bool) and doc["quick"] != quick:
        errors.append(f"quick is {doc['quick']}, expected {quick}")
    machine_ = doc.get("machine")
    if isinstance(machine_, dict):
        for key in ("cores", "cpu"):
            if key not in machine_:
                errors.append(f"machine.{key} is missing")
    if isinstance(doc.get("date"), str):
        try:
            dt.datetime.fromisoformat(doc["date"].replace("Z", "+00:00"))
        except ValueError:
            errors.append("date is not an ISO 8601 time")
    figures = doc.get("figures")
    if isinstance(figures, list):
        if not figures:
            errors.append("figures is empty")
        for i, fig in enumerate(figures):
            errors += _check_figure(i, fig)
    plots = doc.get("plots")
    if isinstance(plots, list) and not all(isinstance(p, str) for p in plots):
        errors.append("plots holds a non-string")
    return errors


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine(loadavg_before: Sequence[float]) -> dict[str, Any]:
    """The machine block; call at the end of a run (``loadavg_after`` is now)."""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_before": list(loadavg_before),
        "loadavg_after": loadavg(),
    }


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def command_line(module: str, argv: Sequence[str]) -> str:
    return shlex.join([".venv/bin/python", "-m", module, *argv])


def figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    reference: str | None = None,
    reference_value: float | None = None,
    target: str | None = None,
    met: bool | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One figure; the ratio is ours / the reference's when both are known."""
    ratio = None
    if value is not None and reference_value:
        ratio = round(value / reference_value, 3)
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "reference": reference,
        "reference_value": reference_value,
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
    }


def document(
    *,
    area: str,
    title: str,
    command: str,
    quick: bool,
    loadavg_before: Sequence[float],
    figures: list[dict[str, Any]],
    details_md: str,
    plots: Sequence[str] = (),
    date: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A contract document; ``extra`` keys (raw measurements) ride along unchecked."""
    doc: dict[str, Any] = {
        "area": area,
        "title": title,
        "command": command,
        "date": date or now_iso(),
        "machine": machine(loadavg_before),
        "quick": quick,
        "figures": figures,
        "details_md": details_md,
        "plots": list(plots),
    }
    doc.update(extra or {})
    return doc


def write_document(doc: Mapping[str, Any], path: Path) -> None:
    errors = check_document(doc)
    if errors:
        # a script that writes a malformed document is broken: say so where it runs
        print(f"warning: {path}: " + "; ".join(errors), file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
