"""``driftgate review next|label`` against a stand-in gateway (an httpx mock transport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from driftgate import cli, review_cli
from driftgate.core.client import Client

ITEM = {
    "id": 7,
    "adapter": "support",
    "version": 2,
    "request_id": "req-7",
    "prompt": "My VPN\ntoken expired",
    "completion": "Q-HW",
}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("authorization") != "Bearer sk-acme":
            return httpx.Response(401, json={"error": {"message": "invalid API key"}})
        if request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [ITEM]})
        if request.url.path.endswith("/7"):
            return httpx.Response(202, json={"id": 7, "request_id": "req-7"})
        error = {"message": "no review item with this id", "code": "not_found"}
        return httpx.Response(404, json={"error": error})

    def client(url: str, key: str | None, **kw: Any) -> Client:
        return Client(url, key, transport=httpx.MockTransport(answer))

    monkeypatch.setattr(review_cli, "Client", client)
    monkeypatch.setenv("DRIFTGATE_API_KEY", "sk-acme")
    return seen


def test_next_shows_the_items_of_an_adapter(
    gateway: list[httpx.Request], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["review", "next", "--adapter", "support", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert "#7 support@2 req-7" in out and "prompt: My VPN token expired" in out
    assert dict(gateway[0].url.params) == {"adapter": "support", "limit": "3"}


def test_label_and_correction_are_sent_as_the_body(
    gateway: list[httpx.Request], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["review", "label", "7", "--label", "Q-NET"]) == 0
    assert cli.main(["review", "label", "7", "--correction", "Q-NET, then reset"]) == 0
    assert [json.loads(r.content) for r in gateway] == [
        {"label": "Q-NET"},
        {"correction": "Q-NET, then reset"},
    ]
    assert gateway[0].url.path == "/v1/review/items/7"
    assert "labelled #7 (request req-7)" in capsys.readouterr().out


def test_refusals_are_one_line_errors(
    gateway: list[httpx.Request],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli.main(["review", "label", "8", "--label", "Q"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    monkeypatch.setenv("DRIFTGATE_API_KEY", "sk-other")
    assert cli.main(["review", "next", "--adapter", "support"]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    monkeypatch.delenv("DRIFTGATE_API_KEY")
    assert cli.main(["review", "next", "--adapter", "support"]) == 1
    assert "DRIFTGATE_API_KEY" in capsys.readouterr().err


def test_label_needs_exactly_one_of_label_or_correction() -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["review", "label", "7"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["review", "label", "7", "--label", "a", "--correction", "b"])
