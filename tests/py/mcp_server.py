"""An HTTP MCP agent built with the official Python SDK (`mcp` on PyPI), for the black-box tests
of tests/api/mcp_sdks.rs: the hub calls it through POST /api/v1/mcp/call.

    mcp_server.py PORT MODE

MODE is `stateful` (the SDK's default Streamable HTTP transport: `initialize` handshake,
`Mcp-Session-Id`, answers as SSE) or `stateless` (`stateless_http=True, json_response=True`:
no session, plain JSON answers). The endpoint is http://127.0.0.1:PORT/mcp.

Tools: `echo` ({message} -> "Echo: <message>") and `fail` (raises ToolError("tool broke"), which
the SDK answers as a result with isError: true).

Prints READY on stdout once listening, then one JSON line per HTTP request it answered:
{"method": <JSON-RPC method or null>, "session": <whether Mcp-Session-Id was sent>,
 "status": <HTTP status>}, so the tests can see what the hub sent.
"""

import asyncio
import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build(stateless: bool):
    server = MCPServer("agenthub-test-python")

    @server.tool(description="Echo a message")
    def echo(message: str) -> str:
        return f"Echo: {message}"

    @server.tool(description="Always fails")
    def fail(message: str = "") -> str:
        raise ToolError("tool broke")

    return server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=stateless,
        json_response=stateless,
    )


def logged(app):
    """ASGI middleware: one JSON line per request (its JSON-RPC method, session, status)."""

    async def wrapper(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        body = bytearray()
        status = None

        async def recv():
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def snd(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, recv, snd)
        finally:
            try:
                method = json.loads(bytes(body)).get("method")
            except (ValueError, AttributeError):
                method = None
            session = any(k == b"mcp-session-id" for k, _ in scope["headers"])
            line = {"method": method, "session": session, "status": status}
            print(json.dumps(line), flush=True)

    return wrapper


async def main() -> None:
    port = int(sys.argv[1])
    mode = sys.argv[2]
    if mode not in ("stateful", "stateless"):
        sys.exit(f"unknown mode {mode!r}: stateful or stateless")
    app = build(stateless=mode == "stateless")
    config = uvicorn.Config(logged(app), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            sys.exit("the server stopped before listening")
        await asyncio.sleep(0.02)
    print("READY", flush=True)
    await serving


if __name__ == "__main__":
    asyncio.run(main())
