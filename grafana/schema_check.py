"""Type-check dashboard JSON against Grafana's own schema (npm ``@grafana/schema``).

For every dashboard this writes a TypeScript file that assigns the JSON, as an object
literal, to ``Dashboard``, each panel's ``options`` and ``fieldConfig.defaults.custom`` to
that panel type's ``Options``/``FieldConfig``, and each target to a Prometheus query
shape; then runs ``tsc --noEmit --strict``. Object literals make tsc reject unknown keys
and wrong value types (a number given as a string). Grafana's string enums are compared
by their values (``Loose<T>``), since JSON cannot name a TypeScript enum member.

Needs ``scripts/sre_tools.sh`` (node packages under ``grafana/.schema-check/``).
Usage: ``python grafana/schema_check.py [DASHBOARD.json ...]``; exit status 1 with tsc's
messages when a dashboard does not type-check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

GRAFANA_DIR = Path(__file__).resolve().parent
CHECK_DIR = GRAFANA_DIR / ".schema-check"
TSC = CHECK_DIR / "node_modules" / ".bin" / "tsc"
RAW = "@grafana/schema/dist/esm/raw/composable"

#: panel type -> (import module, alias prefix, whether it has a custom FieldConfig)
PANEL_TYPES = {
    "timeseries": (f"{RAW}/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", "TimeSeries", True),
    "stat": (f"{RAW}/stat/panelcfg/x/StatPanelCfg_types.gen", "Stat", False),
    "state-timeline": (
        f"{RAW}/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen",
        "StateTimeline",
        True,
    ),
}

PRELUDE = """\
import type {{ AnnotationQuery, Dashboard, Panel, RowPanel }} from '@grafana/schema';
{imports}

// JSON cannot name an enum member: compare string enums by their values.
type Loose<T> = T extends string ? `${{T}}` | T
  : T extends number | boolean | null | undefined ? T
  : T extends Array<infer U> ? Array<Loose<U>>
  : T extends object ? {{ [K in keyof T]: Loose<T[K]> }}
  : T;

// The Prometheus data source reads these annotation fields, which the generic
// AnnotationQuery type does not list.
interface PrometheusAnnotationFields {{
  expr?: string;
  step?: string;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
}}
type CheckedDashboard = Loose<Omit<Dashboard, 'annotations'>> & {{
  annotations?: {{ list?: Array<Loose<AnnotationQuery> & PrometheusAnnotationFields> }};
}};

interface PrometheusTarget {{
  datasource: {{ type: 'prometheus'; uid: string }};
  editorMode: 'code' | 'builder';
  expr: string;
  legendFormat: string;
  range: boolean;
  refId: string;
}}
"""


class ToolMissing(RuntimeError):
    """The node packages are not installed."""


def _literal(value: Any) -> str:
    return json.dumps(value, indent=2)


def typescript_for(name: str, dash: dict[str, Any]) -> str:
    imports = "\n".join(
        f"import type {{ Options as {alias}Options"
        + (f", FieldConfig as {alias}FieldConfig" if has_custom else "")
        + f" }} from '{module}';"
        for module, alias, has_custom in PANEL_TYPES.values()
    )
    lines = [PRELUDE.format(imports=imports), f"// {name}"]
    lines.append(f"export const dashboard: CheckedDashboard = {_literal(dash)};")
    for i, panel in enumerate(dash.get("panels", [])):
        ptype = panel.get("type")
        if ptype == "row":
            lines.append(f"export const row{i}: Loose<RowPanel> = {_literal(panel)};")
            continue
        lines.append(f"export const panel{i}: Loose<Panel> = {_literal(panel)};")
        if ptype not in PANEL_TYPES:
            lines.append(f"// unknown panel type {ptype!r}")
            lines.append(f"export const unknownType{i}: 'known panel type' = {_literal(ptype)};")
            continue
        _, alias, has_custom = PANEL_TYPES[ptype]
        lines.append(
            f"export const options{i}: Loose<{alias}Options> = "
            f"{_literal(panel.get('options', {}))};"
        )
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
        custom_type = f"Loose<{alias}FieldConfig>" if has_custom else "Record<string, never>"
        lines.append(f"export const custom{i}: {custom_type} = {_literal(custom)};")
        for j, tgt in enumerate(panel.get("targets", [])):
            lines.append(f"export const target{i}_{j}: PrometheusTarget = {_literal(tgt)};")
    return "\n".join(lines) + "\n"


def check(paths: list[Path]) -> tuple[bool, str]:
    """Type-check the given dashboard files; (ok, tsc output)."""
    if not TSC.is_file():
        raise ToolMissing(f"{TSC} is missing: run scripts/sre_tools.sh")
    out_dir = CHECK_DIR / "generated"
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.glob("*.ts"):
        old.unlink()
    files = []
    for path in paths:
        ts = out_dir / (path.stem.replace("-", "_") + ".ts")
        ts.write_text(typescript_for(path.name, json.loads(path.read_text())))
        files.append(str(ts))
    proc = subprocess.run(
        [
            str(TSC),
            "--noEmit",
            "--strict",
            "--target",
            "es2020",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "--skipLibCheck",
            *files,
        ],
        cwd=CHECK_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode == 0, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] or sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
    ok, output = check(paths)
    print(output or f"ok: {len(paths)} dashboards type-check against @grafana/schema")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
