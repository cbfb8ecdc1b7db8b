/**
 * The offline plan: `npm run plan -- <stack>`.
 *
 * Evaluates the real program with the stack's config file under Pulumi runtime mocks (no CLI, no
 * cloud account), prints the resource tree like a preview, the stack outputs and the monthly cost,
 * and writes the rendered artifacts and `resources.json` to `out/<stack>/` (`out/<file name>/` for a
 * config file). A bad config prints
 * the validation message and exits non-zero.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { FILE_MODES, type FileMode } from "../components/ship-file";
import { ConfigError } from "../config/problems";
import { rawConfigFromPulumi, resolveConfig } from "../config/resolve";
import { amd64OnlyWarnings } from "../model/images";
import { formatCost } from "../model/pricing";
import { stackDiagram } from "./diagram";
import {
  type EngineConfig,
  PROJECT_ROOT,
  ProgramFailed,
  type ProgramRun,
  type RecordedResource,
  readConfigFile,
  readStackFile,
  runProgram,
} from "./mock-engine";

/** One file a component ships, as it reports it (`shipped` in its outputs), with the text sent. */
export interface ShippedText {
  /** The component that ships it, e.g. `vps:app:AppStack::shop-prod-app`. */
  component: string;
  path: string;
  mode: FileMode;
  /** The command resource that ships it. */
  command: RecordedResource;
  /** The file's text (the command's stdin); undefined when it is secret. */
  text: string | undefined;
}

/** Every file the components report shipping, in registration order, each with its command's stdin. */
export function shippedFiles(run: ProgramRun): ShippedText[] {
  const commands = new Map(
    run.resources.filter((r) => r.type === "command:remote:Command").map((r) => [`${r.type}::${r.name}`, r]),
  );
  const out: ShippedText[] = [];
  for (const component of run.resources) {
    const shipped = component.registeredOutputs?.shipped;
    if (shipped === undefined) continue;
    const ref = `${component.type}::${component.name}`;
    if (!Array.isArray(shipped)) throw new Error(`${ref}: shipped is not a list`);
    for (const entry of shipped as { path?: unknown; mode?: unknown; command?: unknown }[]) {
      const command = commands.get(`command:remote:Command::${String(entry.command)}`);
      const mode = FILE_MODES.find((m) => m === entry.mode);
      if (typeof entry.path !== "string" || mode === undefined || command === undefined) {
        throw new Error(`${ref}: shipped entry ${JSON.stringify(entry)} names no recorded command`);
      }
      const stdin = command.inputs.stdin;
      const text = !command.secretInputs.includes("stdin") && typeof stdin === "string" ? stdin : undefined;
      out.push({ component: ref, path: entry.path, mode, command, text });
    }
  }
  return out;
}

/**
 * Where a shipped file goes under out/<stack>/: the app's release as is, the backups' files in
 * backup/, the alerts' in alerts/, the host's files under host/ at their path on the server.
 */
function artifactName(file: ShippedText, run: ProgramRun): string {
  const component = run.resources.find((r) => `${r.type}::${r.name}` === file.component);
  if (component?.type === "vps:app:AppStack") {
    const releaseDir = String(component.registeredOutputs?.releaseDir);
    if (!file.path.startsWith(`${releaseDir}/`)) throw new Error(`${file.path} is outside ${releaseDir}`);
    return file.path.slice(releaseDir.length + 1);
  }
  if (component?.type === "vps:backups:Backups") return `backup/${file.path.split("/").pop()}`;
  if (component?.type === "vps:alerts:Alerts") return `alerts/${file.path.split("/").pop()}`;
  if (component?.type === "vps:host:HostConfig") return `host${file.path}`;
  throw new Error(`no place in the plan for files shipped by ${file.component}`);
}

/** Files the plan writes besides resources.json, taken from what the program would send. */
export function artifactsOf(run: ProgramRun): Record<string, string> {
  const files: Record<string, string> = {};
  for (const r of run.resources) {
    if (r.type === "hcloud:index/server:Server" && typeof r.inputs.userData === "string") {
      files["cloud-init.yaml"] = r.inputs.userData;
    }
  }
  // What the components ship (the .env and the backups' environment file are secret: not written).
  for (const file of shippedFiles(run)) {
    if (file.text !== undefined) files[artifactName(file, run)] = file.text;
  }
  return files;
}

/** Every image of a resolved stack config, with the config key that names it. */
export function stackImages(config: ReturnType<typeof resolveConfig>) {
  return [
    ...config.services.map((s, i) => ({ key: `services[${i}].image`, ref: s.image })),
    { key: "postgres.image", ref: config.postgres.image },
    { key: "redis.image", ref: config.redis.image },
    { key: "proxy.caddyImage", ref: config.proxy.caddyImage },
    { key: "proxy.cloudflaredImage", ref: config.proxy.cloudflaredImage },
  ];
}

/** The Mermaid picture of the planned stack (diagram.mmd), drawn from the run and its config. */
export function diagramOf(run: ProgramRun, config: EngineConfig): string {
  const resolved = resolveConfig(run.stack, rawConfigFromPulumi(config.values));
  return stackDiagram(run, artifactsOf(run)["compose.yaml"], resolved);
}

/** The resources as resources.json holds them: no plaintext secrets, stable order. */
export function resourcesDocument(run: ProgramRun) {
  return {
    stack: run.stack,
    resources: run.resources.map((r) => ({
      type: r.type,
      name: r.name,
      parent: r.parent ?? null,
      inputs: r.inputs,
      secretInputs: r.secretInputs,
      options: r.options,
    })),
    outputs: run.outputs,
    secretOutputs: run.secretOutputs,
  };
}

const MAX_INLINE = 64;

function summarize(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "string") {
    if (value.includes("\n")) return `<${value.split("\n").length} lines>`;
    return value.length > MAX_INLINE ? `${value.slice(0, MAX_INLINE - 1)}…` : value;
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const json = JSON.stringify(value);
  return json.length > MAX_INLINE ? `${json.slice(0, MAX_INLINE - 1)}…` : json;
}

/** The resource tree, one line per resource, with key inputs and options, like `pulumi preview`. */
export function formatTree(run: ProgramRun): string {
  const children = new Map<string | undefined, RecordedResource[]>();
  for (const r of run.resources) {
    const list = children.get(r.parent) ?? [];
    list.push(r);
    children.set(r.parent, list);
  }
  const lines: string[] = [`    pulumi:pulumi:Stack  webstack-${run.stack}`];
  const walk = (parent: string | undefined, indent: string) => {
    const list = children.get(parent) ?? [];
    list.forEach((r, i) => {
      const last = i === list.length - 1;
      const branch = last ? "└─ " : "├─ ";
      const flags = [
        r.options.protect ? "protect" : "",
        r.options.ignoreChanges.length ? `ignoreChanges=[${r.options.ignoreChanges.join(",")}]` : "",
        r.options.dependsOn.length ? `after=[${r.options.dependsOn.map((d) => d.split("::")[1]).join(",")}]` : "",
      ].filter(Boolean);
      lines.push(`  + ${indent}${branch}${r.type}  ${r.name}${flags.length ? `  (${flags.join("; ")})` : ""}`);
      const childIndent = indent + (last ? "   " : "│  ");
      const hasChildren = (children.get(`${r.type}::${r.name}`) ?? []).length > 0;
      if (r.custom) {
        for (const [key, value] of Object.entries(r.inputs)) {
          if (key.startsWith("__")) continue;
          const text = summarize(value);
          if (text !== undefined) lines.push(`    ${childIndent}${hasChildren ? "│ " : "  "}  ${key}: ${text}`);
        }
      }
      walk(`${r.type}::${r.name}`, childIndent);
    });
  };
  walk(undefined, "");
  return lines.join("\n");
}

/** The stack an example config (a file that is not Pulumi.<stack>.yaml) is planned as. */
const EXAMPLE_STACK = "example";

async function main(): Promise<number> {
  const arg = process.argv[2];
  if (!arg) {
    console.error("usage: npm run plan -- <stack | path/to/stack-config.yaml>   (stacks: prod, staging)");
    return 2;
  }
  // A stack name reads Pulumi.<stack>.yaml; a path reads that file. A path to Pulumi.<stack>.yaml
  // plans that stack; any other file (an example config) plans as the stack EXAMPLE_STACK, since
  // a file name need not be a valid stack name. Artifacts go under out/<file name>/.
  const isFile = arg.endsWith(".yaml") || arg.endsWith(".yml");
  const fileName = basename(arg).replace(/\.ya?ml$/, "");
  const stackOfFile = /^Pulumi\.(.+)$/.exec(fileName)?.[1];
  const stack = isFile ? (stackOfFile ?? EXAMPLE_STACK) : arg;
  const outName = isFile ? (stackOfFile ?? fileName) : arg;
  let config: EngineConfig;
  try {
    config = isFile ? readConfigFile(resolve(arg)) : readStackFile(stack);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
  const started = process.hrtime.bigint();
  let run: ProgramRun;
  try {
    run = await runProgram(stack, config);
  } catch (err) {
    if (err instanceof ProgramFailed && err.cause instanceof ConfigError) {
      console.error(err.cause.message);
      return 1;
    }
    throw err;
  }
  const programMs = Number(process.hrtime.bigint() - started) / 1e6;

  const outDir = join(PROJECT_ROOT, "out", outName);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const artifacts = { ...artifactsOf(run), "diagram.mmd": diagramOf(run, config) };
  for (const [file, text] of Object.entries(artifacts)) {
    mkdirSync(dirname(join(outDir, file)), { recursive: true });
    writeFileSync(join(outDir, file), text);
  }
  writeFileSync(join(outDir, "resources.json"), `${JSON.stringify(resourcesDocument(run), null, 2)}\n`);

  console.log(
    `Plan of stack "${stack}"${isFile ? ` from ${arg}` : ""} (offline, Pulumi runtime mocks): ${run.resources.length} resources to create\n`,
  );
  console.log(formatTree(run));
  console.log("\nOutputs:");
  for (const [key, value] of Object.entries(run.outputs)) {
    if (key === "monthlyCostEstimate") continue;
    console.log(`    ${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  }
  const cost = run.outputs.monthlyCostEstimate as Parameters<typeof formatCost>[0];
  console.log(`\n${formatCost(cost)}`);
  const warnings = amd64OnlyWarnings(stackImages(resolveConfig(stack, rawConfigFromPulumi(config.values))));
  if (warnings.length > 0) console.log(`\nWarnings:\n${warnings.map((w) => `    ${w}`).join("\n")}`);
  console.log(`\nWrote ${[...Object.keys(artifacts), "resources.json"].map((f) => `out/${outName}/${f}`).join(", ")}`);
  console.log(`Program time: ${programMs.toFixed(0)} ms`);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
