"""A stand-in for the slice of Grafana's HTTP API that grafana/provision.py uses.

No Grafana server can be installed here, so the provisioning test talks to this instead.
It keeps folders, data sources and dashboards in memory and answers like Grafana 11 does
for these routes: 404 ``{"message": ...}`` for what is missing, 409 for a duplicate uid,
400 for a malformed body or an unknown folder, 412 when a dashboard would be overwritten
without ``overwrite``, and 401 without the expected bearer token. Every request is logged.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GrafanaState:
    token: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class _Handler(BaseHTTPRequestHandler):
    state: GrafanaState

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def _route(self, method: str) -> None:
        st = self.state
        st.log.append((method, self.path))
        if self.headers.get("Authorization") != f"Bearer {st.token}":
            self._send(401, {"message": "Unauthorized"})
            return
        try:
            body = self._body() if method in {"POST", "PUT"} else None
        except json.JSONDecodeError:
            self._send(400, {"message": "bad request data"})
            return
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        with st.lock:
            status, reply = self._dispatch(method, parts, body)
        self._send(status, reply)

    def _dispatch(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        st = self.state
        match method, parts:
            case "GET", ["api", "folders", uid]:
                if uid not in st.folders:
                    return 404, {"message": "folder not found", "status": "not-found"}
                return 200, st.folders[uid]
            case "POST", ["api", "folders"]:
                if not isinstance(body, dict) or not body.get("title"):
                    return 400, {"message": "folder title cannot be empty"}
                uid = body.get("uid") or f"f{st.new_id()}"
                if uid in st.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                st.folders[uid] = {
                    "id": st.new_id(),
                    "uid": uid,
                    "title": body["title"],
                    "version": 1,
                }
                return 200, st.folders[uid]
            case "PUT", ["api", "folders", uid]:
                if uid not in st.folders:
                    return 404, {"message": "folder not found"}
                st.folders[uid]["title"] = body["title"]
                st.folders[uid]["version"] += 1
                return 200, st.folders[uid]
            case "GET", ["api", "datasources", "uid", uid]:
                if uid not in st.datasources:
                    return 404, {"message": "Data source not found"}
                return 200, st.datasources[uid]
            case "POST", ["api", "datasources"]:
                if not isinstance(body, dict) or not body.get("name") or not body.get("type"):
                    return 400, {"message": "name and type are required"}
                uid = body.get("uid") or f"d{st.new_id()}"
                taken = {d["name"] for d in st.datasources.values()}
                if uid in st.datasources or body["name"] in taken:
                    return 409, {"message": "data source with the same name already exists"}
                st.datasources[uid] = {**body, "id": st.new_id(), "uid": uid, "version": 1}
                return 200, {
                    "datasource": st.datasources[uid],
                    "id": st.datasources[uid]["id"],
                    "message": "Datasource added",
                }
            case "PUT", ["api", "datasources", "uid", uid]:
                if uid not in st.datasources:
                    return 404, {"message": "Data source not found"}
                old = st.datasources[uid]
                st.datasources[uid] = {
                    **body,
                    "id": old["id"],
                    "uid": uid,
                    "version": old["version"] + 1,
                }
                return 200, {"datasource": st.datasources[uid], "message": "Datasource updated"}
            case "GET", ["api", "dashboards", "uid", uid]:
                if uid not in st.dashboards:
                    return 404, {"message": "Dashboard not found"}
                return 200, st.dashboards[uid]
            case "POST", ["api", "dashboards", "db"]:
                return self._save_dashboard(body)
        return 404, {"message": "Not found"}

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        st = self.state
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            return 400, {"message": "bad request data"}
        dash = body["dashboard"]
        if not dash.get("title") or not dash.get("uid"):
            return 400, {"message": "Dashboard title and uid cannot be empty"}
        folder = body.get("folderUid")
        if folder and folder not in st.folders:
            return 400, {"message": "folder not found"}
        uid = dash["uid"]
        existing = st.dashboards.get(uid)
        if existing is not None and not body.get("overwrite"):
            return 412, {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            }
        version = existing["dashboard"]["version"] + 1 if existing else 1
        ident = existing["dashboard"]["id"] if existing else st.new_id()
        stored = {**dash, "id": ident, "version": version}
        st.dashboards[uid] = {
            "dashboard": stored,
            "meta": {"folderUid": folder or "", "version": version},
        }
        return 200, {"id": ident, "uid": uid, "status": "success", "version": version}

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


class GrafanaStandIn:
    """Serve a :class:`GrafanaState` on 127.0.0.1 (free port) in a thread."""

    def __init__(self, token: str) -> None:
        self.state = GrafanaState(token=token)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> GrafanaStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
