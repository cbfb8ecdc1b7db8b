/**
 * Stack config: validated once and resolved into one plain typed object, the `StackConfig` every
 * component and renderer receives. Pure: `load.ts` hands it what Pulumi holds. A bad config fails
 * before any resource is registered, with every problem of the config in one message that names
 * the key, the bad value and what is allowed.
 */
import { originHostname, type PublicPort, publicWebPorts, sshHostname } from "../model/ports";
import { majorOfImageTag } from "../model/postgres";
import { type CostEstimate, estimateMonthlyCost } from "../model/pricing";
import type { Tier } from "../model/tiers";
import { TIERS } from "../model/tiers";
import { alertsProblems } from "./alerts";
import { plaintextSecretProblems } from "./edge";
import { MemoryBudgetError, type StackMemory, stackMemory } from "./memory";
import { PROJECT } from "./namespaces";
import { ConfigError, describeIssue, describeProblem, type Problem } from "./problems";
import { hostnamesOf, routesInMatchOrder } from "./routes";
import { crossChecks, SECRET_CONFIG_KEYS, type StackConfigOutput, stackConfigSchema } from "./schema";
import type { Route } from "./server";

/** The resolved config every component receives. */
export interface StackConfig extends Omit<StackConfigOutput, "tier" | "labels"> {
  /** Every hostname the routes serve, in the order they first appear. */
  readonly hostnames: readonly string[];
  readonly stack: string;
  readonly tier: Tier;
  /** Hetzner labels: the user's plus app/stack/managed-by. */
  readonly labels: Readonly<Record<string, string>>;
  /** `<app>-<stack>`, the prefix of every resource name. */
  readonly prefix: string;
  /** The routes in the order the tunnel and Caddy try them (see `routesInMatchOrder`). */
  readonly routesInMatchOrder: readonly Route[];
  /** Container memory limits and the Postgres and Redis settings inside them. */
  readonly memory: StackMemory;
  /** The web ports open to the world: none in tunnel mode, 80/443 in direct mode. */
  readonly publicWebPorts: readonly PublicPort[];
  /** What the Hetzner resources of the stack cost a month. */
  readonly monthlyCost: CostEstimate;
  /** Postgres as configured, with its major version (the config's, else the image tag's). */
  readonly postgres: StackConfigOutput["postgres"] & { readonly major: number };
}

/**
 * Validate raw config values (as the stack file holds them, keyed without namespace) and resolve
 * the tier. Throws a ConfigError listing every problem. With `isSecret` (whether the engine holds a
 * full key as secret), secret keys stored in plaintext are problems too, and keys set as secret
 * are never shown; no message shows any of `secretValues` (the engine's secret values).
 */
export function resolveConfig(
  stack: string,
  raw: Record<string, unknown>,
  isSecret?: (fullKey: string) => boolean,
  secretValues: readonly string[] = [],
): StackConfig {
  const messages = {
    schema: stackConfigSchema,
    secretKeys: SECRET_CONFIG_KEYS,
    isSetAsSecret: isSecret && ((key: string) => isSecret(`${PROJECT}:${key}`)),
  };
  const problems: string[] = [];
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(stack)) {
    problems.push(
      `stack name "${stack}": must be 1-20 characters of lowercase letters, digits and '-' (it goes into resource and bucket names)`,
    );
  }
  const result = stackConfigSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(describeIssue(issue, raw, messages));
  }
  const checks = isSecret
    ? [...crossChecks, (r: typeof raw) => plaintextSecretProblems(r, (k) => isSecret(`${PROJECT}:${k}`))]
    : crossChecks;
  for (const check of checks) {
    for (const p of check(raw)) problems.push(describeProblem(p, raw, messages));
  }
  for (const p of [...originNameProblems(stack, raw), ...alertsProblems(stack, raw)]) {
    problems.push(describeProblem(p, raw, messages));
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(stack, problems, secretValues);

  const parsed = result.data;
  const tier = TIERS[parsed.tier as keyof typeof TIERS];
  let memory: StackMemory;
  try {
    memory = stackMemory({ ...parsed, tier });
  } catch (err) {
    if (!(err instanceof MemoryBudgetError)) throw err;
    throw new ConfigError(
      stack,
      err.problems.map((p) => describeProblem(p, raw, messages)),
      secretValues,
    );
  }
  const userLabels = Object.fromEntries(
    parsed.labels.map((l) => {
      const at = l.indexOf("=");
      return [l.slice(0, at), l.slice(at + 1)];
    }),
  );
  return {
    ...parsed,
    stack,
    tier,
    prefix: `${parsed.appName}-${stack}`,
    hostnames: hostnamesOf(parsed.routes),
    labels: { ...userLabels, app: parsed.appName, stack, "managed-by": "pulumi" },
    routesInMatchOrder: routesInMatchOrder(parsed.routes),
    memory,
    publicWebPorts: publicWebPorts(parsed.exposure),
    monthlyCost: estimateMonthlyCost({ ...parsed, tier }),
    // The cross check made sure one of them says it.
    postgres: { ...parsed.postgres, major: parsed.postgres.majorVersion ?? majorOfImageTag(parsed.postgres.image)! },
  };
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

/**
 * A route on a name the program gives the server's own records: direct exposure's origin name,
 * or SSH's name through the tunnel (they depend on the stack's name, so they are checked here).
 */
function originNameProblems(stack: string, raw: Record<string, unknown>): Problem[] {
  const { appName, domain, routes } = raw;
  if (typeof appName !== "string" || typeof domain !== "string" || !Array.isArray(routes)) return [];
  const reserved = new Map([
    [originHostname(`${appName}-${stack}`, domain), "is the name direct exposure gives the server's own records"],
    [sshHostname(`${appName}-${stack}`, domain), "is the name SSH answers on through the tunnel (sshThroughTunnel)"],
  ]);
  return routes.flatMap((route, i) => {
    const hostname = (route as { hostname?: unknown } | null)?.hostname;
    const why = typeof hostname === "string" ? reserved.get(hostname) : undefined;
    return why ? [{ path: ["routes", i, "hostname"], message: `${why}; use another hostname` }] : [];
  });
}
