/**
 * The lifecycle runner: what `pulumi up` does to go from one evaluation of the program (the state
 * a previous update left) to the next, applied to a server twin. A test harness, not a second
 * engine; it models what the program's change depends on (FACTS: "Pulumi's update order"):
 *
 * - every resource of the new run, in registration order (a dependency order): new ones are
 *   created; a `command:remote:Command` whose triggers changed (or that the user `--replace`s) is
 *   replaced, any other changed input is an update (its `update` command, or `create` without
 *   one); other resources with changed inputs (outside `ignoreChanges`) are updated;
 * - a replacement is created before the old resource is deleted, unless it asks for
 *   `deleteBeforeReplace`;
 * - last, the deletes: the resources the new run no longer has and the replaced ones, in reverse
 *   order of the old run. A command's delete is the old state's `delete` text, over the old
 *   connection.
 *
 * On the twin: remote commands run over real SSH as their connection's user with their stdin; a
 * changed server type is the provider's hard power-off, type change and power-on; a server that
 * is created again (a rebuild) is a new twin on the same data volume, a loop device of the
 * volume's size. (Growing it is the VM suite's: a container may not resize a mounted ext4.)
 */

import { execFileSync } from "node:child_process";
import type { RecordedResource } from "../../scripts/mock-engine";
import type { CommandResult, LoginKey, Twin } from "./twin";

const COMMAND = "command:remote:Command";
const SERVER = "hcloud:index/server:Server";
const VOLUME = "hcloud:index/volume:Volume";

export type Operation = "create" | "update" | "replace" | "delete";

export interface Step {
  readonly op: Operation;
  /** The resource as the new run has it (for a delete: as the old state has it). */
  readonly resource: RecordedResource;
  /** The old state's resource, for an update, a replacement or a delete. */
  readonly old?: RecordedResource;
  /** Inputs whose change made this step (for reading a plan). */
  readonly changed: string[];
}

export interface ChangeOptions {
  /** Resource names the user replaces (`pulumi up --replace <urn>`). */
  readonly replace?: readonly string[];
}

/** The steps of an update from `before` (undefined: an empty stack) to `after`, in order. */
export function planChange(
  before: readonly RecordedResource[] | undefined,
  after: readonly RecordedResource[],
  options: ChangeOptions = {},
): Step[] {
  const previous = new Map((before ?? []).map((r) => [r.urn, r]));
  const steps: Step[] = [];
  const deferredDeletes = new Set<string>();
  for (const resource of after) {
    const old = previous.get(resource.urn);
    if (!old) {
      steps.push({ op: "create", resource, changed: [] });
      continue;
    }
    const changed = changedInputs(old, resource);
    const forced = options.replace?.includes(resource.name) ?? false;
    const replace = forced || (resource.type === COMMAND && changed.includes("triggers"));
    if (replace) {
      if (resource.options.deleteBeforeReplace) steps.push({ op: "delete", resource: old, old, changed });
      else deferredDeletes.add(old.urn);
      steps.push({ op: "replace", resource, old, changed });
    } else if (changed.length > 0) {
      steps.push({ op: "update", resource, old, changed });
    }
  }
  const current = new Set(after.map((r) => r.urn));
  for (const old of [...(before ?? [])].reverse()) {
    if (!current.has(old.urn) || deferredDeletes.has(old.urn)) {
      steps.push({ op: "delete", resource: old, old, changed: [] });
    }
  }
  return steps;
}

function changedInputs(old: RecordedResource, next: RecordedResource): string[] {
  const keys = new Set([...Object.keys(old.rawInputs), ...Object.keys(next.rawInputs)]);
  return [...keys]
    .filter((k) => !next.options.ignoreChanges.includes(k))
    .filter((k) => canonical(old.rawInputs[k]) !== canonical(next.rawInputs[k]))
    .sort();
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/** What happened to the twin in one update, for assertions and for reading a failure. */
export interface AppliedStep {
  readonly op: Operation;
  readonly name: string;
  /** The shell text run on the twin, when one ran. */
  readonly ran?: string;
  readonly stdout?: string;
  readonly stderr?: string;
}

/** A remote command's step failed: Pulumi stops the update there. */
export class StepFailed extends Error {
  constructor(
    readonly step: Step,
    readonly status: number,
    readonly stderr: string,
    readonly applied: AppliedStep[],
  ) {
    super(`${step.op} ${step.resource.name} exited ${status}:\n${stderr}`);
    this.name = "StepFailed";
  }
}

export interface Target {
  /** The twin the server resource stands for (none before the first create; a rebuild changes it). */
  twin: Twin | undefined;
  readonly key: LoginKey;
  /** The Hetzner Volume is created, formatted ext4 (as the program asks Hetzner to). */
  createVolume(sizeGb: number): void;
  /** A new server (create or replacement) with this user data: a new twin on the same volume. */
  rebuild(userData: string): Twin;
  /** Change a stdin before it is sent (the test's S3 server in place of R2's endpoint, say). */
  rewriteStdin?(resource: RecordedResource, stdin: string): string;
}

/** Run the steps on the twin, in order; stops at the first failure as Pulumi does. */
export function applySteps(steps: readonly Step[], target: Target): AppliedStep[] {
  const applied: AppliedStep[] = [];
  for (const step of steps) {
    const r = step.resource;
    if (r.type === SERVER && (step.op === "create" || step.op === "replace")) {
      // The first server, a replacement, or one made again after a refresh dropped a lost one
      // (docs/rebuild-server.md): a new twin on the same data volume.
      target.twin = target.rebuild(String(r.rawInputs.userData));
      applied.push({ op: step.op, name: r.name });
      continue;
    }
    if (r.type === VOLUME && step.op === "create") {
      target.createVolume(Number(r.rawInputs.size));
      applied.push({ op: step.op, name: r.name, ran: "volume created" });
      continue;
    }
    const twin = target.twin;
    if (r.type === SERVER && step.op === "update" && step.changed.includes("serverType")) {
      twin?.powerCycle();
      applied.push({ op: step.op, name: r.name, ran: "power off, change type, power on" });
      continue;
    }
    if (r.type !== COMMAND) {
      applied.push({ op: step.op, name: r.name });
      continue;
    }
    const text = commandText(step);
    if (text === undefined) {
      applied.push({ op: step.op, name: r.name });
      continue;
    }
    const source = step.op === "delete" ? step.old! : r;
    const connection = source.rawInputs.connection as { user?: string; dialErrorLimit?: number };
    const stdin = step.op === "delete" ? undefined : stdinOf(source, target);
    if (!twin) throw new Error(`${step.op} ${r.name}: no server yet`);
    const result = dialing(connection.dialErrorLimit ?? 10, () =>
      twin.ssh(connection.user ?? "root", target.key, text, stdin),
    );
    applied.push({ op: step.op, name: r.name, ran: text, stdout: result.stdout, stderr: result.stderr });
    if (result.status !== 0) throw new StepFailed(step, result.status, result.stderr || result.stdout, applied);
  }
  return applied;
}

/**
 * The provider's dial retries: a server that is still booting refuses the connection, and the
 * command provider tries again up to the connection's `dialErrorLimit` (default 10) times.
 */
function dialing(limit: number, attempt: () => CommandResult): CommandResult {
  for (let tries = 1; ; tries++) {
    const result = attempt();
    const refused =
      result.status === 255 && /Connection refused|No route to host|timed out|reset by peer/.test(result.stderr);
    if (!refused || tries >= limit) return result;
    execFileSync("sleep", ["2"]);
  }
}

/** The shell text a command step runs (undefined: nothing runs, e.g. a delete with no `delete`). */
function commandText(step: Step): string | undefined {
  const inputs = step.op === "delete" ? step.old!.rawInputs : step.resource.rawInputs;
  const pick = (key: string) =>
    typeof inputs[key] === "string" && inputs[key] !== "" ? String(inputs[key]) : undefined;
  switch (step.op) {
    case "create":
    case "replace":
      return pick("create");
    case "update":
      return pick("update") ?? pick("create");
    case "delete":
      return pick("delete");
  }
}

function stdinOf(resource: RecordedResource, target: Target): string | undefined {
  const stdin = resource.rawInputs.stdin;
  if (typeof stdin !== "string") return undefined;
  return target.rewriteStdin ? target.rewriteStdin(resource, stdin) : stdin;
}

/** One line per step, for a test's failure message: `replace e2e-backups-timers (triggers)`. */
export function describeSteps(steps: readonly Step[]): string {
  return steps
    .map((s) => `${s.op} ${s.resource.name}${s.changed.length ? ` (${s.changed.join(", ")})` : ""}`)
    .join("\n");
}
