/**
 * Config keys of the Cloudflare edge and R2 storage, spread into `stackConfigSchema` next to the
 * server's keys. Pulumi.yaml declares the same keys.
 *
 * The Cloudflare provider's own token is not one of them: it comes from `cloudflare:apiToken`
 * (`pulumi config set --secret cloudflare:apiToken ...`), as for any Pulumi program.
 */
import { z } from "zod";
import type { CrossCheck, Problem } from "./problems";

/** R2 location hints (best effort, honoured only when a bucket is first created). */
export const R2_LOCATIONS = ["weur", "eeur", "enam", "wnam", "apac", "oc"] as const;
/** R2 jurisdictions this stack supports; `eu` keeps objects inside the EU and has its own endpoint. */
export const R2_JURISDICTIONS = ["default", "eu"] as const;

/** Config keys whose values are secrets: errors never print their values. */
export const EDGE_SECRET_KEYS = ["backupSecretAccessKey"] as const;

const HEX32 = /^[0-9a-f]{32}$/;
/** A certificate's name: a lowercase hostname, or `*.` and one. */
const CERTIFICATE_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

export const edgeConfigFields = {
  /**
   * The Cloudflare account that owns the zone, the tunnel and the R2 buckets: 32 hex characters,
   * shown on the dashboard's account home and in the zone's Overview sidebar.
   */
  cloudflareAccountId: z.string().regex(HEX32, {
    message: "must be a Cloudflare account id: 32 lowercase hex characters (dashboard → Account home → Account ID)",
  }),
  /**
   * Manage the zone-wide settings the stack relies on: always HTTPS, minimum TLS 1.2, HSTS, and
   * SSL "full (strict)" in direct mode. Turn off when the zone is shared with other sites or with
   * another stack that manages them (only one stack may own a zone's settings).
   * @default true
   */
  manageZoneSettings: z.boolean().default(true),
  /**
   * Where R2 should place new buckets (a hint). `weur` is closest to the Hetzner locations.
   * @default "weur"
   */
  r2Location: z.enum(R2_LOCATIONS).default("weur"),
  /**
   * R2 jurisdiction of the buckets: `default`, or `eu` to guarantee storage inside the EU (the S3
   * endpoint then is `https://<account>.eu.r2.cloudflarestorage.com`).
   * @default "default"
   */
  r2Jurisdiction: z.enum(R2_JURISDICTIONS).default("default"),
  /**
   * Where the backup job's R2 credentials come from.
   * - `token`: the program creates an account API token allowed to read and write objects of the
   *   backups bucket only; its S3 keys are derived from it. The Cloudflare API token Pulumi runs with
   *   then needs "Account API Tokens: Edit".
   * - `config`: an R2 API token you created on the dashboard (R2 → Manage API tokens → Object Read &
   *   Write, scoped to the backups bucket), given as `backupAccessKeyId` and, with `--secret`,
   *   `backupSecretAccessKey`.
   * @default "token"
   */
  backupCredentials: z.enum(["token", "config"]).default("token"),
  /** With `backupCredentials: config`: the Access Key ID of the R2 API token (32 hex characters). */
  backupAccessKeyId: z
    .string()
    .regex(HEX32, { message: "must be an R2 Access Key ID: 32 lowercase hex characters" })
    .optional(),
  /**
   * With `backupCredentials: config`: the Secret Access Key of the R2 API token (64 hex
   * characters). Set it with `pulumi config set --secret webstack:backupSecretAccessKey`; a value
   * stored in plaintext is refused (the offline plan's stand-in for it has the same shape).
   */
  backupSecretAccessKey: z
    .string()
    .regex(/^[0-9a-f]{64}$/, {
      message:
        "must be an R2 Secret Access Key: 64 lowercase hex characters (shown once when the R2 API token is created)",
    })
    .optional(),
  /**
   * Hostnames deeper than one label below the zone that a certificate on the zone covers, as exact
   * names or one-label wildcards (`*.staging.example.com`). Cloudflare's free Universal SSL
   * certificate covers the zone and `*.<zone>` only; a route on `api.staging.example.com` needs an
   * Advanced Certificate (or Total TLS) that covers it, and is refused until it is listed here.
   * @default []
   */
  certifiedHostnames: z
    .array(
      z.string().regex(CERTIFICATE_NAME, { message: "must be a hostname or a wildcard such as *.staging.example.com" }),
    )
    .default([]),
};

/** Pulumi.yaml's one-line description of each key (scripts/pulumi-yaml.ts writes them there). */
export const edgeConfigDescriptions: Record<keyof typeof edgeConfigFields, string> = {
  cloudflareAccountId:
    "Cloudflare account id (32 hex characters) that owns the zone, the tunnel and the R2 buckets. The provider's token is cloudflare:apiToken (set with --secret).",
  manageZoneSettings:
    "Manage the zone-wide settings the stack relies on (always HTTPS, TLS 1.2+, HSTS, SSL full strict in direct mode). Turn off when the zone is shared or another stack owns its settings.",
  r2Location: "R2 location hint for new buckets - weur, eeur, enam, wnam, apac or oc.",
  r2Jurisdiction:
    "R2 jurisdiction of the buckets: default, or eu to keep objects inside the EU (endpoint <account>.eu.r2.cloudflarestorage.com).",
  backupCredentials:
    "Where the backup job's R2 keys come from. token: the program creates an account API token scoped to the backups bucket (the Cloudflare token Pulumi uses needs Account API Tokens Edit); config: an R2 API token made on the dashboard, given as backupAccessKeyId and backupSecretAccessKey (--secret).",
  backupAccessKeyId: "With backupCredentials=config: the R2 API token's Access Key ID (32 hex characters).",
  backupSecretAccessKey:
    "With backupCredentials=config: the R2 API token's Secret Access Key (64 hex characters); set it with pulumi config set --secret.",
  certifiedHostnames:
    "Hostnames deeper than one label below the zone that a certificate you ordered covers (Advanced Certificate or Total TLS), as names or wildcards such as *.staging.example.com; Universal SSL covers only the zone and *.zone, so other deep hostnames are refused.",
};

/**
 * Problems of secret keys stored in plaintext (set without `--secret`, so committed in clear in
 * the stack file). `isSecret` tells whether the engine holds a key (without namespace) as secret.
 */
export function plaintextSecretProblems(
  raw: Record<string, unknown>,
  isSecret: (fullKey: string) => boolean,
): Problem[] {
  return EDGE_SECRET_KEYS.filter((k) => raw[k] !== undefined && !isSecret(k)).map((k) => ({
    path: [k],
    message: `is stored in plaintext; remove it and set it with \`pulumi config set --secret webstack:${k}\``,
  }));
}

/** Whether a certificate name (a hostname or `*.` and one) covers a hostname, as TLS matches them. */
export function certificateCovers(name: string, hostname: string): boolean {
  if (!name.startsWith("*.")) return name === hostname;
  const dot = hostname.indexOf(".");
  return dot > 0 && hostname.slice(dot + 1) === name.slice(2);
}

/** Cross-key checks of the edge keys (run even when single keys fail; see `crossChecks`). */
export const edgeCrossChecks: CrossCheck[] = [
  /**
   * Every hostname is proxied by Cloudflare, whose Universal SSL certificate covers the zone and
   * one label below it: a deeper name gets a TLS error in every browser unless the zone holds a
   * certificate for it, which the user says with `certifiedHostnames`.
   */
  function hostnamesCertifiable(raw) {
    const { domain, routes } = raw;
    if (typeof domain !== "string" || !Array.isArray(routes)) return [];
    const certified = Array.isArray(raw.certifiedHostnames)
      ? raw.certifiedHostnames.filter((n): n is string => typeof n === "string")
      : [];
    const reported = new Set<string>();
    return routes.flatMap((route, i) => {
      const hostname = (route as { hostname?: unknown } | null)?.hostname;
      if (typeof hostname !== "string" || !hostname.endsWith(`.${domain}`) || reported.has(hostname)) return [];
      const below = hostname.slice(0, -domain.length - 1);
      if (!below.includes(".") || certified.some((name) => certificateCovers(name, hostname))) return [];
      reported.add(hostname);
      const flat = `${below.replaceAll(".", "-")}.${domain}`;
      return [
        {
          path: ["routes", i, "hostname"],
          message: `is more than one label below the zone ${domain}: Cloudflare's Universal SSL certificate covers only ${domain} and *.${domain}, so browsers would get a TLS error. Use a name such as ${flat}, or order a certificate that covers it (Advanced Certificate or Total TLS) and list it in webstack:certifiedHostnames (e.g. *.${hostname.slice(hostname.indexOf(".") + 1)})`,
        },
      ];
    });
  },
  function certifiedHostnamesInsideDomain(raw) {
    const { domain, certifiedHostnames } = raw;
    if (typeof domain !== "string" || !Array.isArray(certifiedHostnames)) return [];
    return certifiedHostnames.flatMap((name, i) =>
      typeof name === "string" && !name.endsWith(`.${domain}`)
        ? [
            {
              path: ["certifiedHostnames", i],
              message: `is outside the zone ${domain}; certificates of the zone cover names that end in .${domain}`,
            },
          ]
        : [],
    );
  },
  function backupCredentialsComplete(raw) {
    const mode = raw.backupCredentials ?? "token";
    const keys = ["backupAccessKeyId", "backupSecretAccessKey"] as const;
    if (mode === "config") {
      return keys
        .filter((k) => raw[k] === undefined)
        .map((k) => ({
          path: [k],
          message: `is required with backupCredentials "config" (the R2 API token's ${k === "backupAccessKeyId" ? "Access Key ID" : "Secret Access Key, set with --secret"})`,
        }));
    }
    if (mode === "token") {
      return keys
        .filter((k) => raw[k] !== undefined)
        .map((k) => ({
          path: [k],
          message: `is used only with backupCredentials "config"; with "token" the program creates the credentials. Remove the key or set webstack:backupCredentials to "config"`,
        }));
    }
    return [];
  },
];
