/**
 * The alerts in the resource graph: the server's part shipped on every stack, the dead man's
 * switch on Cloudflare where a channel is configured, and the channel's URL a secret everywhere.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ALERT_PATHS } from "../../alerts/render";
import { DEAD_MANS_SWITCH_CRON } from "../../components/alerts";
import { type EngineConfig, type ProgramRun, readStackFile, runProgram } from "../../scripts/mock-engine";
import { shippedFiles } from "../../scripts/plan";
import { configErrorOf, withChanges } from "../support/fixtures";
import { ofType, only } from "../support/graph";

const WORKER = "cloudflare:index/workersScript:WorkersScript";
const CRON = "cloudflare:index/workersCronTrigger:WorkersCronTrigger";
const URL_KEY = "secrets:ALERTS_URL";
const URL = "https://ntfy.sh/shop-alerts-Zq8xW2vY7tK4";

let prod: ProgramRun;
let staging: ProgramRun;

/** The prod stack with the alerts URL set as the CLI would hand it over. */
function prodWithUrl(value: string, secret = true): EngineConfig {
  const config = withChanges("prod", {});
  const secretKeys = config.secretKeys.filter((k) => k !== URL_KEY);
  return { values: { ...config.values, [URL_KEY]: value }, secretKeys: secret ? [...secretKeys, URL_KEY] : secretKeys };
}

beforeAll(async () => {
  require("tsx/cjs/api").register();
  // One program at a time: the mocks are the runtime's, global.
  prod = await runProgram("prod", prodWithUrl(URL));
  staging = await runProgram("staging", readStackFile("staging"));
});

describe("the dead man's switch", () => {
  it("is a Worker bound to the backups bucket, with the URL as a secret binding", () => {
    const worker = only(prod.resources, WORKER);
    expect(worker.inputs).toMatchObject({
      scriptName: "shop-prod-dead-mans-switch",
      mainModule: "dead-mans-switch.js",
    });
    expect(String(worker.inputs.content)).toContain("export default");
    const bindings = worker.rawInputs.bindings as { name: string; type: string; bucketName?: string; text?: string }[];
    expect(bindings.map((b) => [b.name, b.type])).toEqual([
      ["BACKUPS", "r2_bucket"],
      ["ALERT_URL", "secret_text"],
      ["ALERT_CHANNEL", "plain_text"],
      ["STACK", "plain_text"],
      ["BUCKET", "plain_text"],
      ["MAX_AGE_HOURS", "plain_text"],
    ]);
    expect(bindings[0].bucketName).toBe("shop-prod-backups");
    expect(bindings.find((b) => b.name === "ALERT_URL")?.text).toBe(URL);
    expect(bindings.find((b) => b.name === "MAX_AGE_HOURS")?.text).toBe("26");
    expect(worker.secretInputs).toContain("bindings");
  });

  it("runs every hour", () => {
    const cron = only(prod.resources, CRON);
    expect(cron.inputs).toMatchObject({
      scriptName: "shop-prod-dead-mans-switch",
      schedules: [{ cron: DEAD_MANS_SWITCH_CRON }],
    });
    expect(DEAD_MANS_SWITCH_CRON).toMatch(/^\d+ \* \* \* \*$/);
  });

  it("is not made for a stack without alerts (it would have no one to tell)", () => {
    expect(ofType(staging.resources, WORKER)).toEqual([]);
    expect(ofType(staging.resources, CRON)).toEqual([]);
  });
});

describe("the server's alerts", () => {
  const files = (run: ProgramRun) => new Map(shippedFiles(run).map((f) => [f.path, f]));

  it("are installed on every stack: the sender, the health check, their units and a 0600 environment file", () => {
    for (const run of [prod, staging]) {
      const shipped = files(run);
      for (const path of [
        `${ALERT_PATHS.scriptDir}/alert.sh`,
        `${ALERT_PATHS.scriptDir}/health-check.sh`,
        "/etc/systemd/system/webstack-alert@.service",
        "/etc/systemd/system/webstack-health.service",
        "/etc/systemd/system/webstack-health.timer",
      ]) {
        expect(shipped.get(path), `${run.stack}: ${path}`).toBeDefined();
      }
      const env = shipped.get(ALERT_PATHS.envFile);
      expect(env?.mode).toBe("0600");
      expect(env?.command.secretInputs).toContain("stdin");
    }
  });

  it("start the alert template when the backup or the drill fails", () => {
    const shipped = files(prod);
    for (const unit of ["webstack-backup.service", "webstack-restore-drill.service"]) {
      expect(String(shipped.get(`/etc/systemd/system/${unit}`)?.command.rawInputs.stdin)).toMatch(
        /^OnFailure=webstack-alert@%n\.service$/m,
      );
    }
  });

  it("give the environment file the channel, the URL and the tunnel's service; staging's has no channel", () => {
    const prodEnv = String(files(prod).get(ALERT_PATHS.envFile)?.command.rawInputs.stdin);
    expect(prodEnv).toContain('ALERT_CHANNEL="ntfy"');
    expect(prodEnv).toContain(`ALERT_URL="${URL}"`);
    expect(prodEnv).toContain('ALERT_STACK="shop-prod"');
    expect(prodEnv).toContain('ALERT_TUNNEL_SERVICE="cloudflared"');
    const stagingEnv = String(files(staging).get(ALERT_PATHS.envFile)?.command.rawInputs.stdin);
    expect(stagingEnv).not.toMatch(/ALERT_CHANNEL|ALERT_URL/);
  });

  it("never carry the URL in plaintext: it is only in secret inputs", () => {
    for (const r of prod.resources) {
      const plain = Object.fromEntries(Object.entries(r.inputs).filter(([k]) => !r.secretInputs.includes(k)));
      expect(JSON.stringify(plain), `${r.type} ${r.name}`).not.toContain("Zq8xW2vY7tK4");
    }
    expect(JSON.stringify(prod.exports)).not.toContain("Zq8xW2vY7tK4");
  });
});

describe("the alerts URL", () => {
  it("must be set with --secret", async () => {
    const message = await configErrorOf("prod", prodWithUrl(URL, false));
    expect(message).toContain(`${URL_KEY}: is stored in plaintext`);
    expect(message).not.toContain("Zq8xW2vY7tK4");
  });

  it("must be an http(s) URL, and the error does not show the value", async () => {
    const message = await configErrorOf("prod", prodWithUrl("ntfy.sh/shop-alerts-Zq8xW2vY7tK4"));
    expect(message).toContain(`${URL_KEY}: must be the ntfy URL, http(s)`);
    expect(message).toContain("the value is not shown");
    expect(message).not.toContain("Zq8xW2vY7tK4");
  });
});
