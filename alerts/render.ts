/**
 * The files the alerts put on the server: the sender and the health check of this directory as
 * they are, their systemd units, and the environment file (the one secret file: it holds the
 * channel's URL). And the Worker that watches the backups from outside. Pure functions: typed
 * input in, file text out.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { envFile, type ServerFile } from "../backup/render";
import type { AlertChannel } from "../config/alerts";
import { DATA_DIR } from "../model/server";

/** Where things live on the server. */
export const ALERT_PATHS = {
  scriptDir: "/usr/local/lib/webstack-alerts",
  envFile: "/etc/webstack/alerts/alerts.env",
  /** The open problems and counters of the health check (on the root disk: per server). */
  stateDir: "/var/lib/webstack-alerts",
  unitDir: "/etc/systemd/system",
} as const;

export const HEALTH_UNIT = "webstack-health";
/** The template unit that OnFailure= of the backup and the drill starts. */
export const ALERT_UNIT_TEMPLATE = "webstack-alert@.service";

const STATIC_FILES = [
  "alert.sh",
  "health-check.sh",
  ALERT_UNIT_TEMPLATE,
  `${HEALTH_UNIT}.service`,
  `${HEALTH_UNIT}.timer`,
];

/** Every non-secret file of the alerts on the server, with where it goes and its mode. */
export function alertFiles(): ServerFile[] {
  return STATIC_FILES.map((name) => ({
    path: name.endsWith(".sh") ? `${ALERT_PATHS.scriptDir}/${name}` : `${ALERT_PATHS.unitDir}/${name}`,
    mode: name.endsWith(".sh") ? "0755" : "0644",
    content: readFileSync(join(__dirname, name), "utf8"),
  }));
}

export interface AlertsEnvInput {
  /** Absent: alerts go to the server's journal only. */
  channel?: AlertChannel;
  url?: string;
  email?: string;
  /** `<app>-<stack>`, in every title. */
  stack: string;
  diskPercent: number;
  /** The compose service of the tunnel connector; absent in direct mode. */
  tunnelService?: string;
  composeFile: string;
}

/** alerts.env: the EnvironmentFile of the health check and the alert units (0600, root). */
export function renderAlertsEnv(input: AlertsEnvInput): string {
  return envFile("alerts.env", "# Rendered by alerts/render.ts; holds the alerts channel's URL. 0600 root.", [
    ["ALERT_CHANNEL", input.channel],
    ["ALERT_URL", input.url],
    ["ALERT_EMAIL", input.email],
    ["ALERT_STACK", input.stack],
    ["ALERT_STATE_DIR", ALERT_PATHS.stateDir],
    ["ALERT_COMPOSE_FILE", input.composeFile],
    ["ALERT_DISK_PATHS", `/ ${DATA_DIR}`],
    ["ALERT_DISK_PERCENT", String(input.diskPercent)],
    ["ALERT_TUNNEL_SERVICE", input.tunnelService],
  ]);
}

/** The dead man's switch: the Worker's module, uploaded as it is. */
export function deadMansSwitchScript(): string {
  return readFileSync(join(__dirname, "dead-mans-switch.js"), "utf8");
}
