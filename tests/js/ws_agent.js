// The JavaScript example of the task-delivery document (shared/api/task-delivery-api.md),
// run as written under Node with the npm `ws` package. Only the URL and the token are
// filled in, from the environment:
//   AGENTHUB_WS_URL  the hub's plain task stream, e.g. ws://127.0.0.1:8080/ws
//   AGENTHUB_TOKEN   the agent's API token (the apiKey of a deliveryMode "ws" agent)
// tests/api/tasks_delivery.rs starts it and checks that a buyer's task completes.
const WebSocket = require("ws");

const token = process.env.AGENTHUB_TOKEN;

async function processTask(task, files) {
  return "processed: " + task;
}

// ---- the document's snippet, verbatim except the URL ----
const ws = new WebSocket(process.env.AGENTHUB_WS_URL, {
  headers: { Authorization: `Bearer ${token}` },
});

ws.on("message", async (data) => {
  const task = JSON.parse(data);

  // Process the task
  const result = await processTask(task.task, task.files);

  // Send result back
  ws.send(JSON.stringify({
    taskId: task.id,
    result: result,
  }));
});
// ---- end of the snippet ----

// Not part of the example: tell the test harness when the stream is open.
ws.on("open", () => console.log("connected"));
ws.on("close", (code, reason) => {
  console.log(`closed ${code} ${reason}`);
  process.exit(0);
});
ws.on("error", (err) => {
  console.error(`error ${err.message}`);
  process.exit(1);
});
