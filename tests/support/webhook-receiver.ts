/**
 * A local stand-in for an alert webhook (ntfy, Slack, healthchecks.io): an HTTP server that records
 * every request it gets and answers 200, or, once per `failNext`, the status it was told to. Tests
 * point ALERT_URL at `url` (plus any path) and read `requests` afterwards.
 *
 * The server runs in a worker thread: a suite that drives the server twin with synchronous calls
 * (the lifecycle suite's `systemctl start`, its SSH steps) blocks its own event loop while the
 * twin's alert waits for an answer, and an in-thread server could not give one. The requests come
 * back over a message port that `requests` reads synchronously.
 *
 * It listens on 127.0.0.1 unless told otherwise: a test whose sender runs in a container passes the
 * address the container reaches the host at (e.g. the Docker bridge's gateway) to `start`.
 */
import type { IncomingHttpHeaders } from "node:http";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";

export interface ReceivedRequest {
  method: string;
  /** The request target as sent: path and query string, e.g. `/x/s3cr3t-token/fail`. */
  path: string;
  /** As Node parses them: names in lower case. */
  headers: IncomingHttpHeaders;
  body: string;
}

/** The worker's program: plain JavaScript, evaluated as CommonJS in the thread. */
const SERVER = `
const { parentPort, workerData } = require("node:worker_threads");
const { createServer } = require("node:http");
const failures = [];
parentPort.on("message", (m) => {
  if (m.fail !== undefined) failures.push(m.fail);
  if (m.clear) failures.length = 0;
});
const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    // Recorded before the answer goes out, so a sender that awaited its POST finds it recorded.
    workerData.requests.postMessage({
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    });
    const status = failures.shift() ?? 200;
    res.writeHead(status, { "content-type": "text/plain" }).end(status < 300 ? "ok" : "failed on purpose");
  });
});
server.once("error", (err) => parentPort.postMessage({ error: String(err) }));
server.listen(0, workerData.host, () => parentPort.postMessage({ port: server.address().port }));
`;

export class WebhookReceiver {
  private received: ReceivedRequest[] = [];
  private worker: Worker | undefined;
  private inbox: MessagePort | undefined;
  private host = "127.0.0.1";
  private listeningOn = 0;

  /** Listens on a free port of `host`; resolves once it accepts connections. */
  async start(host = "127.0.0.1"): Promise<this> {
    if (this.worker) throw new Error("the webhook receiver is already started");
    this.host = host;
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(SERVER, { eval: true, workerData: { host, requests: port2 }, transferList: [port2] });
    this.listeningOn = await new Promise<number>((resolve, reject) => {
      worker.once("message", (m: { port?: number; error?: string }) =>
        m.port ? resolve(m.port) : reject(new Error(`webhook receiver: ${m.error}`)),
      );
      worker.once("error", reject);
    });
    this.worker = worker;
    this.inbox = port1;
    return this;
  }

  /** Every request received since the start or the last `clear()`, oldest first. */
  get requests(): ReceivedRequest[] {
    for (
      let m = this.inbox && receiveMessageOnPort(this.inbox);
      m;
      m = this.inbox && receiveMessageOnPort(this.inbox)
    ) {
      this.received.push(m.message as ReceivedRequest);
    }
    return this.received;
  }

  /** The port it listens on (for a sender that reaches it at another address than `url`'s). */
  get port(): number {
    if (!this.worker) throw new Error("the webhook receiver is not started");
    return this.listeningOn;
  }

  /** `http://<host>:<port>`, without a trailing slash: append the path a test wants. */
  get url(): string {
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}`;
  }

  /** The next request is answered with `status` (e.g. 500) instead of 200; calls queue up. */
  failNext(status = 500): void {
    this.worker?.postMessage({ fail: status });
  }

  /** Forgets the recorded requests and any failure still queued. */
  clear(): void {
    void this.requests;
    this.received = [];
    this.worker?.postMessage({ clear: true });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.inbox?.close();
    await worker?.terminate();
  }
}
