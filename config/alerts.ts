/**
 * Where the stack's alerts go (`webstack:alerts`): one channel, whose URL is a secret. The server
 * sends to it (a failed backup or drill, a deploy that rolled back, a container unhealthy or in a
 * restart loop, a full disk, an OOM kill, a reboot left pending, the tunnel connector down) and so
 * does a Cloudflare Worker that watches the backups from outside (a dead man's switch: a backup
 * that did not happen is an alert even when the server is dead). Required for a production stack.
 */
import { z } from "zod";
import { appSecretKey } from "./app";
import { wholeNumber } from "./checks";
import type { Problem } from "./problems";

/** The channels the alert senders format for: the same formats on the server and in the Worker. */
export const ALERT_CHANNELS = ["ntfy", "slack", "healthchecks"] as const;
export type AlertChannel = (typeof ALERT_CHANNELS)[number];

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** Disk use (percent) above which the server alerts, with or without `webstack:alerts`. */
export const DEFAULT_DISK_PERCENT = 85;
const EMAIL = /^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}$/;

export const alertsSchema = z.strictObject({
  /**
   * How the URL is called: `ntfy` (a topic URL, `https://ntfy.sh/<topic>` or your own server),
   * `slack` (a Slack-compatible incoming webhook: Slack, Mattermost, Rocket.Chat, Discord's
   * `/slack` URL) or `healthchecks` (a healthchecks.io-style ping URL: problems go to `/fail`).
   */
  channel: z.enum(ALERT_CHANNELS),
  /**
   * The name of the app secret holding the URL (it carries a token or an unguessable topic):
   * `pulumi config set --secret secrets:<NAME> <url>`.
   */
  urlSecret: z
    .string()
    .regex(ENV_NAME, { message: "must name a secrets:<NAME> key (A-Z, 0-9, _), such as ALERTS_URL" }),
  /** ntfy only: ntfy also mails each alert to this address. */
  email: z.string().regex(EMAIL, { message: "must be an e-mail address such as ops@example.com" }).optional(),
  /** Root or data disk use (percent) above which an alert goes out. @default 85 */
  diskPercent: wholeNumber(50, 99, "percent").default(DEFAULT_DISK_PERCENT),
  /**
   * Hours since the last completed backup after which the Worker outside the server raises the
   * alarm (the default fits a daily backup with its random delay). @default 26
   */
  backupMaxAgeHours: wholeNumber(2, 24 * 45, "hours").default(26),
});

export type AlertsConfig = z.output<typeof alertsSchema>;

export const alertsConfigFields = {
  /**
   * Where alerts go. Omitted: the server still restarts unhealthy containers and writes every
   * alert to its journal, but nothing reaches a person (allowed for a stack that is not production).
   * @example { channel: "ntfy", urlSecret: "ALERTS_URL" }
   */
  alerts: alertsSchema.optional(),
};

export const alertsConfigDescriptions: Record<keyof typeof alertsConfigFields, string> = {
  alerts:
    "Where alerts go (required for a production stack): {channel (ntfy, slack or healthchecks), urlSecret (the NAME of a secrets:<NAME> key set with --secret that holds the URL), email (ntfy only), diskPercent (default 85), backupMaxAgeHours (default 26)}.",
};

/** A stack is production when it is named so or labelled so; it must say where its alerts go. */
export function isProductionStack(stack: string, raw: Record<string, unknown>): boolean {
  const labels = Array.isArray(raw.labels) ? raw.labels : [];
  return /^prod(uction)?$/.test(stack) || labels.includes("environment=production");
}

/** `webstack:alerts` set on a production stack; the e-mail only where the channel can send it. */
export function alertsProblems(stack: string, raw: Record<string, unknown>): Problem[] {
  const alerts = raw.alerts;
  if (alerts === undefined) {
    if (!isProductionStack(stack, raw)) return [];
    return [
      {
        path: ["alerts"],
        message:
          "is required for a production stack (named prod or production, or labelled environment=production): " +
          'set {channel: ntfy, slack or healthchecks, urlSecret: "ALERTS_URL"} and the URL with ' +
          "`pulumi config set --secret secrets:ALERTS_URL <url>`, so that a failed backup or a dead server reaches a person",
      },
    ];
  }
  if (alerts === null || typeof alerts !== "object") return [];
  const { channel, email } = alerts as Record<string, unknown>;
  if (email !== undefined && typeof channel === "string" && channel !== "ntfy") {
    return [{ path: ["alerts", "email"], message: `is sent by ntfy only; the ${channel} channel cannot mail it` }];
  }
  return [];
}

/** The app secret holding the alerts URL, when alerts are configured. */
export function alertsSecretNames(alerts: AlertsConfig | undefined): string[] {
  return alerts ? [alerts.urlSecret] : [];
}

/**
 * The URL in the secret: an http(s) URL the senders can call, and for healthchecks one whose
 * `/fail` is its failure endpoint. The message never shows the value (it holds the token).
 */
export function alertsUrlProblems(
  alerts: AlertsConfig | undefined,
  allConfig: Readonly<Record<string, string>>,
): string[] {
  if (!alerts) return [];
  const key = appSecretKey(alerts.urlSecret);
  const value = allConfig[key];
  if (value === undefined) return [];
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  const ok = url && (url.protocol === "https:" || url.protocol === "http:") && !/[\s"\\]/.test(value);
  if (ok) return [];
  return [
    `${key}: must be the ${alerts.channel} URL, http(s) and without spaces or quotes (webstack:alerts names it as its urlSecret; the value is not shown)`,
  ];
}
