/**
 * Problems of a config and their messages: one `Problem` shape for every check, one `ConfigError`
 * that lists them all, and the rewriting of zod's issues into messages that name the key, the bad
 * value (never a secret's) and what is allowed.
 */
import { z } from "zod";
import { withoutSecrets } from "./echo";
import { PROJECT } from "./namespaces";

/** A problem at a path of the raw config (`["routes", 0, "hostname"]`). */
export interface Problem {
  readonly path: (string | number)[];
  readonly message: string;
}

/** A check across keys: it sees the raw values and reports the problems it finds. */
export type CrossCheck = (raw: Record<string, unknown>) => Problem[];

/**
 * Every problem of one config, gathered into one error. Each message is passed through the echo
 * policy (config/echo.ts) here, where every message goes: `secretValues` (the values of the keys
 * the engine holds as secret) and anything shaped like a key or token are never printed.
 */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(
    readonly stack: string,
    problems: readonly string[],
    secretValues: readonly string[] = [],
  ) {
    const shown = problems.map((p) => withoutSecrets(p, secretValues));
    super(
      `Invalid config for stack "${stack}" (${shown.length} problem${shown.length === 1 ? "" : "s"}):\n` +
        shown.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
    this.problems = shown;
  }
}

/**
 * What the messages need to know of the schema: its root, the keys whose values are secret, and
 * whether the engine holds a key (without namespace) as secret: one set with `--secret` is never
 * shown either, whatever the schema says of it.
 */
export interface MessageContext {
  readonly schema: z.core.$ZodType;
  readonly secretKeys: ReadonlySet<string>;
  readonly isSetAsSecret?: (key: string) => boolean;
}

/** One message for a zod issue, in the user's terms. */
export function describeIssue(issue: z.core.$ZodIssue, raw: Record<string, unknown>, context: MessageContext): string {
  if (issue.code === "unrecognized_keys") {
    // A misspelled key inside an object value (`postgres`, `healthChecks`, a service) is named
    // with its path, next to the keys that object takes.
    const known = knownKeysAt(context.schema, issue.path) ?? [];
    const name = (k: string) => `${PROJECT}:${formatPath([...issue.path, k])}`;
    return issue.keys
      .map((k) => {
        const near = nearestName(k, known);
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
  return `${PROJECT}:${key}${shownValue(raw, issue.path, context)}: ${message}`;
}

/** One message for a problem found by a cross-key check. */
export function describeProblem(problem: Problem, raw: Record<string, unknown>, context: MessageContext): string {
  return `${PROJECT}:${formatPath(problem.path)}${shownValue(raw, problem.path, context)}: ${problem.message}`;
}

/** ` (got <value>)` for an error message; nothing when the value is absent or a secret. */
function shownValue(raw: Record<string, unknown>, path: readonly PropertyKey[], context: MessageContext): string {
  const value = valueAt(raw, path);
  if (value === undefined) return "";
  const key = String(path[0]);
  if (context.secretKeys.has(key) || context.isSetAsSecret?.(key)) return " (value hidden: secret)";
  return ` (got ${JSON.stringify(value)})`;
}

/** The keys the object at `path` of the config takes (undefined where no object schema is). */
function knownKeysAt(root: z.core.$ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let schema: z.core.$ZodType = root;
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

/** The candidate a misspelled name most likely meant (same letters but case, or two edits away). */
export function nearestName(name: string, candidates: readonly string[]): string | undefined {
  return candidates.find((c) => c.toLowerCase() === name.toLowerCase() || editDistance(c, name) <= 2);
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}
