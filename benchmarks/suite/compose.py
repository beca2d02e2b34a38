"""``benchmarks/RESULTS.md`` from the areas' result documents (pure: text in, text out).

An area is either a document (:mod:`benchmarks.suite.contract`) or a failure (the area did
not run, exited non-zero or wrote a malformed document): failures stay visible in the
summary table, never silently dropped. An area can also be kept as a previous page showed
it (:class:`KeptArea`), so recomposing one area leaves the others' text alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AreaOutcome:
    """One area's result: ``doc`` when it ran and checked out, else ``error``."""

    area: str
    doc: dict[str, Any] | None = None
    error: str | None = None
    wall_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.doc is not None and self.error is None


@dataclass(frozen=True)
class KeptArea:
    """An area as a previous page showed it: its summary rows and its section, verbatim."""

    area: str
    rows: tuple[str, ...]
    section: str

    @property
    def failed(self) -> bool:
        return any(row.startswith(f"| {self.area} | **FAILED** |") for row in self.rows)

    @property
    def missed(self) -> int:
        """Missed targets in its rows (a failed area's row is counted as a failure)."""
        return 0 if self.failed else sum(r.endswith("| **MISSED** |") for r in self.rows)


def kept_areas(page: str, areas: Iterable[str]) -> dict[str, KeptArea]:
    """The named areas that ``page`` shows (summary rows and section); others are absent.

    Sections are the page's ``## <area>`` blocks: an area's own headings are demoted below
    that level (:func:`_demote`), so a ``## `` line always starts a section.
    """
    lines = page.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")]
    kept = {}
    for area in areas:
        rows = tuple(line for line in lines if line.startswith(f"| {area} |"))
        first = next((i for i in starts if lines[i].startswith(f"## {area}:")), None)
        if not rows or first is None:
            continue
        end = next((i for i in starts if i > first), len(lines))
        section = "\n".join(lines[first:end]).rstrip() + "\n"
        kept[area] = KeptArea(area, rows, section)
    return kept


def fmt_number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e6:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def fmt_met(met: bool | None) -> str:
    return {True: "met", False: "**MISSED**", None: "-"}[met]


def _cell(text: Any) -> str:
    # a pipe inside a cell would split the Markdown table row
    return str(text).replace("|", "\\|").replace("\n", " ")


def _figure_row(area: str, fig: dict[str, Any]) -> str:
    unit = fig.get("unit") or ""
    ours = fmt_number(fig.get("value")) if fig.get("value") is not None else "not measured"
    if fig.get("value") is not None and unit:
        ours = f"{ours} {unit}"
    ref = fig.get("reference") or "-"
    if fig.get("reference_value") is not None:
        ref = f"{ref}: {fmt_number(fig['reference_value'])} {unit}".rstrip()
    ratio = fig.get("ratio")
    cells = [
        area,
        fig["name"],
        ours,
        ref,
        "-" if ratio is None else f"{fmt_number(ratio)}x",
        fig.get("target") or "-",
        fmt_met(fig.get("met")),
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def summary_table(outcomes: Sequence[AreaOutcome | KeptArea]) -> str:
    lines = [
        "| area | figure | ours | reference | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if isinstance(o, KeptArea):
            lines += o.rows
            continue
        if not o.ok or o.doc is None:
            reason = _cell(o.error or "no document")
            lines.append(f"| {o.area} | **FAILED** | {reason} | - | - | - | **MISSED** |")
            continue
        lines += [_figure_row(o.area, fig) for fig in o.doc["figures"]]
    return "\n".join(lines)


def _machine_line(machine: dict[str, Any]) -> str:
    parts = [f"{machine.get('cores', '?')} cores", str(machine.get("cpu", "?"))]
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    before, after = machine.get("loadavg_before"), machine.get("loadavg_after")
    if before or after:
        parts.append(f"load average before {before or '?'}, after {after or '?'}")
    return ", ".join(parts)


def _demote(md: str) -> str:
    # an area's own headings sit below its "## area" heading on this page
    return "\n".join("##" + line if line.startswith("#") else line for line in md.splitlines())


def _plot_link(path: str) -> str:
    # RESULTS.md lives in benchmarks/; documents name plots from the repository root
    rel = path.removeprefix("benchmarks/")
    return f"![{rel}]({rel})"


def area_section(o: AreaOutcome | KeptArea) -> str:
    if isinstance(o, KeptArea):
        return o.section
    if not o.ok or o.doc is None:
        return f"## {o.area}: FAILED\n\n{o.error or 'no document'}\n"
    doc = o.doc
    out = [f"## {o.area}: {doc['title']}", ""]
    if doc.get("quick"):
        out += ["**Quick (smoke) run: these numbers are not results.**", ""]
    out += [
        f"- Command: `{doc['command']}`",
        f"- Date: {doc['date']}",
        f"- Machine: {_machine_line(doc['machine'])}",
        "",
    ]
    notes = [f for f in doc["figures"] if f.get("note")]
    if notes:
        out += [f"- {f['name']}: {f['note']}" for f in notes]
        out.append("")
    if doc["details_md"].strip():
        out += [_demote(doc["details_md"].strip()), ""]
    out += [_plot_link(p) for p in doc["plots"]]
    return "\n".join(out).rstrip() + "\n"


def _missed(o: AreaOutcome | KeptArea) -> int:
    if isinstance(o, KeptArea):
        return o.missed
    return 0 if o.doc is None else sum(f.get("met") is False for f in o.doc["figures"])


def compose(outcomes: Sequence[AreaOutcome | KeptArea], *, generated: str, command: str) -> str:
    """The whole RESULTS.md page."""
    missed = sum(_missed(o) for o in outcomes)
    failed = [o.area for o in outcomes if (o.failed if isinstance(o, KeptArea) else not o.ok)]
    head = [
        "# Benchmarks, side by side",
        "",
        f"Composed {generated} by `{command}` from each area's `benchmarks/<area>/results.json`",
        "(each area's own command, date and machine are in its section). Ratio = ours /",
        "reference. Rebuild this page without re-running anything:",
        "`.venv/bin/python -m benchmarks.suite --compose-only`.",
        "",
        f"Failed areas: {', '.join(failed) if failed else 'none'}. Missed targets: {missed}.",
        "",
        summary_table(outcomes),
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(area_section(o) for o in outcomes)
