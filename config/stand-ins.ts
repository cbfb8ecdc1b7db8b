/**
 * The offline plan's stand-ins for values only the Pulumi CLI can decrypt (`secure:` in a stack
 * file, app secrets a stack file holds encrypted): each shaped like the key's real values, so a
 * config set up exactly as the going-live runbook says passes the same checks in the plan as in
 * `pulumi up`. Deterministic, so two plans are byte-identical.
 */
import { createHash } from "node:crypto";
import { PROJECT } from "./namespaces";

/** A hex string of `length` characters, the same for the same seed. */
function hexOf(seed: string, length: number): string {
  let out = "";
  for (let i = 0; out.length < length; i++) out += createHash("sha256").update(`${seed}#${i}`).digest("hex");
  return out.slice(0, length);
}

/** The generic stand-in: any string will do for an app secret, a token or a password. */
function genericStandIn(fullKey: string): string {
  return `stand-in-secret-for-${fullKey.replace(/[^a-zA-Z0-9]+/g, "-")}`;
}

/** Stand-ins for the stack's keys that are (or may be) set with `--secret`, by key. */
const SHAPED: Readonly<Record<string, (fullKey: string) => string>> = {
  // An R2 Secret Access Key: the SHA-256 of the token, 64 hex characters.
  [`${PROJECT}:backupSecretAccessKey`]: (key) => hexOf(key, 64),
  // A healthchecks-style ping URL, whose token is why it may be secret.
  [`${PROJECT}:backupPingUrl`]: (key) => `https://hc-ping.invalid/${hexOf(key, 32)}`,
};

/** The stand-in for a secret config value (`webstack:<key>` or `secrets:<NAME>`). */
export function secretStandIn(fullKey: string): string {
  return SHAPED[fullKey]?.(fullKey) ?? genericStandIn(fullKey);
}

/** The stand-in for an app secret that holds a URL (the alerts channel's `urlSecret`). */
export function urlSecretStandIn(fullKey: string): string {
  return `https://alerts.invalid/${genericStandIn(fullKey)}`;
}

/** Whether a value is a stand-in this module made for the key (a plan, not a real config). */
export function isGenericStandIn(fullKey: string, value: string): boolean {
  return value === genericStandIn(fullKey);
}

/** The keys whose stand-ins are shaped (a test plans each of them set as `secure:`). */
export const SHAPED_SECRET_KEYS: readonly string[] = Object.keys(SHAPED);
