/**
 * alerts/health-check.sh on a real Docker engine: a small compose project plays the stack (a
 * service whose health the test flips, a service that crashes, the tunnel connector), a tmpfs
 * plays a disk filling up, the kernel's OOM killer kills a real container, and a local webhook
 * receiver gets the alerts. The tests run in order and share the project and the checker's state,
 * as the minutes of one server do.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { run } from "../support/stack-configs";
import { WebhookReceiver } from "../support/webhook-receiver";

const CHECK = join(PROJECT_ROOT, "alerts/health-check.sh");
const PROJECT = "webstack-health-test";
const IMAGE = "local/webstack-base:trixie";
const dir = mkdtempSync(join(tmpdir(), "webstack-health-"));
const composeFile = join(dir, "app/compose.yaml");
const disk = join(dir, "disk");
const rebootFile = join(dir, "reboot-required");
let receiver: WebhookReceiver;
let env: Record<string, string>;

const HEALTH = { interval: "1s", timeout: "2s", retries: 1, start_period: "0s" };

function docker(...args: string[]): string {
  const r = run("docker", args, { timeoutMs: 180_000 });
  if (r.status !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

const compose = (...args: string[]) => docker("compose", "-f", composeFile, ...args);

/** One run of the health check, as its timer starts it; what it printed. */
function check(extra: Record<string, string> = {}): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile("bash", [CHECK], { env: { ...env, ...extra }, timeout: 120_000 }, (error, _stdout, stderr) =>
      resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

/** The titles the receiver got since the last clear (ntfy's Title header). */
function titles(): string[] {
  return receiver.requests.map((r) => String(r.headers.title));
}

async function until(what: string, ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const health = (service: string) =>
  docker("inspect", "--format", "{{.State.Health.Status}}", `${PROJECT}-${service}-1`);

beforeAll(async () => {
  for (const script of ["scripts/start-dockerd.sh", "tests/stack/images/build.sh"]) {
    const r = run("bash", [join(PROJECT_ROOT, script)], { timeoutMs: 1_200_000 });
    if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  }
  mkdirSync(join(dir, "app"), { recursive: true });
  // Healthy while /tmp/healthy exists; a restart makes it again.
  const flaky = {
    image: IMAGE,
    command: ["sh", "-c", "touch /tmp/healthy && exec sleep infinity"],
    healthcheck: { test: ["CMD", "test", "-f", "/tmp/healthy"], ...HEALTH },
    init: true,
  };
  writeFileSync(
    composeFile,
    stringify({
      name: PROJECT,
      services: {
        api: flaky,
        cloudflared: { ...flaky },
        crasher: {
          image: IMAGE,
          command: ["sh", "-c", "sleep 1; exit 3"],
          restart: "unless-stopped",
          profiles: ["crash"],
        },
      },
    }),
  );
  run("docker", ["compose", "-f", composeFile, "--profile", "crash", "down", "--remove-orphans", "-t", "1"]);
  compose("up", "-d", "--wait");
  mkdirSync(disk);
  const mounted = run("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk]);
  if (mounted.status !== 0) throw new Error(`mount tmpfs: ${mounted.stderr}`);
  receiver = await new WebhookReceiver().start();
  env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    ALERT_CHANNEL: "ntfy",
    ALERT_URL: `${receiver.url}/alerts`,
    ALERT_STACK: "shop-prod",
    ALERT_STATE_DIR: join(dir, "state"),
    ALERT_COMPOSE_FILE: composeFile,
    ALERT_DISK_PATHS: disk,
    ALERT_DISK_PERCENT: "85",
    ALERT_REBOOT_FILE: rebootFile,
    ALERT_TUNNEL_SERVICE: "cloudflared",
    ALERT_RESTART_LIMIT: "2",
  };
}, 1_500_000);

afterAll(async () => {
  run("docker", ["compose", "-f", composeFile, "--profile", "crash", "down", "--remove-orphans", "-t", "1"]);
  run("docker", ["rm", "-f", `${PROJECT}-oom`]);
  run("umount", [disk]);
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => receiver.clear());

describe("the health check, minute by minute", () => {
  it("sends nothing while everything is well", async () => {
    const r = await check();
    expect(r.status, r.stderr).toBe(0);
    expect(receiver.requests).toEqual([]);
  });

  it("restarts an unhealthy container and says so, and the container is healthy again", async () => {
    compose("exec", "-T", "api", "rm", "/tmp/healthy");
    await until("api unhealthy", () => health("api") === "unhealthy");
    const r = await check();
    expect(r.status, r.stderr).toBe(0);
    expect(titles()).toEqual([`[shop-prod] restarted ${PROJECT}-api-1: it was unhealthy`]);
    expect(receiver.requests[0].body).toContain("restart 1 of at most 2");
    await until("api healthy again", () => health("api") === "healthy");
  });

  it("leaves a container unhealthy after the limit of restarts, says so once, and says when it is well", async () => {
    compose("exec", "-T", "api", "rm", "/tmp/healthy");
    await until("api unhealthy", () => health("api") === "unhealthy");
    await check();
    expect(titles()).toEqual([`[shop-prod] restarted ${PROJECT}-api-1: it was unhealthy`]);
    await until("api healthy again", () => health("api") === "healthy");
    receiver.clear();
    compose("exec", "-T", "api", "rm", "/tmp/healthy");
    await until("api unhealthy", () => health("api") === "unhealthy");
    await check();
    await check();
    expect(titles()).toEqual([
      `[shop-prod] ${PROJECT}-api-1 stays unhealthy: restarted 2 times in 30 minutes, now left as it is`,
    ]);
    expect(health("api")).toBe("unhealthy");
    compose("exec", "-T", "api", "touch", "/tmp/healthy");
    await until("api healthy", () => health("api") === "healthy");
    await check();
    expect(titles().slice(1)).toEqual([
      `[shop-prod] resolved: ${PROJECT}-api-1 stays unhealthy: restarted 2 times in 30 minutes, now left as it is`,
    ]);
  });

  it("tells a container that Docker restarts in a loop, with its last log lines, and when it is gone", async () => {
    compose("--profile", "crash", "up", "-d", "crasher");
    for (let i = 0; i < 4 && receiver.requests.length === 0; i++) {
      await check();
      await new Promise((r) => setTimeout(r, 2500));
    }
    expect(titles()).toHaveLength(1);
    expect(titles()[0]).toMatch(
      new RegExp(
        `^\\[shop-prod\\] ${PROJECT}-crasher-1 is restarting in a loop \\(restarted by Docker \\d+ times(; exit code 3)?\\)$`,
      ),
    );
    compose("--profile", "crash", "rm", "-sf", "crasher");
    await check();
    expect(titles()[1]).toMatch(/^\[shop-prod\] resolved: .*crasher-1 is restarting in a loop/);
  });

  it("says the tunnel is down when its connector stops, tries again when the channel fails, and says when it is back", async () => {
    compose("stop", "-t", "1", "cloudflared");
    for (let i = 0; i < 4; i++) receiver.failNext(503);
    const refused = await check();
    expect(refused.stderr).toContain("the ntfy channel did not take the alert");
    receiver.clear();
    await check();
    expect(titles()).toHaveLength(1);
    expect(titles()[0]).toMatch(
      new RegExp(
        `^\\[shop-prod\\] the tunnel connector is down: ${PROJECT}-cloudflared-1 is not running \\(exited, exit code \\d+\\); the site is unreachable through Cloudflare$`,
      ),
    );
    compose("start", "cloudflared");
    await until("cloudflared healthy", () => health("cloudflared") === "healthy");
    await check();
    expect(titles()[1]).toMatch(/^\[shop-prod\] resolved: the tunnel connector is down/);
  });

  it("leaves the containers alone while a deploy holds the app directory's lock", async () => {
    const lock = execFile("flock", [join(dir, "app"), "sleep", "8"]);
    await new Promise((r) => setTimeout(r, 500));
    compose("exec", "-T", "cloudflared", "rm", "/tmp/healthy");
    await until("cloudflared unhealthy", () => health("cloudflared") === "unhealthy");
    const r = await check();
    expect(r.stderr).toContain("a deploy is running: containers are not judged this time");
    expect(receiver.requests).toEqual([]);
    lock.kill();
    compose("exec", "-T", "cloudflared", "touch", "/tmp/healthy");
    await until("cloudflared healthy", () => health("cloudflared") === "healthy");
  });

  it("alerts on a disk above the threshold, reminds while it lasts, and says when there is room again", async () => {
    writeFileSync(join(disk, "big"), Buffer.alloc(3_800_000));
    await check();
    const used = run("df", ["-P", disk]).stdout.split("\n")[1].split(/\s+/)[4];
    expect(titles()).toEqual([`[shop-prod] disk ${disk} is ${used} full (above 85%)`]);
    await check();
    expect(titles()).toHaveLength(1);
    await check({ ALERT_REMIND_SECONDS: "0" });
    expect(titles()[1]).toMatch(/^\[shop-prod\] still: disk .* full \(above 85%\) \(since \d{4}-.+Z\)$/);
    rmSync(join(disk, "big"));
    await check();
    expect(titles()[2]).toBe(`[shop-prod] resolved: disk ${disk} is ${used} full (above 85%)`);
  });

  it("alerts once when the kernel kills a process for lack of memory, naming the container", async () => {
    await check();
    receiver.clear();
    const oom = run("docker", [
      "run",
      "--name",
      `${PROJECT}-oom`,
      "--label",
      `com.docker.compose.project=${PROJECT}`,
      "--memory",
      "48m",
      "--memory-swap",
      "48m",
      IMAGE,
      "python3",
      "-c",
      "b = bytearray(512 * 1024 * 1024)",
    ]);
    expect(oom.status).toBe(137);
    await check();
    expect(titles()).toHaveLength(1);
    expect(titles()[0]).toMatch(/^\[shop-prod\] \d+ process\(es\) killed for lack of memory$/);
    expect(receiver.requests[0].body).toMatch(new RegExp(`- python3 \\(pid \\d+\\) in container ${PROJECT}-oom`));
    await check();
    expect(titles()).toHaveLength(1);
  });

  it("alerts on a reboot pending past the nightly window, not before", async () => {
    writeFileSync(rebootFile, "*** System restart required ***\n");
    writeFileSync(`${rebootFile}.pkgs`, "linux-image-6.12.0-1-arm64\n");
    await check();
    expect(receiver.requests).toEqual([]);
    const thirtyHoursAgo = new Date(Date.now() - 30 * 3600_000);
    utimesSync(rebootFile, thirtyHoursAgo, thirtyHoursAgo);
    await check();
    expect(titles()).toEqual([
      "[shop-prod] a reboot has been pending for 30 hours: the nightly automatic reboot did not happen",
    ]);
    expect(receiver.requests[0].body).toContain("linux-image-6.12.0-1-arm64");
    rmSync(rebootFile);
    await check();
    expect(titles()[1]).toMatch(/^\[shop-prod\] resolved: a reboot has been pending/);
  });
});
