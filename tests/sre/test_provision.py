"""grafana/provision.py against a stand-in of Grafana's HTTP API (no Grafana server can be
installed here; see grafana_standin.py for the slice it speaks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.sre.grafana_standin import GrafanaStandIn
from tests.sre.sre_helpers import DASHBOARDS, GRAFANA, REPO

TOKEN = "glsa_test_token"
PROM = "http://prometheus.monitoring.svc:9090"


def _provision(url: str, *extra: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRAFANA_TOKEN": token}
    return subprocess.run(
        [
            sys.executable,
            str(GRAFANA / "provision.py"),
            "--grafana-url",
            url,
            "--prometheus-url",
            PROM,
            "--timeout",
            "5",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=REPO,
    )


def _report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_creates_everything_then_changes_nothing() -> None:
    uids = sorted(json.loads(p.read_text())["uid"] for p in DASHBOARDS.glob("*.json"))
    with GrafanaStandIn(TOKEN) as grafana:
        first = _report(_provision(grafana.url))
        assert first["changed"] is True
        assert first["items"] == {
            "folder": "created",
            "datasource": "created",
            **{f"dashboard:{u}": "created" for u in uids},
        }
        st = grafana.state
        assert st.folders["driftgate"]["title"] == "driftgate"
        ds = st.datasources["driftgate-prometheus"]
        assert (ds["type"], ds["url"], ds["access"]) == ("prometheus", PROM, "proxy")
        assert sorted(st.dashboards) == uids
        for uid, saved in st.dashboards.items():
            assert saved["meta"]["folderUid"] == "driftgate"
            source = next(
                json.loads(p.read_text())
                for p in DASHBOARDS.glob("*.json")
                if json.loads(p.read_text())["uid"] == uid
            )
            assert saved["dashboard"]["panels"] == source["panels"]

        writes_before = [r for r in st.log if r[0] != "GET"]
        second = _report(_provision(grafana.url))
        assert second["changed"] is False
        assert set(second["items"].values()) == {"unchanged"}
        assert [r for r in st.log if r[0] != "GET"] == writes_before, "second run wrote"


def test_repairs_drift_in_grafana() -> None:
    with GrafanaStandIn(TOKEN) as grafana:
        _report(_provision(grafana.url))
        st = grafana.state
        st.folders["driftgate"]["title"] = "renamed by hand"
        st.datasources["driftgate-prometheus"]["url"] = "http://wrong:9090"
        st.dashboards["driftgate-engine"]["dashboard"]["title"] = "edited in the UI"
        report = _report(_provision(grafana.url))
        assert report["items"]["folder"] == "updated"
        assert report["items"]["datasource"] == "updated"
        assert report["items"]["dashboard:driftgate-engine"] == "updated"
        assert report["items"]["dashboard:driftgate-gateway"] == "unchanged"
        assert st.datasources["driftgate-prometheus"]["url"] == PROM
        assert st.dashboards["driftgate-engine"]["dashboard"]["title"] == "driftgate / vLLM engine"


def test_wrong_token_fails_with_a_message() -> None:
    with GrafanaStandIn(TOKEN) as grafana:
        proc = _provision(grafana.url, token="wrong")
    assert proc.returncode == 1
    assert "provision failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dashboard_without_uid_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"title": "no uid", "panels": []}))
    with GrafanaStandIn(TOKEN) as grafana:
        proc = _provision(grafana.url, "--dashboards", str(tmp_path))
        assert not grafana.state.dashboards
    assert proc.returncode == 1
    assert "has no uid" in proc.stderr


def test_unreachable_grafana_fails_cleanly() -> None:
    proc = _provision("http://127.0.0.1:9")
    assert proc.returncode == 1
    assert "provision failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_file_provisioning_matches_the_api_provisioning() -> None:
    import yaml

    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "driftgate.yaml").read_text())
    (source,) = ds["datasources"]
    assert (source["uid"], source["type"]) == ("driftgate-prometheus", "prometheus")
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "driftgate.yaml").read_text()
    )["providers"]
    assert providers[0]["folderUid"] == "driftgate"
    assert providers[0]["type"] == "file"
    for path in DASHBOARDS.glob("*.json"):
        variables = json.loads(path.read_text())["templating"]["list"]
        datasource = next(v for v in variables if v["type"] == "datasource")
        assert datasource["current"]["value"] == source["uid"], path.name
