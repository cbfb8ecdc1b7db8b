/**
 * The app stack in the VM, deployed the way `pulumi up` deploys it. The real program (index.ts)
 * is evaluated under the mock engine for the end-to-end test stack (tests/stack/e2e-stack.yaml:
 * the examples' shape on the stand-in images), and the AppStack's remote commands (wait for the
 * server, ship each file, ship `.env`, run deploy.sh) are run over SSH as the user their
 * connection names, in the order the program registered them, each with exactly the command line
 * and stdin its Command resource carries. Only the transport differs: OpenSSH instead of the
 * command provider's Go SSH client; both hand the command line to the login shell.
 *
 * No registry is reachable, so the stand-in images (tests/stack/images/build.sh) reach the VM's
 * engine on a read-only disk holding their `docker save` tarball.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { CADDY_SERVICE } from "../../model/services";
import { engineConfig, PROJECT_ROOT, runProgram } from "../../scripts/mock-engine";
import type { CommandResult, Vm } from "./vm";

const execFileAsync = promisify(execFile);

/** The stack deployed into the VM: the end-to-end stack, with VM_STACK_SETTINGS on top. */
export const VM_STACK_FILE = join(PROJECT_ROOT, "tests/stack/e2e-stack.yaml");
/**
 * The config keys the VM stack sets on top, as a user of a small, busy server would. Under TCG
 * (one emulated CPU, about 40 ms for every fork and exec) one `docker exec` takes seconds: with
 * the stack's own timing (eight containers checked every 5 to 10 s, 5 s each) the checks alone
 * kept the VM saturated, every check timed out, and the first deploy rolled back after 300 s.
 */
export const VM_STACK_SETTINGS = {
  "webstack:healthChecks": { intervalSeconds: 60, timeoutSeconds: 120 },
  "webstack:deployWaitSeconds": 1800,
} as const;
/** Its compose project (the stack's appName). */
export const VM_STACK_PROJECT = "e2e";
/** The read-only disk with the stand-in images' tarball. */
export const IMAGES_SERIAL = "stand-in-images";
export const IMAGES_DEVICE = `/dev/disk/by-id/virtio-${IMAGES_SERIAL}`;

/** One remote command of the AppStack, as the Command resource carries it. */
export interface RemoteStep {
  /** The resource's name, e.g. `app-deploy`. */
  name: string;
  /** The SSH user of the resource's connection. */
  user: string;
  create: string;
  stdin?: string;
}

/** Build (or reuse) the stand-in images and return the path of their tarball. */
export async function standInImagesTarball(): Promise<string> {
  const { stdout } = await execFileAsync("bash", [join(PROJECT_ROOT, "tests/stack/images/build.sh"), "--tarball"], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 30 * 60_000,
  });
  return stdout.trim().split("\n").pop()!;
}

/** The AppStack's remote commands for the VM stack, in the order `pulumi up` may run them. */
export async function appStackSteps(): Promise<RemoteStep[]> {
  const file = parse(readFileSync(VM_STACK_FILE, "utf8")) as { config: Record<string, unknown> };
  const run = await runProgram("vm", engineConfig({ ...file.config, ...VM_STACK_SETTINGS }));
  const commands = run.resources.filter(
    (r) => r.type === "command:remote:Command" && r.parent?.startsWith("vps:app:AppStack::"),
  );
  // Registration order is a valid order: a resource registers only after those it depends on
  // (every dependsOn of a step names an earlier step or a resource outside the AppStack).
  const seen = new Set<string>();
  const steps: RemoteStep[] = [];
  for (const r of commands) {
    for (const dep of r.options.dependsOn) {
      if (dep.startsWith("command:remote:Command::") && !seen.has(dep)) {
        throw new Error(`${r.name} depends on ${dep}, which is not registered before it`);
      }
    }
    seen.add(`${r.type}::${r.name}`);
    const inputs = r.rawInputs as { create?: unknown; stdin?: unknown; connection?: { user?: unknown } };
    if (typeof inputs.create !== "string") throw new Error(`${r.name} has no create command`);
    steps.push({
      name: r.name,
      user: String(inputs.connection?.user),
      create: inputs.create,
      stdin: typeof inputs.stdin === "string" ? inputs.stdin : undefined,
    });
  }
  if (!steps.some((s) => s.name.endsWith("-deploy"))) throw new Error("the AppStack registered no deploy command");
  return steps;
}

/**
 * A shell snippet (run by a member of the docker group in the VM) that prints one line per container of the stack:
 * `<service> <state> <health>`.
 */
export const STACK_STATUS = `docker ps -a --filter label=com.docker.compose.project=${VM_STACK_PROJECT} --format '{{.Label "com.docker.compose.service"}} {{.State}} {{.Status}}'`;

/** Parse STACK_STATUS output: true when every container runs and none is unhealthy or starting. */
export function stackHealthy(status: string): boolean {
  const lines = status.trim().split("\n").filter(Boolean);
  return (
    lines.length > 0 &&
    lines.every((line) => {
      const [service, state] = line.split(" ");
      // deploy.sh runs the migration with `run --rm`: a leftover one-off has exited by design.
      if (service === "migrate") return state === "exited";
      return state === "running" && !/\((unhealthy|health: starting)\)/.test(line);
    })
  );
}

/**
 * A shell snippet (run by a member of the docker group in the VM) that sends one request through Caddy on the stack's
 * network, as cloudflared does, and prints the body.
 */
export function throughCaddy(host: string, path: string): string {
  const ip = `$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' $(docker ps -q --filter label=com.docker.compose.project=${VM_STACK_PROJECT} --filter label=com.docker.compose.service=${CADDY_SERVICE}) | cut -d' ' -f1)`;
  return `curl -sS --fail --max-time 20 -H 'Host: ${host}' "http://${ip}${path}"`;
}

/** Load the stand-in images from their read-only disk into the VM's engine (as admin, with sudo). */
export async function loadStandInImages(vm: Vm, adminKeyPath: string): Promise<CommandResult> {
  return vm.ssh("admin", "admin", adminKeyPath, `sudo docker load -q -i ${IMAGES_DEVICE}`, { timeoutMs: 30 * 60_000 });
}

/**
 * Run the AppStack's steps one after another over SSH through the `outside` card (Pulumi reaches
 * the server from the internet), stopping at the first failure. Returns the failed step, if any.
 */
export async function runAppStackSteps(
  vm: Vm,
  deployKeyPath: string,
  steps: readonly RemoteStep[],
): Promise<{ step: RemoteStep; result: CommandResult } | undefined> {
  for (const step of steps) {
    const result = await vm.ssh("outside", step.user, deployKeyPath, step.create, {
      stdin: step.stdin,
      timeoutMs: 30 * 60_000,
    });
    if (result.code !== 0) return { step, result };
  }
  return undefined;
}
