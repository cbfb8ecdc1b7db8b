/**
 * The dead man's switch (alerts/dead-mans-switch.js) in the real Workers runtime: workerd, started
 * by miniflare, with miniflare's local R2 as the backups bucket and a local webhook as the channel.
 * Each test deploys the file as it is uploaded and fires its cron at chosen times.
 *
 * R2 stamps an object's `uploaded` with the real clock, so a test cannot make a backup that is 30
 * hours old: it puts latest.json and runs the cron 30 hours later instead (the switch takes "now"
 * from the run's scheduledTime). A new stack's wait has no such limit: those runs can start in the
 * past, so a first backup put now can follow them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Miniflare } from "miniflare";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WebhookReceiver } from "../support/webhook-receiver";

const WORKER = join(__dirname, "..", "..", "alerts", "dead-mans-switch.js");
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** The secret part of the webhook URL, as in a Slack or healthchecks.io URL. */
const TOKEN = "s3cr3t-token";
const STACK = "shop-prod";
const BUCKET = "shop-prod-backups";

interface Switch {
  /** Fires the hourly cron at `at` (ms); resolves to the run's outcome, "ok" or "exception". */
  run(at: number): Promise<string>;
  /** Sends an HTTP request to the worker. */
  fetch(url: string): Promise<Response>;
  /** Puts latest.json as a completed backup does; resolves to the time R2 stamped it with. */
  backup(): Promise<number>;
  /** dead-mans-switch.json as the worker left it, or null. */
  state(): Promise<Record<string, string> | null>;
  /** The version R2 gave dead-mans-switch.json when it was last written, or null. */
  stateVersion(): Promise<string | null>;
  /** Overwrites dead-mans-switch.json with `text`. */
  putState(text: string): Promise<void>;
  /** What workerd printed (verbose), where an uncaught error's message shows. */
  log(): Promise<string>;
}

/**
 * The parts of miniflare's proxies to the worker and its bucket that the tests use. Miniflare types
 * them with @cloudflare/workers-types, which the project does not install.
 */
interface WorkerProxy {
  scheduled(options: { scheduledTime: Date; cron: string }): Promise<{ outcome: string }>;
  fetch(url: string): Promise<Response>;
}
interface BucketProxy {
  put(key: string, value: string): Promise<unknown>;
  head(key: string): Promise<{ uploaded: Date; version: string } | null>;
  get(key: string): Promise<{ text(): Promise<string> } | null>;
}

let receiver: WebhookReceiver;
let mf: Miniflare | undefined;

beforeAll(async () => {
  receiver = await new WebhookReceiver().start();
});
afterAll(() => receiver?.close());
beforeEach(() => receiver.clear());
afterEach(async () => {
  await mf?.dispose();
  mf = undefined;
});

/** Starts the worker with the prod stack's bindings (an ntfy channel) and the given changes. */
async function deploy(bindings: Record<string, string> = {}): Promise<Switch> {
  let log = "";
  mf = new Miniflare({
    modules: [{ type: "ESModule", path: "dead-mans-switch.js", contents: readFileSync(WORKER, "utf8") }],
    compatibilityDate: "2026-07-01",
    r2Buckets: ["BACKUPS"],
    bindings: {
      ALERT_URL: `${receiver.url}/x/${TOKEN}`,
      ALERT_CHANNEL: "ntfy",
      STACK,
      BUCKET,
      MAX_AGE_HOURS: "26",
      ...bindings,
    },
    // The placeholder request.cf: no download from Cloudflare.
    cf: false,
    verbose: true,
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      for (const stream of [stdout, stderr]) stream.on("data", (chunk: Buffer) => (log += chunk.toString()));
    },
  });
  const instance = mf;
  const worker = async () => (await instance.getWorker()) as unknown as WorkerProxy;
  const bucket = (await instance.getR2Bucket("BACKUPS")) as unknown as BucketProxy;
  return {
    async run(at) {
      const result = await (await worker()).scheduled({ scheduledTime: new Date(at), cron: "17 * * * *" });
      return result.outcome;
    },
    fetch: async (url) => (await worker()).fetch(url),
    async backup() {
      await bucket.put("latest.json", JSON.stringify({ key: "daily/shop-20261201T021700Z.dump.age" }));
      const head = await bucket.head("latest.json");
      return head!.uploaded.getTime();
    },
    async stateVersion() {
      return (await bucket.head("dead-mans-switch.json"))?.version ?? null;
    },
    async putState(text) {
      await bucket.put("dead-mans-switch.json", text);
    },
    async state() {
      const object = await bucket.get("dead-mans-switch.json");
      return object ? JSON.parse(await object.text()) : null;
    },
    async log() {
      // Its stderr is a pipe of its own, read apart from the answer to the run: let it settle.
      await sleep(100);
      return log;
    },
  };
}

/** An ISO time to the second, as the messages give it. */
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const titles = () => receiver.requests.map((r) => r.headers.title);

describe("with a backup younger than MAX_AGE_HOURS", () => {
  it("sends nothing and writes no state", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    for (const hours of [1, 12, 25]) expect(await dms.run(uploaded + hours * HOUR)).toBe("ok");
    expect(receiver.requests).toEqual([]);
    expect(await dms.state()).toBeNull();
  });

  it("still waits when the backup is exactly MAX_AGE_HOURS old", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    expect(await dms.run(uploaded + 26 * HOUR)).toBe("ok");
    expect(receiver.requests).toEqual([]);
  });
});

describe("when the last backup is older than MAX_AGE_HOURS", () => {
  it("posts one ntfy alert: the stack and the age in whole hours in the title, high priority, the alert tag", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    expect(await dms.run(uploaded + 30 * HOUR + 45 * MINUTE)).toBe("ok");
    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request!.method).toBe("POST");
    expect(request!.path).toBe(`/x/${TOKEN}`);
    expect(request!.headers.title).toBe("[shop-prod] no backup for 30 hours");
    expect(request!.headers.priority).toBe("high");
    expect(request!.headers.tags).toBe("rotating_light");
    expect(request!.headers.email).toBeUndefined();
  });

  it("says in the body when and where the last backup finished, what may be wrong and what to check", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    await dms.run(uploaded + 30 * HOUR);
    const body = receiver.requests[0]!.body;
    expect(body).toContain(`The last backup finished at ${iso(uploaded)}, in bucket ${BUCKET}.`);
    expect(body).toContain("The daily backup should have run since");
    expect(body).toContain("the server may be down or its backup timer stopped");
    for (const check of [
      "systemctl status webstack-backup.timer",
      "journalctl -u webstack-backup",
      "docs/restore.md",
    ]) {
      expect(body).toContain(check);
    }
  });

  it("sends nothing more on the hourly runs that follow", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    for (let hours = 30; hours <= 41; hours++) expect(await dms.run(uploaded + hours * HOUR)).toBe("ok");
    expect(titles()).toEqual(["[shop-prod] no backup for 30 hours"]);
  });

  it("writes its state when it alerts, and not again on the quiet runs", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    await dms.run(uploaded + 30 * HOUR);
    const alerted = new Date(uploaded + 30 * HOUR).toISOString();
    expect(await dms.state()).toEqual({ alertingSince: alerted, lastSent: alerted });
    const version = await dms.stateVersion();
    for (let hours = 31; hours <= 41; hours++) await dms.run(uploaded + hours * HOUR);
    expect(await dms.stateVersion()).toBe(version);
  });

  it("reminds every 12 hours while it lasts, with 'still' in the title", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    for (let hours = 30; hours <= 55; hours++) await dms.run(uploaded + hours * HOUR);
    expect(titles()).toEqual([
      "[shop-prod] no backup for 30 hours",
      "[shop-prod] still no backup for 42 hours",
      "[shop-prod] still no backup for 54 hours",
    ]);
    expect(receiver.requests[1]!.headers.priority).toBe("high");
  });

  it("is resolved by a newer backup: one 'backups are back' message, then silence", async () => {
    const dms = await deploy();
    const stale = await dms.backup();
    await dms.run(stale + 30 * HOUR);
    const fresh = await dms.backup();
    // R2 stamps the new backup with the real clock, so this run is scheduled from that stamp:
    // earlier than the alerting run, which the switch does not mind (it compares ages).
    for (const hours of [1, 2]) expect(await dms.run(fresh + hours * HOUR)).toBe("ok");
    expect(titles()).toEqual([
      "[shop-prod] no backup for 30 hours",
      `[shop-prod] backups are back: the last finished at ${iso(fresh)}`,
    ]);
    const resolved = receiver.requests[1]!;
    expect(resolved.headers.priority).toBe("default");
    expect(resolved.headers.tags).toBe("white_check_mark");
    expect(resolved.body).toContain(`A backup finished at ${iso(fresh)}, in bucket ${BUCKET}.`);
    expect(await dms.state()).toEqual({});
  });
});

describe("a new stack before its first backup", () => {
  // Runs in the past, so that a backup put now comes after them.
  const start = Date.now() - 60 * HOUR;

  it("records when it first found no latest.json, and sends nothing", async () => {
    const dms = await deploy();
    expect(await dms.run(start)).toBe("ok");
    expect(await dms.state()).toEqual({ firstSeen: new Date(start).toISOString() });
    expect(receiver.requests).toEqual([]);
  });

  it("alerts once MAX_AGE_HOURS have passed since then: no backup has completed since that time", async () => {
    const dms = await deploy();
    for (const hours of [0, 1, 26, 27, 28]) expect(await dms.run(start + hours * HOUR)).toBe("ok");
    expect(titles()).toEqual([`[shop-prod] no backup has completed since ${iso(start)}`]);
    expect(receiver.requests[0]!.body).toContain(
      `No backup has ever finished in bucket ${BUCKET}: it has had no latest.json since ${iso(start)}.`,
    );
    expect((await dms.state())!.firstSeen).toBe(new Date(start).toISOString());
  });

  it("reminds with the same start: still no backup has completed since that time", async () => {
    const dms = await deploy();
    for (const hours of [0, 27, 39]) await dms.run(start + hours * HOUR);
    expect(titles()).toEqual([
      `[shop-prod] no backup has completed since ${iso(start)}`,
      `[shop-prod] still no backup has completed since ${iso(start)}`,
    ]);
  });

  it("is resolved by the first backup, after which it no longer keeps firstSeen", async () => {
    const dms = await deploy();
    for (const hours of [0, 27]) await dms.run(start + hours * HOUR);
    const first = await dms.backup();
    for (const hours of [1, 2]) expect(await dms.run(first + hours * HOUR)).toBe("ok");
    expect(titles()).toEqual([
      `[shop-prod] no backup has completed since ${iso(start)}`,
      `[shop-prod] backups are back: the last finished at ${iso(first)}`,
    ]);
    expect(await dms.state()).toEqual({});
  });

  it("drops firstSeen when a backup comes before any alert", async () => {
    const dms = await deploy();
    await dms.run(start);
    const first = await dms.backup();
    await dms.run(first + HOUR);
    expect(await dms.state()).toEqual({});
    expect(receiver.requests).toEqual([]);
  });
});

describe("a state object it cannot read", () => {
  it("is started over: the switch goes on, and alerts rather than stay silent", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    await dms.putState("{ not json");
    expect(await dms.run(uploaded + 30 * HOUR)).toBe("ok");
    expect(titles()).toEqual(["[shop-prod] no backup for 30 hours"]);
    expect((await dms.state())!.alertingSince).toBe(new Date(uploaded + 30 * HOUR).toISOString());
  });

  it("reminds when an alerting state has lost its lastSent", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    await dms.putState(JSON.stringify({ alertingSince: new Date(uploaded + 27 * HOUR).toISOString() }));
    await dms.run(uploaded + 30 * HOUR);
    expect(titles()).toEqual(["[shop-prod] still no backup for 30 hours"]);
  });
});

describe("the channel formats, which the server's alert script shares", () => {
  const start = Date.now() - 60 * HOUR;

  /** An alert, then its resolution by a first backup. */
  async function alertThenResolve(dms: Switch): Promise<number> {
    for (const hours of [0, 27]) await dms.run(start + hours * HOUR);
    const first = await dms.backup();
    await dms.run(first + HOUR);
    expect(receiver.requests).toHaveLength(2);
    return first;
  }

  it("ntfy: adds an Email header when ALERT_EMAIL is set", async () => {
    const dms = await deploy({ ALERT_EMAIL: "oncall@example.com" });
    await alertThenResolve(dms);
    expect(receiver.requests.map((r) => r.headers.email)).toEqual(["oncall@example.com", "oncall@example.com"]);
  });

  it("slack: posts JSON whose only field is the text, emoji first, then the title and the body", async () => {
    const dms = await deploy({ ALERT_CHANNEL: "slack" });
    const first = await alertThenResolve(dms);
    const [alert, resolved] = receiver.requests;
    expect(alert!.path).toBe(`/x/${TOKEN}`);
    expect(alert!.headers["content-type"]).toBe("application/json");
    const alertJson = JSON.parse(alert!.body);
    expect(Object.keys(alertJson)).toEqual(["text"]);
    expect(alertJson.text).toMatch(
      new RegExp(`^:rotating_light: \\[shop-prod\\] no backup has completed since ${iso(start)}\nNo backup has ever`),
    );
    expect(alertJson.text).toContain("systemctl status webstack-backup.timer");
    expect(JSON.parse(resolved!.body)).toEqual({
      text: `:white_check_mark: [shop-prod] backups are back: the last finished at ${iso(first)}\nA backup finished at ${iso(first)}, in bucket ${BUCKET}.`,
    });
  });

  it("healthchecks: the alert posts to the ping URL's /fail, the resolution to the URL itself", async () => {
    const dms = await deploy({ ALERT_CHANNEL: "healthchecks", ALERT_URL: `${receiver.url}/x/${TOKEN}/` });
    const first = await alertThenResolve(dms);
    const [alert, resolved] = receiver.requests;
    expect([alert!.method, alert!.path]).toEqual(["POST", `/x/${TOKEN}/fail`]);
    expect([resolved!.method, resolved!.path]).toEqual(["POST", `/x/${TOKEN}/`]);
    expect(alert!.body).toMatch(new RegExp(`^\\[shop-prod\\] no backup has completed since ${iso(start)}\nNo backup`));
    expect(resolved!.body).toBe(
      `[shop-prod] backups are back: the last finished at ${iso(first)}\nA backup finished at ${iso(first)}, in bucket ${BUCKET}.`,
    );
  });

  it("an unknown ALERT_CHANNEL fails every run, naming the binding and the allowed values", async () => {
    const dms = await deploy({ ALERT_CHANNEL: "email" });
    const uploaded = await dms.backup();
    expect(await dms.run(uploaded + HOUR)).toBe("exception");
    expect(await dms.log()).toContain('ALERT_CHANNEL must be one of ntfy, slack, healthchecks, got "email"');
    expect(receiver.requests).toEqual([]);
  });
});

describe("when the webhook fails", () => {
  it("fails the run on a non-2xx answer and keeps the state, so the next run sends the alert again", async () => {
    const dms = await deploy();
    const uploaded = await dms.backup();
    receiver.failNext(500);
    expect(await dms.run(uploaded + 30 * HOUR)).toBe("exception");
    expect(await dms.log()).toContain('the ntfy webhook answered 500 to "no backup for 30 hours"');
    expect(await dms.state()).toBeNull();
    expect(await dms.run(uploaded + 31 * HOUR)).toBe("ok");
    expect(await dms.run(uploaded + 32 * HOUR)).toBe("ok");
    expect(titles()).toEqual(["[shop-prod] no backup for 30 hours", "[shop-prod] no backup for 31 hours"]);
  });

  it("fails the run when the webhook cannot be reached, and names no URL in the error", async () => {
    const closed = await new WebhookReceiver().start();
    const url = `${closed.url}/x/${TOKEN}`;
    await closed.close();
    const dms = await deploy({ ALERT_URL: url });
    const uploaded = await dms.backup();
    expect(await dms.run(uploaded + 30 * HOUR)).toBe("exception");
    expect(await dms.log()).toContain("could not reach the ntfy webhook");
    expect(await dms.log()).not.toContain(TOKEN);
    expect(await dms.state()).toBeNull();
  });
});

describe("the webhook URL, a secret", () => {
  it("is not quoted in the error when the runtime cannot use it, even as the runtime spells it", async () => {
    // workerd quotes these back: "Invalid URL: …", "Fetch API cannot load: ftp://127.0.0.1/x/…".
    const urls = [
      `http://127.0.0.1:99999/x/${TOKEN}`,
      `hooks.example/x/${TOKEN}`,
      `ftp://127.0.0.1/x/${TOKEN}`,
      `FTP://127.0.0.1/./x/${TOKEN}`,
    ];
    for (const url of urls) {
      const dms = await deploy({ ALERT_URL: url });
      const uploaded = await dms.backup();
      expect(await dms.run(uploaded + 30 * HOUR)).toBe("exception");
      const log = await dms.log();
      expect(log).toContain("could not reach the ntfy webhook: ");
      expect(log).not.toContain(TOKEN);
      await mf!.dispose();
      mf = undefined;
    }
  });

  it("appears in no title, body or log line, on any channel", async () => {
    const start = Date.now() - 60 * HOUR;
    for (const channel of ["ntfy", "slack", "healthchecks"]) {
      const dms = await deploy({ ALERT_CHANNEL: channel, ALERT_EMAIL: "oncall@example.com" });
      for (const hours of [0, 27, 39]) await dms.run(start + hours * HOUR);
      const first = await dms.backup();
      await dms.run(first + HOUR);
      expect(await dms.log()).not.toContain(TOKEN);
      await mf!.dispose();
      mf = undefined;
    }
    // An alert, a reminder and a resolution on each channel.
    expect(receiver.requests).toHaveLength(9);
    for (const { headers, body } of receiver.requests) {
      expect(body).not.toContain(TOKEN);
      expect(body).not.toContain(receiver.url);
      expect(JSON.stringify(headers)).not.toContain(TOKEN);
    }
  });
});

describe("any request to the worker", () => {
  it("is answered 404 not found: the cron is its only entry", async () => {
    const dms = await deploy();
    const response = await dms.fetch(`http://switch.example/x/${TOKEN}`);
    expect(response.status).toBe(404);
    expect(await response.text()).toBe("not found");
  });
});
