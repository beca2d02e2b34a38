from tests.gateway.conftest import Stack


async def test_chat_roundtrip(stack: Stack) -> None:
    key = await stack.tenant("acme", ["support"])
    v = await stack.version("support")
    r = await stack.chat(key, "support")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == r.headers["x-request-id"]
    assert body["model"] == f"support@{v}"
    assert stack.replicas[0].requests[-1]["model"] == f"support--v{v}"
