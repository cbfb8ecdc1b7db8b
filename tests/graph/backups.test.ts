/**
 * The Backups component under Pulumi mocks: what it installs over SSH, and that no secret appears
 * in a command line, a trigger or an output.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { BACKUP_PATHS, STATIC_FILES } from "../../backup/render";
import { writeFileCommand } from "../../components/ship-file";
import { UPLOADS_GID } from "../../model/server";
import {
  engineConfig,
  type ProgramRun,
  type RecordedResource,
  readStackFile,
  runProgram,
} from "../../scripts/mock-engine";
import { type ShippedText, shippedFiles } from "../../scripts/plan";

const PING = "https://hc-ping.com/7f3e1c2a-secret-ping-token";
let run: ProgramRun;
let commands: RecordedResource[];
/** The files the Backups component reports shipping (its `shipped` output), with their commands. */
let shipped: ShippedText[];

beforeAll(async () => {
  // index.ts and its imports are TypeScript loaded with require(), as `pulumi up` does through tsx.
  require("tsx/cjs/api").register();
  const config = readStackFile("prod");
  const extra = engineConfig({ backupPingUrl: PING });
  run = await runProgram("prod", { values: { ...config.values, ...extra.values }, secretKeys: config.secretKeys });
  commands = run.resources.filter((r) => r.parent?.startsWith("vps:backups:Backups::"));
  shipped = shippedFiles(run).filter((f) => f.component.startsWith("vps:backups:Backups::"));
  const env = String(commands.find((r) => r.name === "shop-prod-backups-env")?.rawInputs.stdin);
  const envValue = (key: string) => env.match(new RegExp(`^${key}="(.+)"$`, "m"))?.[1] ?? `missing ${key}`;
  SECRETS = [envValue("BACKUP_S3_SECRET_ACCESS_KEY"), PING, "stand-in private key of"];
});

/** Plaintext secrets the program holds: the bucket credentials (as the env file got them), the ping URL, the deploy key. */
let SECRETS: string[];

describe("the Backups component", () => {
  it("is a vps:backups:Backups with its commands as children", () => {
    const component = run.resources.filter((r) => r.type === "vps:backups:Backups");
    expect(component.map((r) => r.name)).toEqual(["shop-prod-backups"]);
    expect(commands.length).toBeGreaterThan(10);
    expect(new Set(commands.map((r) => r.type))).toEqual(new Set(["command:remote:Command"]));
  });

  it("puts no plaintext secret into any command line, trigger or non-secret input", () => {
    for (const r of commands) {
      const visible = JSON.stringify(r.inputs);
      for (const secret of SECRETS) expect(visible, `${r.name}`).not.toContain(secret);
      for (const key of ["create", "update", "delete", "triggers", "environment"]) {
        const raw = JSON.stringify(r.rawInputs[key] ?? "");
        for (const secret of SECRETS) expect(raw, `${r.name}.${key}`).not.toContain(secret);
      }
    }
  });

  it("sends the environment file as secret stdin, written 0600", () => {
    const env = commands.find((r) => r.name === "shop-prod-backups-env")!;
    expect(env.secretInputs).toContain("stdin");
    expect(shipped.find((f) => f.command === env)?.mode).toBe("0600");
    const text = String(env.rawInputs.stdin);
    expect(text).toMatch(/^BACKUP_S3_SECRET_ACCESS_KEY="[0-9a-f]{64}"$/m);
    expect(text).toMatch(/^BACKUP_S3_BUCKET="shop-prod-backups"$/m);
    expect(text).toContain(`BACKUP_PING_URL="${PING}"`);
  });

  it("logs in as the deploy user with the secret deploy key", () => {
    for (const r of commands) {
      expect(r.secretInputs).toContain("connection");
      expect((r.rawInputs.connection as { user: string }).user).toBe("deploy");
    }
  });

  it("reports each file it installs with the command that writes that path with that mode, as root", () => {
    const names = shipped.map((f) => f.path.split("/").pop());
    expect(names).toEqual(expect.arrayContaining([...STATIC_FILES]));
    expect(shipped.find((f) => f.path === BACKUP_PATHS.envFile)).toMatchObject({ mode: "0600", text: undefined });
    for (const f of shipped) expect(f.command.inputs.create, f.path).toBe(writeFileCommand(f.path, f.mode, "root"));
    const withStdin = commands.filter((r) => r.rawInputs.stdin !== undefined).map((r) => r.name);
    expect(withStdin.sort()).toEqual(shipped.map((f) => f.command.name).sort());
  });

  it("re-runs the install of a file whose content changes, and of that file only", async () => {
    const config = readStackFile("prod");
    const later = await runProgram("prod", {
      ...config,
      values: { ...config.values, "webstack:backupSchedule": "*-*-* 04:00:00" },
    });
    const triggers = (r: ProgramRun) =>
      Object.fromEntries(
        shippedFiles(r)
          .filter((f) => f.component.startsWith("vps:backups:Backups::") && f.text !== undefined)
          .map((f) => [f.path.split("/").pop(), JSON.stringify(f.command.inputs.triggers)]),
      );
    const before = triggers(run);
    const after = triggers(later);
    const changed = Object.keys(before).filter((file) => before[file] !== after[file]);
    expect(changed).toEqual(["webstack-backup.timer"]);
    expect(Object.keys(after)).toEqual(Object.keys(before));
  });

  it("runs every step again on a new server: each command's triggers hold the server's and the attachment's ids", () => {
    const ids = ["hcloud:index/server:Server", "hcloud:index/volumeAttachment:VolumeAttachment"].map(
      (type) => run.resources.find((r) => r.type === type)!.id,
    );
    for (const r of commands) expect(r.inputs.triggers, r.name).toEqual(expect.arrayContaining(ids));
  });

  it("replaces its files, environment file and timers delete-first, so an earlier release's delete runs before the new install", () => {
    const installs = commands.filter((r) => r.name.includes("-file-") || /-(env|timers)$/.test(r.name));
    expect(installs.length).toBeGreaterThan(10);
    for (const r of installs) expect(r.options.deleteBeforeReplace, r.name).toBe(true);
  });

  it("never deletes on the server: a replacement runs before its predecessor's delete", () => {
    for (const r of commands) expect(r.inputs.delete, r.name).toBeUndefined();
  });

  it("waits for the server and its volume before installing", () => {
    const packages = commands.find((r) => r.name === "shop-prod-backups-packages")!;
    expect(packages.options.dependsOn).toEqual(
      expect.arrayContaining([
        "hcloud:index/server:Server::shop-prod-server",
        "hcloud:index/volumeAttachment:VolumeAttachment::shop-prod-volume-attachment",
      ]),
    );
  });

  it("enables the backup and drill timers after every file is in place", () => {
    const timers = commands.find((r) => r.name === "shop-prod-backups-timers")!;
    expect(timers.inputs.create).toBe(
      "sudo systemctl daemon-reload && sudo systemctl enable --now webstack-backup.timer webstack-restore-drill.timer",
    );
    const installs = shipped.map((f) => f.command);
    for (const r of installs) expect(timers.options.dependsOn).toContain(`${r.type}::${r.name}`);
  });
});

describe("retention", () => {
  it("writes under exactly the prefixes the backups bucket's lifecycle rules expire", () => {
    const lifecycles = run.resources.filter((r) => r.type === "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle");
    const backupsRules = lifecycles
      .flatMap((r) => (r.inputs.rules ?? []) as { conditions: { prefix: string }; deleteObjectsTransition?: unknown }[])
      .filter((rule) => rule.deleteObjectsTransition !== undefined)
      .map((rule) => rule.conditions.prefix);
    const env = String(commands.find((r) => r.name === "shop-prod-backups-env")?.rawInputs.stdin);
    const written = [...env.matchAll(/^BACKUP_PREFIX_\w+="(.+)"$/gm)].map((m) => m[1]);
    expect(written.sort()).toEqual(["daily/", "monthly/", "weekly/"]);
    expect(backupsRules.sort()).toEqual(written);
  });
});

describe("the backups of a stack with uploads", () => {
  let env: string;
  let compose: string;

  beforeAll(async () => {
    const config = readStackFile("prod");
    const extra = engineConfig({
      uploads: { services: ["api", "worker"] },
      backupUploadsDirs: ["/srv/data/exports", "/srv/data/uploads"],
    });
    const withUploads = await runProgram("prod", {
      values: { ...config.values, ...extra.values },
      secretKeys: config.secretKeys,
    });
    env = String(withUploads.resources.find((r) => r.name === "shop-prod-backups-env")?.rawInputs.stdin);
    compose = String(shippedFiles(withUploads).find((f) => f.path.endsWith("/compose.yaml"))?.text);
  });

  it("archives the uploads directory, then the other listed directories, each once", () => {
    expect(env).toMatch(/^BACKUP_UPLOADS_DIRS="\/srv\/data\/uploads:\/srv\/data\/exports"$/m);
  });

  it("writes them to the backups bucket with the backup's own credentials: no uploads bucket or second token", () => {
    expect(env).not.toMatch(/UPLOADS_BUCKET|UPLOADS_ACCESS_KEY|UPLOADS_SECRET/);
  });

  it("gives every writer service, and only them, the uploads directory's group", () => {
    const services = parse(compose).services as Record<string, { group_add?: string[] }>;
    expect(services.api.group_add).toEqual([String(UPLOADS_GID)]);
    expect(services.worker.group_add).toEqual([String(UPLOADS_GID)]);
    expect(services.web.group_add).toBeUndefined();
    expect(services.caddy.group_add).toBeUndefined();
  });
});
