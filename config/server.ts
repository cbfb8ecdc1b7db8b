/**
 * The config keys of the server and its host (`webstack:tier`, `webstack:routes`, …), each
 * validated on its own, and the checks across them. Spread into `stackConfigSchema` next to the
 * keys of the other areas.
 */
import { z } from "zod";
import { ARM_LOCATIONS, HETZNER_LOCATIONS, TIER_NAMES, TIERS, X86_SERVER_TYPE } from "../model/tiers";
import { canonicalCidr, checked, cidrProblem, HOSTNAME, labelProblem, sshPublicKeyProblem } from "./checks";
import type { CrossCheck, Problem } from "./problems";

/** Labels this program sets itself; users may not override them. */
const RESERVED_LABELS = ["app", "stack", "managed-by"];

const tierList = TIER_NAMES.map((t) => `${t} (${TIERS[t].serverType})`).join(", ");

const tierSchema = z.string().superRefine((value, ctx) => {
  if ((TIER_NAMES as readonly string[]).includes(value)) return;
  const cax = TIER_NAMES.find((t) => TIERS[t].serverType === value);
  const hint = X86_SERVER_TYPE.test(value)
    ? `"${value}" is an x86 server type; this stack runs on ARM64 (CAX) servers. `
    : cax
      ? `"${value}" is the server type of tier "${cax}": set the tier name. `
      : "";
  ctx.addIssue({ code: "custom", message: `${hint}allowed tiers: ${tierList}` });
});

const sshKeySchema = checked(sshPublicKeyProblem);
/** A CIDR, passed on in its canonical spelling. */
const cidrSchema = checked(cidrProblem).transform(canonicalCidr);
const labelSchema = checked(labelProblem);

/** A route: hostname and optional path prefix to a service of the stack. */
export const routeSchema = z.strictObject({
  /** Hostname inside the domain. */
  hostname: z.string().regex(HOSTNAME, { message: "must be a lowercase DNS hostname" }),
  /**
   * Path prefix, matched as the prefix itself and everything below it (`/api` matches `/api` and
   * `/api/users`). Omitted: the whole hostname.
   */
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/, {
      message: 'must be a path prefix such as "/api" (no trailing slash, no wildcards)',
    })
    .optional(),
  /** Name of the service the route goes to. */
  service: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, { message: "must be a service name (lowercase, a-z0-9-)" }),
  /** Pass WebSocket upgrades through (Socket.IO, GraphQL subscriptions). */
  websockets: z.boolean().default(false),
  /** Largest request body accepted, in MB. Omitted: the proxy's default. */
  maxBodyMb: z
    .int({ message: "must be a whole number of MB" })
    .min(1, { message: "must be at least 1 (MB)" })
    .max(1024, { message: "must be at most 1024 (MB)" })
    .optional(),
});
export type Route = z.output<typeof routeSchema>;

const locationSchema = z.string().superRefine((value, ctx) => {
  const allowed = `allowed: ${ARM_LOCATIONS.join(", ")}`;
  if (!(HETZNER_LOCATIONS as readonly string[]).includes(value)) {
    ctx.addIssue({ code: "custom", message: `unknown Hetzner location; ${allowed}` });
  } else if (!(ARM_LOCATIONS as readonly string[]).includes(value)) {
    ctx.addIssue({ code: "custom", message: `has no ARM64 (CAX) servers; ${allowed}` });
  }
});

/**
 * The keys of the server and its host, each validated on its own. Later areas (the app stack, the
 * edge, backups) add their keys next to these in `stackConfigSchema`.
 */
export const serverConfigFields = {
  /** Short lowercase name of the app, used in resource names, labels and bucket names. */
  appName: z.string().regex(/^[a-z][a-z0-9-]{1,28}[a-z0-9]$/, {
    message: "must be 3-30 characters of lowercase letters, digits and '-', starting with a letter",
  }),
  /** The Cloudflare zone the stack's hostnames live in, e.g. `example.com`. */
  domain: z.string().regex(HOSTNAME, { message: "must be a DNS domain such as example.com" }),
  /**
   * What the stack serves: each route sends a hostname (and optionally a path prefix) to a service.
   * The hostnames of the stack are the hostnames of its routes.
   * @example [{ hostname: "api.example.com", service: "api" }, { hostname: "app.example.com", service: "web" }]
   */
  routes: z.array(routeSchema).min(1, { message: "must list at least one route" }),
  /** Size of the server and the memory budgets: small | medium | large | xlarge. */
  tier: tierSchema.default("small"),
  /** Hetzner location; ARM64 servers exist only in fsn1, nbg1 and hel1. */
  location: locationSchema.default("fsn1"),
  /** Hetzner image. The hardening is built and tested for Debian 13. */
  image: z.literal("debian-13", { message: 'must be "debian-13" (the hardening targets it)' }).default("debian-13"),
  /** OpenSSH public keys of the admins (ssh-ed25519, ecdsa, or ssh-rsa of 3072+ bits). */
  adminSshKeys: z.array(sshKeySchema).min(1, { message: "must list at least one public key" }),
  /**
   * Networks (CIDR) allowed to reach SSH through the Hetzner firewall. May be empty only with
   * `sshThroughTunnel`: then port 22 is closed at the Hetzner firewall entirely.
   */
  sshAllowedCidrs: z.array(cidrSchema),
  /**
   * SSH through the stack's own Cloudflare Tunnel as well: `<app>-<stack>-ssh.<domain>` behind a
   * Cloudflare Access application that admits only the stack's deploy service token, so CI (whose
   * addresses are nobody's admin network) reaches the server without port 22 open to it
   * (`scripts/ssh-through-tunnel.sh`). Tunnel exposure only.
   * @default false
   */
  sshThroughTunnel: z.boolean().default(false),
  /** Size of the Hetzner Volume holding all state, in GB (10 to 10240). */
  volumeSizeGb: z
    .int({ message: "must be a whole number of GB" })
    .min(10, { message: "must be at least 10 (GB)" })
    .max(10240, { message: "must be at most 10240 (GB)" })
    .default(20),
  /** Hetzner's own daily server backups (+20% of the server price). */
  hetznerBackups: z.boolean().default(false),
  /** `tunnel`: nothing but SSH open, web traffic through Cloudflare Tunnel; `direct`: 80/443 open to Cloudflare's ranges too. */
  exposure: z.enum(["tunnel", "direct"]).default("tunnel"),
  /** Extra Hetzner labels as `key=value`. */
  labels: z.array(labelSchema).default([]),
  /** Time (UTC, HH:MM) at which unattended upgrades may reboot the server when a patch needs it. */
  autoRebootTime: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { message: "must be a 24-hour time HH:MM (UTC)" })
    .default("03:30"),
};

/** Pulumi.yaml's one-line description of each key (scripts/pulumi-yaml.ts writes them there). */
export const serverConfigDescriptions: Record<keyof typeof serverConfigFields, string> = {
  appName: "Short lowercase name of the app (3-30 of a-z, 0-9, '-'); prefixes resource, host and bucket names.",
  domain: "The Cloudflare zone the stack's hostnames live in, e.g. example.com.",
  routes:
    "What the stack serves: a list of {hostname, path (optional prefix such as /api), service, websockets (default false), maxBodyMb (optional)}; every hostname is the domain or inside it.",
  tier: "Server size and memory budgets: small (cax11, 2 vCPU, 4 GB), medium (cax21), large (cax31), xlarge (cax41).",
  location: "Hetzner location with ARM64 servers - fsn1, nbg1 or hel1.",
  image: "Hetzner image; the hardening is built and tested for debian-13.",
  adminSshKeys:
    "OpenSSH public keys of the admins (ssh-ed25519, ecdsa, or ssh-rsa of 3072+ bits); they log in as 'admin'.",
  sshAllowedCidrs:
    "Networks in CIDR form allowed to reach SSH through the Hetzner firewall; empty only with sshThroughTunnel (port 22 then closed entirely).",
  sshThroughTunnel:
    "Also reach SSH through the stack's Cloudflare Tunnel, behind Cloudflare Access with the stack's deploy service token (how CI reaches the server); tunnel exposure only.",
  volumeSizeGb: "Size in GB of the Hetzner Volume that holds all state (10-10240).",
  hetznerBackups: "Hetzner's daily backups of the server disk (+20% of the server price).",
  exposure:
    "tunnel: only SSH is open and web traffic comes through Cloudflare Tunnel; direct: ports 80/443 are open too, at the Hetzner firewall to Cloudflare's published ranges only.",
  labels: "Extra Hetzner labels as key=value.",
  autoRebootTime: "Time (UTC, HH:MM) at which unattended upgrades may reboot the server when a patch needs it.",
};

/** Cross-key checks of the server's keys (run even when single keys fail; see `crossChecks`). */
export const serverCrossChecks: CrossCheck[] = [
  function routesInsideDomain(raw) {
    const { domain, routes } = raw;
    if (typeof domain !== "string" || !Array.isArray(routes)) return [];
    const problems: Problem[] = [];
    const seen = new Set<string>();
    routes.forEach((route, i) => {
      if (route === null || typeof route !== "object") return;
      const { hostname, path } = route as { hostname?: unknown; path?: unknown };
      if (typeof hostname !== "string") return;
      if (hostname !== domain && !hostname.endsWith(`.${domain}`)) {
        problems.push({
          path: ["routes", i, "hostname"],
          message: `is outside the domain "${domain}"; hostnames must be ${domain} or end in .${domain}`,
        });
      }
      const key = `${hostname}${typeof path === "string" ? path : ""}`;
      if (seen.has(key)) problems.push({ path: ["routes", i], message: `routes ${key} twice` });
      seen.add(key);
    });
    return problems;
  },
  function sshReachable(raw) {
    const { sshAllowedCidrs, sshThroughTunnel, exposure } = raw;
    const problems: Problem[] = [];
    if (sshThroughTunnel === true && exposure === "direct") {
      problems.push({
        path: ["sshThroughTunnel"],
        message: 'needs exposure "tunnel": with direct exposure the stack has no tunnel to carry SSH',
      });
    }
    if (Array.isArray(sshAllowedCidrs) && sshAllowedCidrs.length === 0 && sshThroughTunnel !== true) {
      problems.push({
        path: ["sshAllowedCidrs"],
        message:
          "must list at least one network (or set sshThroughTunnel: true, which reaches SSH through the tunnel and closes port 22 at the Hetzner firewall)",
      });
    }
    return problems;
  },
  function labelsNotReserved(raw) {
    if (!Array.isArray(raw.labels)) return [];
    return raw.labels.flatMap((label, i) => {
      const key = typeof label === "string" ? label.split("=")[0] : "";
      return RESERVED_LABELS.includes(key)
        ? [
            {
              path: ["labels", i],
              message: `the label key "${key}" is set by the program; reserved: ${RESERVED_LABELS.join(", ")}`,
            },
          ]
        : [];
    });
  },
];
