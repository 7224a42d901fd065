// The subscribers of bench/subscribers.py: N graphql-transport-ws connections in Node (its
// built-in WebSocket, --experimental-websocket on Node 20), so that the clients' own cost
// per message stays small next to the server's. Protocol on stdout, one JSON line each:
//   {"ready": N}                      every connection acknowledged and subscribed
//   (reads "go\n" on stdin)           then, per event: send the rename, time each `next`
//   {"latencies_ms": [...], "missing": k}   per event
// argv: graphqlUrl productId staffToken subscribers events pauseMs
import { createInterface } from "node:readline";

const [url, productId, token, countText, eventsText, pauseText] = process.argv.slice(2);
const count = Number(countText);
const events = Number(eventsText);
const pauseMs = Number(pauseText);
const wsUrl = url.replace(/^http/, "ws");
const subscription = "subscription ($id: ID!) { productUpdated(productId: $id) { id name } }";
const rename = "mutation ($id: ID!, $name: String!) { updateProduct(id: $id, input: {name: $name}) { userErrors { message } } }";

let sentAt = 0;
const arrivals = new Array(count).fill(-1);

function open(index) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl, "graphql-transport-ws");
    socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init" }));
    socket.onerror = (error) => reject(new Error(`socket ${index}: ${error.message ?? error}`));
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "connection_ack") {
        // One query first: the connection (and this handler) has carried a message before
        // the measured events, as a client's would have.
        socket.send(JSON.stringify({ type: "subscribe", id: "warm", payload: { query: "{ __typename }" } }));
      } else if (data.type === "complete" && data.id === "warm") {
        socket.send(JSON.stringify({ type: "subscribe", id: "1", payload: { query: subscription, variables: { id: productId } } }));
        resolve(socket);
      } else if (data.type === "next" && data.id === "1" && arrivals[index] < 0) {
        arrivals[index] = performance.now() - sentAt;
      } else if (data.type === "error") {
        reject(new Error(JSON.stringify(data)));
      }
    };
  });
}

const sockets = [];
for (let start = 0; start < count; start += 100) {
  const wave = [];
  for (let index = start; index < Math.min(count, start + 100); index += 1) wave.push(open(index));
  sockets.push(...(await Promise.all(wave)));
}
// Node's first fetch sets up its HTTP client: not part of any event's latency.
await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ __typename }" }) });
console.log(JSON.stringify({ ready: sockets.length }));

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === "go") break;
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function event(name) {
  arrivals.fill(-1);
  sentAt = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: rename, variables: { id: productId, name: `${name} ${Date.now()}` } }),
  });
  const body = await response.json();
  if (body.data?.updateProduct?.userErrors?.length !== 0) throw new Error(JSON.stringify(body));
  const deadline = performance.now() + 30000;
  while (arrivals.some((value) => value < 0) && performance.now() < deadline) await sleep(2);
  return arrivals.filter((value) => value >= 0);
}

// One event first, not reported: the server's first rename parses and plans its document
// and opens its first write transaction (~45 ms more than any later one).
await event("Warm-up");
await sleep(pauseMs);
for (let index = 0; index < events; index += 1) {
  const got = await event(`Bench ${index}`);
  console.log(JSON.stringify({ latencies_ms: got, missing: count - got.length }));
  await sleep(pauseMs);
}
for (const socket of sockets) socket.close();
process.exit(0);
