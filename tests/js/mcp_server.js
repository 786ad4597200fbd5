// An HTTP MCP agent built with the official TypeScript SDK (npm @modelcontextprotocol/sdk),
// for the black-box tests of tests/api/mcp_sdks.rs: the hub calls it through
// POST /api/v1/mcp/call.
//
//   node mcp_server.js PORT MODE
//
// MODE is `stateful` (the SDK's Streamable HTTP server transport with a session id generator,
// wired as in the SDK's own example: `initialize` opens a session, later requests must carry
// its Mcp-Session-Id, answers are SSE) or `stateless` (`sessionIdGenerator: undefined`,
// `enableJsonResponse: true`, a fresh server and transport per request). The endpoint is
// http://127.0.0.1:PORT/mcp.
//
// Tools: `echo` ({message} -> "Echo: <message>") and `fail` (throws "tool broke", which the SDK
// answers as a result with isError: true).
//
// Prints READY on stdout once listening, then one JSON line per HTTP request it answered:
// {"method": <JSON-RPC method or null>, "session": <whether Mcp-Session-Id was sent>,
//  "status": <HTTP status>}, so the tests can see what the hub sent.
const http = require("node:http");
const { randomUUID } = require("node:crypto");
const { z } = require("zod");
const { McpServer } = require("@modelcontextprotocol/sdk/server/mcp.js");
const { StreamableHTTPServerTransport } = require("@modelcontextprotocol/sdk/server/streamableHttp.js");
const { isInitializeRequest } = require("@modelcontextprotocol/sdk/types.js");

const port = Number(process.argv[2]);
const mode = process.argv[3];
if (!port || !["stateful", "stateless"].includes(mode)) {
  console.error("usage: node mcp_server.js PORT stateful|stateless");
  process.exit(2);
}

function buildServer() {
  const server = new McpServer({ name: "agenthub-test-node", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echo a message", inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: "text", text: `Echo: ${message}` }] }),
  );
  server.registerTool(
    "fail",
    { description: "Always fails", inputSchema: { message: z.string().optional() } },
    async () => {
      throw new Error("tool broke");
    },
  );
  return server;
}

// Stateful mode: the open sessions' transports.
const transports = {};

async function handle(req, res, body) {
  const sessionId = req.headers["mcp-session-id"];
  if (mode === "stateless") {
    const server = buildServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
    return;
  }
  let transport;
  if (sessionId && transports[sessionId]) {
    transport = transports[sessionId];
  } else if (!sessionId && req.method === "POST" && isInitializeRequest(body)) {
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports[id] = transport;
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) delete transports[transport.sessionId];
    };
    await buildServer().connect(transport);
  } else {
    res.writeHead(400, { "Content-Type": "application/json" });
    res.end(JSON.stringify({
      jsonrpc: "2.0",
      error: { code: -32000, message: "Bad Request: No valid session ID provided" },
      id: null,
    }));
    return;
  }
  await transport.handleRequest(req, res, body);
}

const httpServer = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    let body;
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
    } catch {
      body = undefined;
    }
    res.on("close", () => {
      const line = {
        method: body && typeof body === "object" ? body.method ?? null : null,
        session: req.headers["mcp-session-id"] !== undefined,
        status: res.statusCode,
      };
      process.stdout.write(JSON.stringify(line) + "\n");
    });
    if (new URL(req.url, "http://x").pathname !== "/mcp") {
      res.writeHead(404).end();
      return;
    }
    try {
      await handle(req, res, body);
    } catch (err) {
      console.error(err);
      if (!res.headersSent) res.writeHead(500).end();
    }
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write("READY\n");
});
