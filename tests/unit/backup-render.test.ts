/**
 * The backup files as the server gets them: timers rendered from the schedules, the environment
 * file, the static scripts and services; checked by shellcheck and systemd-analyze.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as ini from "ini";
import { afterAll, describe, expect, it } from "vitest";
import { BACKUP_PATHS, backupFiles, renderBackupEnv, renderTimer } from "../../backup/render";
import { backupConfigFields } from "../../config/backups";
import { resolveConfig } from "../../config/resolve";
import { BACKUP_RETENTION } from "../../model/backups";
import { stackValues } from "../support/fixtures";

const RECIPIENT = "age19575cackxwrpfkergc5tfva3puvfaa2gx4qgvjk3uhnv6ujzdq9q8pn3ma";
const files = backupFiles({
  recipients: [RECIPIENT],
  schedule: "*-*-* 02:00:00",
  drill: true,
  drillSchedule: "Sun *-*-* 05:00:00",
});
const envInput = {
  endpoint: "https://account.r2.cloudflarestorage.com",
  bucket: "shop-prod-backups",
  accessKeyId: "AKID",
  secretAccessKey: 'se"cr\\et',
  database: "shop",
  databaseUser: "shop",
  pgExec: "docker compose -f /srv/data/app/compose.yaml exec -T postgres",
  workDir: "/tmp/webstack-backup",
  uploadsDirs: [],
  drillPostgresImage: "imresamu/postgis:17-3.5",
};
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe("renderTimer", () => {
  it("renders a persistent timer with a random delay for the schedule", () => {
    const text = renderTimer({
      description: "x",
      onCalendar: "Sun *-*-* 05:00:00",
      unit: "a.service",
      randomizedDelaySec: 1800,
    });
    expect(ini.parse(text)).toEqual({
      Unit: { Description: "x" },
      Timer: { OnCalendar: "Sun *-*-* 05:00:00", RandomizedDelaySec: "1800", Persistent: true, Unit: "a.service" },
      Install: { WantedBy: "timers.target" },
    });
  });

  it("gives byte-identical output for the same input", () => {
    const again = backupFiles({
      recipients: [RECIPIENT],
      schedule: "*-*-* 02:00:00",
      drill: true,
      drillSchedule: "Sun *-*-* 05:00:00",
    });
    expect(again).toEqual(files);
  });
});

describe("the config's schedules", () => {
  const calendars = [
    backupConfigFields.backupSchedule.parse(undefined),
    backupConfigFields.backupDrillSchedule.parse(undefined),
    "daily",
    "Mon..Fri *-*-* 01:30:00",
  ];
  it.each(calendars)("systemd accepts %s as a calendar expression", (expression) => {
    const out = spawnSync("systemd-analyze", ["calendar", expression], { encoding: "utf8" });
    expect(out.stderr).toBe("");
    expect(out.status).toBe(0);
  });
});

describe("renderBackupEnv", () => {
  it("quotes values the way systemd reads them and names the retention prefixes", () => {
    const text = renderBackupEnv(envInput);
    expect(text).toContain('BACKUP_S3_SECRET_ACCESS_KEY="se\\"cr\\\\et"\n');
    expect(text).toContain('PG_EXEC="docker compose -f /srv/data/app/compose.yaml exec -T postgres"\n');
    for (const { prefix } of BACKUP_RETENTION)
      expect(text).toMatch(new RegExp(`^BACKUP_PREFIX_\\w+="${prefix}"$`, "m"));
    expect(text).toContain(`BACKUP_DRILL_IDENTITY_FILE="${BACKUP_PATHS.drillIdentityFile}"`);
  });

  it("leaves out the drill key when the drill is off, and the ping when there is none", () => {
    const text = renderBackupEnv({ ...envInput, drillPostgresImage: undefined });
    expect(text).not.toContain("DRILL");
    expect(text).not.toContain("PING");
  });

  it("refuses a value with a line break", () => {
    expect(() => renderBackupEnv({ ...envInput, pingUrl: "https://x\nEVIL=1" })).toThrow(
      /BACKUP_PING_URL holds a line break/,
    );
  });
});

describe("the shipped files", () => {
  it("pass shellcheck", () => {
    const dir = mkdtempSync(join(tmpdir(), "webstack-sc-"));
    roots.push(dir);
    const scripts = files.filter((f) => f.path.endsWith(".sh"));
    for (const f of scripts) writeFileSync(join(dir, f.path.split("/").pop()!), f.content);
    const out = spawnSync("shellcheck", ["-x", ...scripts.map((f) => f.path.split("/").pop()!)], {
      cwd: dir,
      encoding: "utf8",
    });
    expect(out.stdout).toBe("");
    expect(out.status).toBe(0);
  });

  it("pass systemd-analyze verify, installed where the component puts them", () => {
    const root = mkdtempSync(join(tmpdir(), "webstack-root-"));
    roots.push(root);
    cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true });
    for (const f of files) {
      mkdirSync(dirname(join(root, f.path)), { recursive: true });
      writeFileSync(join(root, f.path), f.content);
      chmodSync(join(root, f.path), Number.parseInt(f.mode, 8));
    }
    const units = files.filter((f) => /\.(service|timer)$/.test(f.path)).map((f) => join(root, f.path));
    expect(units).toHaveLength(4);
    const out = spawnSync("systemd-analyze", ["verify", `--root=${root}`, "--man=no", ...units], { encoding: "utf8" });
    expect(out.stderr).toBe("");
    expect(out.status).toBe(0);
  });

  it("install the scripts executable and the services reading the 0600 environment file", () => {
    const modes = Object.fromEntries(files.map((f) => [f.path.split("/").pop(), f.mode]));
    expect(modes).toMatchObject({ "backup.sh": "0755", "restore.sh": "0755", "drill.sh": "0755", "lib.sh": "0644" });
    const service = files.find((f) => f.path.endsWith("webstack-backup.service"))!.content;
    expect(ini.parse(service).Service.EnvironmentFile).toBe(BACKUP_PATHS.envFile);
  });

  it("list the recipients, public keys only", () => {
    const recipients = files.find((f) => f.path === BACKUP_PATHS.recipientsFile)!.content;
    expect(recipients.split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([RECIPIENT]);
    const dir = mkdtempSync(join(tmpdir(), "webstack-recipients-"));
    roots.push(dir);
    writeFileSync(join(dir, "recipients.txt"), recipients);
    const encrypted = spawnSync("age", ["-R", join(dir, "recipients.txt")], { input: "x" });
    expect(encrypted.stderr.toString()).toBe("");
    expect(encrypted.stdout.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
  });
});

describe("backup config keys", () => {
  // The prod stack file's keys without any backup key.
  const base = Object.fromEntries(Object.entries(stackValues("prod")).filter(([k]) => !k.startsWith("backup")));
  base.backupCredentials = stackValues("prod").backupCredentials;

  it("requires at least one recipient, naming the key", () => {
    expect(() => resolveConfig("prod", base)).toThrow(/webstack:backupRecipients: is required/);
  });

  it("refuses an age private key as a recipient, says what to give instead, and never prints it", () => {
    const attempt = () =>
      resolveConfig("prod", {
        ...base,
        backupRecipients: ["AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"],
      });
    expect(attempt).toThrow(
      /webstack:backupRecipients\[0\] \(got "\(hidden: looks like a secret\)"\): is an age PRIVATE key; give its public key \(age-keygen -y FILE\)/,
    );
    expect(attempt).not.toThrow(/AGE-SECRET-KEY-1/);
  });

  it("refuses a schedule that could break out of its line", () => {
    expect(() =>
      resolveConfig("prod", { ...base, backupRecipients: [RECIPIENT], backupSchedule: "daily\nExecStart=/bin/sh" }),
    ).toThrow(/webstack:backupSchedule .*must be a systemd calendar expression/);
  });

  it("takes the defaults: daily at 02:00, drill on Sundays, no ping, no uploads", () => {
    const config = resolveConfig("prod", { ...base, backupRecipients: [RECIPIENT] });
    expect(config).toMatchObject({
      backupSchedule: "*-*-* 02:00:00",
      backupDrill: true,
      backupDrillSchedule: "Sun *-*-* 05:00:00",
      backupUploadsDirs: [],
    });
    expect(config.backupPingUrl).toBeUndefined();
  });
});
