/**
 * Stack config: read once, validated once, resolved into a plain typed object.
 *
 * Every key a stack sets is declared here, in one zod schema, with its default; `Pulumi.yaml`
 * declares the same keys for the CLI (a test keeps the two in step). Nothing downstream reads
 * `pulumi.Config` again. A bad config fails before any resource is registered, with every problem
 * of the config in one message that names the key, the bad value and what is allowed.
 */
import * as pulumi from "@pulumi/pulumi";
import * as ipaddr from "ipaddr.js";
import * as sshpk from "sshpk";
import { z } from "zod";
import { ARM_LOCATIONS, HETZNER_LOCATIONS, TIER_NAMES, TIERS, type Tier, X86_SERVER_TYPE } from "../model/tiers";
import { appConfigFields, appCrossChecks } from "./app-config";
import { backupConfigFields } from "./backup-config";
import { EDGE_SECRET_KEYS, edgeConfigFields, edgeCrossChecks, plaintextSecretProblems } from "./edge-config";

/** The Pulumi project name, which is also the config namespace (`webstack:tier`). */
export const PROJECT = "webstack";

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
/** Hetzner label keys/values: at most 63 characters of [a-zA-Z0-9._-], alphanumeric at both ends. */
const HETZNER_LABEL_VALUE = /^([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$/;
const HETZNER_LABEL_KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$/;
/** Labels this program sets itself; users may not override them. */
const RESERVED_LABELS = ["app", "stack", "managed-by"];
const MIN_RSA_BITS = 3072;

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

const sshKeySchema = z.string().superRefine((value, ctx) => {
  const problem = sshPublicKeyProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const cidrSchema = z.string().superRefine((value, ctx) => {
  const problem = cidrProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const labelSchema = z.string().superRefine((value, ctx) => {
  const problem = labelProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

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
  /** Networks (CIDR) allowed to reach SSH through the Hetzner firewall. */
  sshAllowedCidrs: z.array(cidrSchema).min(1, { message: "must list at least one network" }),
  /** Size of the Hetzner Volume holding all state, in GB (10 to 10240). */
  volumeSizeGb: z
    .int({ message: "must be a whole number of GB" })
    .min(10, { message: "must be at least 10 (GB)" })
    .max(10240, { message: "must be at most 10240 (GB)" })
    .default(20),
  /** Hetzner's own daily server backups (+20% of the server price). */
  hetznerBackups: z.boolean().default(false),
  /** `tunnel`: nothing but SSH open, web traffic through Cloudflare Tunnel; `direct`: 80/443 open too. */
  exposure: z.enum(["tunnel", "direct"]).default("tunnel"),
  /** Extra Hetzner labels as `key=value`. */
  labels: z.array(labelSchema).default([]),
  /** Time (UTC, HH:MM) at which unattended upgrades may reboot the server when a patch needs it. */
  autoRebootTime: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { message: "must be a 24-hour time HH:MM (UTC)" })
    .default("03:30"),
};

/** The stack config schema. Keys are the config keys without the `webstack:` namespace. */
export const stackConfigSchema = z.strictObject({
  ...serverConfigFields,
  ...edgeConfigFields,
  ...appConfigFields,
  ...backupConfigFields,
});

/** Keys whose values are secrets: error messages name them but never print their values. */
export const SECRET_CONFIG_KEYS: ReadonlySet<string> = new Set<string>([...EDGE_SECRET_KEYS]);

/** A problem found by a check that looks at more than one key. */
export interface CrossCheckProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

/**
 * Checks across keys. They run on the raw values even when single keys failed (zod stops object
 * refinements at the first failing field), so one run reports every problem; each check looks only
 * at values of the right shape.
 */
export const crossChecks: ((raw: Record<string, unknown>) => CrossCheckProblem[])[] = [
  function routesInsideDomain(raw) {
    const { domain, routes } = raw;
    if (typeof domain !== "string" || !Array.isArray(routes)) return [];
    const problems: CrossCheckProblem[] = [];
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
  ...edgeCrossChecks,
  ...appCrossChecks,
];

export type StackConfigInput = z.input<typeof stackConfigSchema>;
type ParsedConfig = z.output<typeof stackConfigSchema>;

/** The resolved config every component receives. */
export interface StackConfig extends Omit<ParsedConfig, "tier" | "labels"> {
  /** Every hostname the routes serve, in the order they first appear. */
  readonly hostnames: readonly string[];
  readonly stack: string;
  readonly tier: Tier;
  /** Hetzner labels: the user's plus app/stack/managed-by. */
  readonly labels: Readonly<Record<string, string>>;
  /** `<app>-<stack>`, the prefix of every resource name. */
  readonly prefix: string;
}

/** Every problem of one config, gathered into one error. */
export class ConfigError extends Error {
  constructor(
    readonly stack: string,
    readonly problems: readonly string[],
  ) {
    super(
      `Invalid config for stack "${stack}" (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

/** The config keys, in declaration order. */
export const CONFIG_KEYS = Object.keys(stackConfigSchema.shape) as (keyof StackConfigInput)[];

/**
 * Validate raw config values (as the stack file holds them, keyed without namespace) and resolve
 * the tier. Throws a ConfigError listing every problem. With `isSecret` (whether the engine holds a
 * full key as secret), secret keys stored in plaintext are problems too.
 */
export function resolveConfig(
  stack: string,
  raw: Record<string, unknown>,
  isSecret?: (fullKey: string) => boolean,
): StackConfig {
  const problems: string[] = [];
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(stack)) {
    problems.push(
      `stack name "${stack}": must be 1-20 characters of lowercase letters, digits and '-' (it goes into resource and bucket names)`,
    );
  }
  const result = stackConfigSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(describeIssue(issue, raw));
  }
  const checks = isSecret
    ? [...crossChecks, (r: typeof raw) => plaintextSecretProblems(r, (k) => isSecret(`${PROJECT}:${k}`))]
    : crossChecks;
  for (const check of checks) {
    for (const p of check(raw))
      problems.push(`${PROJECT}:${formatPath(p.path)}${shownValue(raw, p.path)}: ${p.message}`);
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(stack, problems);

  const parsed = result.data;
  const userLabels = Object.fromEntries(
    parsed.labels.map((l) => {
      const at = l.indexOf("=");
      return [l.slice(0, at), l.slice(at + 1)];
    }),
  );
  return {
    ...parsed,
    stack,
    tier: TIERS[parsed.tier as keyof typeof TIERS],
    prefix: `${parsed.appName}-${stack}`,
    hostnames: [...new Set(parsed.routes.map((r) => r.hostname))],
    labels: { ...userLabels, app: parsed.appName, stack, "managed-by": "pulumi" },
  };
}

function describeIssue(issue: z.core.$ZodIssue, raw: Record<string, unknown>): string {
  if (issue.code === "unrecognized_keys") {
    // A misspelled key inside an object value (`postgres`, `healthChecks`, a service) is named
    // with its path, next to the keys that object takes.
    const known = knownKeysAt(issue.path) ?? [];
    const name = (k: string) => `${PROJECT}:${formatPath([...issue.path, k])}`;
    return issue.keys
      .map((k) => {
        const near = known.find((key) => key.toLowerCase() === k.toLowerCase() || editDistance(key, k) <= 2);
        const list = known.length > 0 ? `; known keys: ${known.join(", ")}` : "";
        return `${name(k)}: unknown key${near ? ` (did you mean ${name(near)}?)` : ""}${list}`;
      })
      .join("\n  - ");
  }
  const key = formatPath(issue.path);
  const value = valueAt(raw, issue.path);
  // zod's own messages ("Invalid input: …", "Too small: …") are rewritten in the user's terms;
  // messages written in this schema are kept.
  const generic = /^(Invalid|Too (small|big))/.test(issue.message);
  let message = issue.message;
  if (issue.code === "invalid_type" && value === undefined) message = "is required";
  else if (!generic) message = issue.message;
  else if (issue.code === "too_small" && issue.origin === "number") message = `must be at least ${issue.minimum}`;
  else if (issue.code === "too_big" && issue.origin === "number") message = `must be at most ${issue.maximum}`;
  else if (issue.code === "invalid_value") message = `must be one of: ${issue.values.map(String).join(", ")}`;
  else if (issue.code === "invalid_type") message = `must be ${article(issue.expected)}`;
  return `${PROJECT}:${key}${shownValue(raw, issue.path)}: ${message}`;
}

/** ` (got <value>)` for an error message; nothing when the value is absent or a secret. */
function shownValue(raw: Record<string, unknown>, path: readonly PropertyKey[]): string {
  const value = valueAt(raw, path);
  if (value === undefined) return "";
  if (SECRET_CONFIG_KEYS.has(String(path[0]))) return " (value hidden: secret)";
  return ` (got ${JSON.stringify(value)})`;
}

/** The keys the object at `path` of the config takes (undefined where no object schema is). */
function knownKeysAt(path: readonly PropertyKey[]): string[] | undefined {
  let schema: z.core.$ZodType = stackConfigSchema;
  for (const p of path) {
    schema = unwrapOptional(schema);
    if (schema instanceof z.ZodObject && typeof p === "string") schema = schema.shape[p];
    else if (schema instanceof z.ZodArray && typeof p === "number") schema = schema.element;
    else return undefined;
    if (schema === undefined) return undefined;
  }
  schema = unwrapOptional(schema);
  if (schema instanceof z.ZodObject) return Object.keys(schema.shape);
  // A union of objects (a service's healthCheck: {path} or {command}) takes the keys of each.
  if (schema instanceof z.ZodUnion) {
    const keys = schema.options.flatMap((o) => (o instanceof z.ZodObject ? Object.keys(o.shape) : []));
    return keys.length > 0 ? [...new Set(keys)] : undefined;
  }
  return undefined;
}

function unwrapOptional(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s._zod.def.innerType;
  return s;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(config)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** Why an OpenSSH public key line is unusable, or undefined when it is fine. */
export function sshPublicKeyProblem(line: string): string | undefined {
  const allowed =
    "allowed: ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, or ssh-rsa of 3072+ bits, one key per entry";
  if (/PRIVATE KEY/.test(line)) return `is a private key; give the .pub file's line instead (${allowed})`;
  if (line.trim().split("\n").length > 1) return `holds more than one line; ${allowed}`;
  let key: sshpk.Key;
  try {
    key = sshpk.parseKey(line.trim(), "ssh");
  } catch {
    return `is not an OpenSSH public key line; ${allowed}`;
  }
  if (key.type === "dsa") return `DSA keys are refused by modern OpenSSH; ${allowed}`;
  if (key.type === "rsa" && key.size < MIN_RSA_BITS)
    return `is a ${key.size}-bit RSA key; RSA keys need ${MIN_RSA_BITS}+ bits`;
  return undefined;
}

/** Why a CIDR is unusable in a Hetzner firewall rule, or undefined when it is fine. */
export function cidrProblem(cidr: string): string | undefined {
  const allowed = "an IPv4 or IPv6 network in CIDR form, e.g. 203.0.113.0/24 or 2001:db8::/48";
  if (!cidr.includes("/")) return `has no prefix length; ${allowed} (a single host is 203.0.113.7/32)`;
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    parsed = ipaddr.parseCIDR(cidr);
  } catch {
    return `is not ${allowed}`;
  }
  const [addr, bits] = parsed;
  const network =
    addr.kind() === "ipv4"
      ? ipaddr.IPv4.networkAddressFromCIDR(cidr).toString()
      : ipaddr.IPv6.networkAddressFromCIDR(cidr).toString();
  if (network !== addr.toString()) {
    return `has host bits set; the network is ${network}/${bits}`;
  }
  return undefined;
}

function labelProblem(label: string): string | undefined {
  const at = label.indexOf("=");
  if (at <= 0) return 'must be "key=value"';
  const key = label.slice(0, at);
  const value = label.slice(at + 1);
  if (!HETZNER_LABEL_KEY.test(key))
    return `label key "${key}" is not a valid Hetzner label key (letters, digits, '.', '_', '-'; at most 63 characters)`;
  if (!HETZNER_LABEL_VALUE.test(value))
    return `label value "${value}" is not a valid Hetzner label value (letters, digits, '.', '_', '-'; at most 63 characters)`;
  return undefined;
}

/**
 * Read the stack's raw config values from Pulumi config. Values that Pulumi holds as strings
 * (numbers, booleans, lists set with `--path` or in YAML) are decoded from JSON where they parse;
 * the schema then judges them. Unknown keys in the project namespace are kept, so the schema can
 * name them.
 */
export function rawConfigFromPulumi(all: Record<string, string>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  const prefix = `${PROJECT}:`;
  for (const [fullKey, text] of Object.entries(all)) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    raw[key] = decode(text);
  }
  return raw;
}

function decode(text: string): unknown {
  const t = text.trim();
  if (/^[[{]/.test(t) || /^(true|false|-?\d+(\.\d+)?)$/.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}

/** Read and resolve the current stack's config from the Pulumi engine (the CLI or the mocks). */
export function loadStackConfig(): StackConfig {
  return resolveConfig(pulumi.getStack(), rawConfigFromPulumi(pulumi.runtime.allConfig()), isConfigSecret);
}

/** Whether the engine holds a config key as secret (the SDK's own check, internal to it). */
function isConfigSecret(fullKey: string): boolean {
  // biome-ignore lint/suspicious/noExplicitAny: internal, untyped module of @pulumi/pulumi
  const runtimeConfig: any = require("@pulumi/pulumi/runtime/config");
  return Boolean(runtimeConfig.isConfigSecret(fullKey));
}
