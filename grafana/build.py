"""Write the dashboards' JSON and the Helm chart's copies of dashboards and alert rules.

Source of truth:
- dashboards: the Python in ``grafana/dashboards.py`` -> ``grafana/dashboards/*.json``;
- alert rules: ``grafana/alerts/*.yaml`` (hand-written, unit-tested with promtool).

Helm's ``.Files.Get`` cannot read outside the chart (and a symlink to a file outside it
is not followed when the chart is packaged), so the chart carries byte-for-byte copies in
``deploy/helm/driftgate/files/{dashboards,alerts}/``. Run ``python grafana/build.py``
after editing either source; ``python grafana/build.py --check`` (and the test
``tests/sre/test_build.py``) fails when any file is stale.

Usage: ``python grafana/build.py [--check]``; exit status 1 with the stale paths on
``--check``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashboards import DASHBOARDS

GRAFANA_DIR = Path(__file__).resolve().parent
REPO = GRAFANA_DIR.parent
CHART_FILES = REPO / "deploy" / "helm" / "driftgate" / "files"


def dashboard_text(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, bytes]:
    """Every generated path and the bytes it must hold."""
    files: dict[Path, bytes] = {}
    for name in DASHBOARDS:
        data = dashboard_text(name).encode()
        files[GRAFANA_DIR / "dashboards" / name] = data
        files[CHART_FILES / "dashboards" / name] = data
    for rule_file in sorted((GRAFANA_DIR / "alerts").glob("*.yaml")):
        files[CHART_FILES / "alerts" / rule_file.name] = rule_file.read_bytes()
    return files


def stale_files() -> list[Path]:
    """Generated paths whose content differs, plus stray files in the generated folders."""
    expected = expected_files()
    stale = [p for p, data in expected.items() if not p.is_file() or p.read_bytes() != data]
    folders = {p.parent for p in expected}
    for folder in sorted(folders):
        for path in sorted(folder.glob("*")):
            if path.suffix in {".json", ".yaml"} and path not in expected and path.is_file():
                stale.append(path)
    return stale


def write() -> list[Path]:
    expected = expected_files()
    changed = stale_files()
    for path in changed:
        if path in expected:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(expected[path])
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if any file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(REPO)}", file=sys.stderr)
        if stale:
            print("run: python grafana/build.py", file=sys.stderr)
        return 1 if stale else 0
    for path in write():
        print(f"wrote: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
