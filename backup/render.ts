/**
 * The files the backups put on the server: the scripts and services of this directory as they are,
 * the timers rendered from the schedules, the recipients list, and the environment file (the one
 * secret file). Pure functions: typed input in, file text out.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ini from "ini";
import { BACKUP_RETENTION } from "../model/backups";
import { DATA_DIR } from "../model/server";

/** Where things live on the server. */
export const BACKUP_PATHS = {
  /** The scripts (and the runbook, as README.md). */
  scriptDir: "/usr/local/lib/webstack-backup",
  /** backup.env (0600) and recipients.txt. */
  configDir: "/etc/webstack/backup",
  envFile: "/etc/webstack/backup/backup.env",
  recipientsFile: "/etc/webstack/backup/recipients.txt",
  /** On the data volume, so that a rebuilt server keeps the key older backups were encrypted to. */
  drillIdentityFile: `${DATA_DIR}/backup/drill-identity.txt`,
  unitDir: "/etc/systemd/system",
} as const;

export const BACKUP_UNIT = "webstack-backup";
export const DRILL_UNIT = "webstack-restore-drill";

/** The scripts and static units, by file name in backup/. */
export const STATIC_FILES = [
  "lib.sh",
  "backup.sh",
  "restore.sh",
  "drill.sh",
  `${BACKUP_UNIT}.service`,
  `${DRILL_UNIT}.service`,
] as const;

const HERE = __dirname;
const RUNBOOK = join(HERE, "..", "docs", "restore.md");

/** One file to install: its absolute path on the server, its mode and its content. */
export interface ServerFile {
  path: string;
  mode: "0644" | "0755" | "0600";
  content: string;
}

export interface TimerInput {
  description: string;
  /** systemd OnCalendar expression. */
  onCalendar: string;
  /** The service the timer starts. */
  unit: string;
  randomizedDelaySec: number;
}

/** A systemd timer: persistent (a run missed while off runs at boot) with a random delay. */
export function renderTimer(input: TimerInput): string {
  const header = `# Rendered by backup/render.ts from the stack config; installed by components/backups.ts.\n`;
  return (
    header +
    ini.stringify({
      Unit: { Description: input.description },
      Timer: {
        OnCalendar: input.onCalendar,
        RandomizedDelaySec: String(input.randomizedDelaySec),
        Persistent: "true",
        Unit: input.unit,
      },
      Install: { WantedBy: "timers.target" },
    })
  );
}

export interface BackupEnvInput {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** rclone provider: Cloudflare for R2. */
  provider?: string;
  database: string;
  databaseUser: string;
  /** Command prefix that runs the PostgreSQL tools next to the database (see lib.sh). */
  pgExec: string;
  /** Scratch directory for dumps, where `pgExec` runs. */
  workDir: string;
  /** Where the deploy dumps the database before a migration, where `pgExec` runs. */
  preMigrationDir?: string;
  pingUrl?: string;
  /** Directories of the host archived with each backup, encrypted like the database. */
  uploadsDirs: readonly string[];
  /** Image of the drill's throwaway PostgreSQL; omitted when the drill is off. */
  drillPostgresImage?: string;
}

/**
 * backup.env: the EnvironmentFile of both services. Values are double-quoted with `\` and `"`
 * escaped, as systemd reads them; a value with a line break is refused.
 */
export function renderBackupEnv(input: BackupEnvInput): string {
  const prefixes = Object.fromEntries(BACKUP_RETENTION.map((r) => [r.prefix.replace(/\/$/, ""), r.prefix]));
  const vars: [string, string | undefined][] = [
    ...bucketVars(input),
    ["BACKUP_PREFIX_DAILY", prefixes.daily],
    ["BACKUP_PREFIX_WEEKLY", prefixes.weekly],
    ["BACKUP_PREFIX_MONTHLY", prefixes.monthly],
    ["BACKUP_RECIPIENTS_FILE", BACKUP_PATHS.recipientsFile],
    ["BACKUP_DRILL_IDENTITY_FILE", input.drillPostgresImage ? BACKUP_PATHS.drillIdentityFile : undefined],
    ["PGDATABASE", input.database],
    ["PGUSER", input.databaseUser],
    ["PG_EXEC", input.pgExec],
    ["BACKUP_WORK_DIR", input.workDir],
    ["BACKUP_PRE_MIGRATION_DIR", input.preMigrationDir],
    ["BACKUP_PING_URL", input.pingUrl],
    ["BACKUP_UPLOADS_DIRS", input.uploadsDirs.length > 0 ? input.uploadsDirs.join(":") : undefined],
    ["DRILL_POSTGRES_IMAGE", input.drillPostgresImage],
  ];
  return envFile("backup.env", "# Rendered by backup/render.ts; holds the bucket credentials. 0600 root.", vars);
}

/**
 * An environment file as systemd, restore.sh and alert.sh read it: KEY="value" with `\` and `"`
 * escaped; unset and empty values are left out, a value with a line break is refused.
 */
export function envFile(
  name: string,
  header: string,
  vars: readonly (readonly [string, string | undefined])[],
): string {
  const lines = [header];
  for (const [key, value] of vars) {
    if (value === undefined || value === "") continue;
    if (/[\r\n\0]/.test(value)) throw new Error(`${name}: the value of ${key} holds a line break`);
    lines.push(`${key}="${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
  }
  return `${lines.join("\n")}\n`;
}

export interface RestoreEnvInput {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  database: string;
  /** rclone provider: Cloudflare for R2. */
  provider?: string;
}

/**
 * The environment file `restore.sh --env-file` reads on a workstation or a new machine: the
 * backups bucket with the restore credentials, and the database's name. The stack exports it as
 * the secret output `restoreEnv`.
 */
export function renderRestoreEnv(input: RestoreEnvInput): string {
  return envFile(
    "restoreEnv",
    "# restore.sh --env-file: the backups bucket, read-only (from pulumi stack output restoreEnv).",
    [...bucketVars(input), ["PGDATABASE", input.database]],
  );
}

/** The backups bucket as lib.sh reads it; R2 takes the region "auto". */
function bucketVars(input: RestoreEnvInput | BackupEnvInput): [string, string][] {
  return [
    ["BACKUP_S3_ENDPOINT", input.endpoint],
    ["BACKUP_S3_BUCKET", input.bucket],
    ["BACKUP_S3_ACCESS_KEY_ID", input.accessKeyId],
    ["BACKUP_S3_SECRET_ACCESS_KEY", input.secretAccessKey],
    ["BACKUP_S3_PROVIDER", input.provider ?? "Cloudflare"],
    ["BACKUP_S3_REGION", "auto"],
  ];
}

export interface BackupFilesInput {
  recipients: readonly string[];
  schedule: string;
  drill: boolean;
  drillSchedule: string;
}

/** Every non-secret file of the backups, with where it goes and its mode. */
export function backupFiles(input: BackupFilesInput): ServerFile[] {
  const files: ServerFile[] = STATIC_FILES.map((name) => ({
    path: name.endsWith(".sh") ? `${BACKUP_PATHS.scriptDir}/${name}` : `${BACKUP_PATHS.unitDir}/${name}`,
    mode: name.endsWith(".sh") && name !== "lib.sh" ? "0755" : "0644",
    content: readFileSync(join(HERE, name), "utf8"),
  }));
  files.push(
    { path: `${BACKUP_PATHS.scriptDir}/README.md`, mode: "0644", content: readFileSync(RUNBOOK, "utf8") },
    {
      path: BACKUP_PATHS.recipientsFile,
      mode: "0644",
      content: `# age recipients of the backups (public keys; from the stack config webstack:backupRecipients)\n${input.recipients.join("\n")}\n`,
    },
    timerFile(BACKUP_UNIT, "Daily encrypted PostgreSQL backup (webstack)", input.schedule),
  );
  if (input.drill) {
    files.push(timerFile(DRILL_UNIT, "Weekly restore drill of the latest backup (webstack)", input.drillSchedule));
  }
  return files;
}

/** The timer of a unit's service, with up to 30 minutes of random delay. */
function timerFile(unit: string, description: string, onCalendar: string): ServerFile {
  return {
    path: `${BACKUP_PATHS.unitDir}/${unit}.timer`,
    mode: "0644",
    content: renderTimer({ description, onCalendar, unit: `${unit}.service`, randomizedDelaySec: 1800 }),
  };
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
