"""Create driftgate's Grafana folder, Prometheus data source and dashboards, idempotently.

Talks to a running Grafana through ``grafana-client`` (its HTTP API). Each item is read
first and written only when missing or different, so a second run changes nothing and
reports every item ``unchanged``. For Grafanas that read files instead, see
``grafana/provisioning/``.

Usage::

    GRAFANA_TOKEN=... python grafana/provision.py \\
        --grafana-url http://grafana:3000 --prometheus-url http://prometheus:9090

Credentials: ``GRAFANA_TOKEN`` (a service-account token), or ``user:password`` in the
Grafana URL. Prints a JSON report; exit status 1 with the error on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

#: grafana-client's API object; its methods are untyped, so it is handled as ``Any``.
Grafana = Any

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
FOLDER_UID = "driftgate"
FOLDER_TITLE = "driftgate"
DATASOURCE_UID = "driftgate-prometheus"
DATASOURCE_NAME = "Prometheus (driftgate)"

Outcome = Literal["created", "updated", "unchanged"]


@dataclass
class Report:
    """What one run did, per item (``folder``, ``datasource``, ``dashboard:<uid>``)."""

    items: dict[str, Outcome] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(v != "unchanged" for v in self.items.values())


def _is_not_found(err: GrafanaClientError) -> bool:
    return getattr(err, "status_code", None) == 404


def _get_or_none(call: Any, *args: Any) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = call(*args)
    except GrafanaClientError as err:
        if _is_not_found(err):
            return None
        raise
    return result


def datasource_spec(prometheus_url: str) -> dict[str, Any]:
    return {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": False,
        "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
    }


def ensure_folder(api: Grafana) -> Outcome:
    current = _get_or_none(api.folder.get_folder, FOLDER_UID)
    if current is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return "created"
    if current.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        return "updated"
    return "unchanged"


def ensure_datasource(api: Grafana, prometheus_url: str) -> Outcome:
    wanted = datasource_spec(prometheus_url)
    current = _get_or_none(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    if current is None:
        api.datasource.create_datasource(wanted)
        return "created"
    if any(current.get(k) != v for k, v in wanted.items()):
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, wanted)
        return "updated"
    return "unchanged"


def _comparable(dash: dict[str, Any]) -> dict[str, Any]:
    """A dashboard without the fields Grafana assigns on save."""
    return {k: v for k, v in dash.items() if k not in {"id", "version"}}


def ensure_dashboard(api: Grafana, dash: dict[str, Any]) -> Outcome:
    uid = dash.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ValueError(f"dashboard {dash.get('title')!r} has no uid")
    current = _get_or_none(api.dashboard.get_dashboard, uid)
    if current is not None:
        same_folder = current.get("meta", {}).get("folderUid") == FOLDER_UID
        if same_folder and _comparable(current.get("dashboard", {})) == _comparable(dash):
            return "unchanged"
    body = {
        "dashboard": {**dash, "id": None},
        "folderUid": FOLDER_UID,
        "overwrite": True,
        "message": "driftgate grafana/provision.py",
    }
    api.dashboard.update_dashboard(body)
    return "created" if current is None else "updated"


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> list[dict[str, Any]]:
    dashboards = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a dashboard object")
        dashboards.append(data)
    return dashboards


def provision(
    api: Grafana, prometheus_url: str, dashboards: list[dict[str, Any]] | None = None
) -> Report:
    """Make Grafana hold the folder, the data source and the dashboards; report each item."""
    report = Report()
    report.items["folder"] = ensure_folder(api)
    report.items["datasource"] = ensure_datasource(api, prometheus_url)
    for dash in load_dashboards() if dashboards is None else dashboards:
        report.items[f"dashboard:{dash['uid']}"] = ensure_dashboard(api, dash)
    return report


def connect(grafana_url: str, token: str | None, timeout_s: float = 10.0) -> Grafana:
    return GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grafana-url", required=True)
    parser.add_argument(
        "--prometheus-url", required=True, help="URL Grafana's server uses to reach Prometheus"
    )
    parser.add_argument("--dashboards", type=Path, default=DASHBOARDS_DIR)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    api = connect(args.grafana_url, os.environ.get("GRAFANA_TOKEN") or None, args.timeout)
    try:
        report = provision(api, args.prometheus_url, load_dashboards(args.dashboards))
    except (GrafanaException, ValueError, OSError) as err:
        print(f"provision failed: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"changed": report.changed, "items": report.items}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
