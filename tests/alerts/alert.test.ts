/**
 * alerts/alert.sh, the server's sender, speaking to a local webhook receiver in each channel's
 * format (the Worker's formats: tests/alerts/dead-mans-switch.test.ts), and keeping the URL's token
 * out of everything it prints.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { renderAlertsEnv } from "../../alerts/render";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { WebhookReceiver } from "../support/webhook-receiver";

const ALERT = join(PROJECT_ROOT, "alerts/alert.sh");
const TOKEN = "tk_s3cr3t-0123456789";
const dir = mkdtempSync(join(tmpdir(), "webstack-alert-"));
let receiver: WebhookReceiver;

/** alert.sh with the given environment (and nothing of the test's own ALERT_* variables). */
function alert(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      [ALERT, ...args],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ALERT_ENV_FILE: "/nonexistent", ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function channel(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ALERT_CHANNEL: name,
    ALERT_URL: `${receiver.url}/hook/${TOKEN}`,
    ALERT_STACK: "shop-prod",
    ALERT_STATE_DIR: join(dir, "state"),
    ...extra,
  };
}

beforeAll(async () => {
  receiver = await new WebhookReceiver().start();
});

afterAll(async () => {
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  receiver.clear();
  rmSync(join(dir, "state"), { recursive: true, force: true });
});

describe("alert.sh in each channel's format", () => {
  it("posts to ntfy the body, with the stack in the title, high priority and a siren tag", async () => {
    const r = await alert(channel("ntfy"), "disk /srv/data is 91% full", "2.1 GiB free of 40 GiB.");
    expect(r.status, r.stderr).toBe(0);
    expect(receiver.requests).toHaveLength(1);
    const [req] = receiver.requests;
    expect(req).toMatchObject({ method: "POST", path: `/hook/${TOKEN}`, body: "2.1 GiB free of 40 GiB." });
    expect(req.headers).toMatchObject({
      title: "[shop-prod] disk /srv/data is 91% full",
      priority: "high",
      tags: "rotating_light",
    });
    expect(req.headers.email).toBeUndefined();
  });

  it("asks ntfy to mail the alert when an address is set, and marks a resolution as such", async () => {
    const r = await alert(channel("ntfy", { ALERT_EMAIL: "ops@example.com" }), "--kind", "resolved", "disk is fine");
    expect(r.status, r.stderr).toBe(0);
    expect(receiver.requests[0].headers).toMatchObject({
      email: "ops@example.com",
      priority: "default",
      tags: "white_check_mark",
    });
  });

  it("posts a Slack-compatible JSON text, whatever quotes and line breaks the message holds", async () => {
    const body = 'Its last log lines:\nError: "connect ECONNREFUSED" \\ done';
    const r = await alert(channel("slack"), 'api is not running (exited, exit code 1) "x"', body);
    expect(r.status, r.stderr).toBe(0);
    const [req] = receiver.requests;
    expect(req.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req.body)).toEqual({
      text: `:rotating_light: [shop-prod] api is not running (exited, exit code 1) "x"\n${body}`,
    });
  });

  it("sends healthchecks an alert on /fail, and a resolution to the URL itself when no problem is left open", async () => {
    await alert(channel("healthchecks"), "webstack-backup.service failed", "FAILED at dump");
    await alert(channel("healthchecks"), "--kind", "resolved", "resolved: disk");
    expect(receiver.requests.map((r) => r.path)).toEqual([`/hook/${TOKEN}/fail`, `/hook/${TOKEN}`]);
    expect(receiver.requests[0].body).toBe("[shop-prod] webstack-backup.service failed\nFAILED at dump");
  });

  it("keeps a healthchecks check down while another problem is still open: the resolution goes to /log", async () => {
    mkdirSync(join(dir, "state/open"), { recursive: true });
    writeFileSync(join(dir, "state/open/tunnel"), "1 1\nthe tunnel connector is down\n");
    await alert(channel("healthchecks"), "--kind", "resolved", "resolved: disk");
    expect(receiver.requests.map((r) => r.path)).toEqual([`/hook/${TOKEN}/log`]);
  });
});

describe("alert.sh when something is off", () => {
  it("writes the alert to the journal and succeeds when no channel is configured", async () => {
    const r = await alert({ ALERT_STACK: "shop-staging" }, "restarted api: it was unhealthy");
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("webstack-alert: ALERT: [shop-staging] restarted api: it was unhealthy");
    expect(r.stderr).toContain("no alerts channel is configured");
  });

  it("fails when the channel refuses, without printing the URL's token", async () => {
    for (let i = 0; i < 4; i++) receiver.failNext(500);
    const r = await alert(channel("ntfy"), "deploy of release r2 failed and was rolled back");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("the ntfy channel did not take the alert");
    expect(receiver.requests).toHaveLength(4);
    expect(r.stderr + r.stdout).not.toContain(TOKEN);
  });

  it("reads its environment file as data: a URL with shell syntax in it is called as written", async () => {
    const marker = join(dir, "ran");
    // Shell syntax a sourced file would run: a command substitution, and $IFS for its space.
    const shell = ["$(touch", "$", "{IFS}", marker, ")"].join("");
    const url = `${receiver.url}/hook/${shell}`;
    const envFile = join(dir, "alerts.env");
    writeFileSync(
      envFile,
      renderAlertsEnv({
        channel: "ntfy",
        url,
        stack: "shop-prod",
        diskPercent: 85,
        composeFile: "/srv/data/app/compose.yaml",
      }),
    );
    const r = await alert({ ALERT_ENV_FILE: envFile }, "a test alert");
    expect(r.status, r.stderr).toBe(0);
    expect(decodeURIComponent(receiver.requests[0].path)).toBe(`/hook/${shell}`);
    expect(() => rmSync(marker)).toThrow();
  });
});
