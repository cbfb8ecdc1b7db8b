/**
 * Stack config files of the project (`Pulumi.<stack>.yaml`) and of the examples, read as plain
 * values keyed without the `webstack:` namespace.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { parse } from "yaml";
import { type EngineConfig, engineConfig, PROJECT_ROOT } from "../../scripts/mock-engine";

export interface StackFile {
  /** Path relative to the project root. */
  file: string;
  /** The stack the file configures (`Pulumi.<stack>.yaml`). */
  stack: string;
  values: Record<string, unknown>;
}

function read(path: string): Record<string, unknown> | undefined {
  const doc = parse(readFileSync(path, "utf8")) as { config?: Record<string, unknown> } | null;
  if (!doc?.config) return undefined;
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^webstack:/, ""), v]));
}

/** The values of one of the project's own stack files. */
export function stackFileValues(stack: string): Record<string, unknown> {
  const values = read(join(PROJECT_ROOT, `Pulumi.${stack}.yaml`));
  if (!values) throw new Error(`Pulumi.${stack}.yaml has no config`);
  return values;
}

/** A project stack's config with some keys changed (undefined deletes a key), ready for the engine. */
export function stackWithChanges(stack: string, changes: Record<string, unknown>): EngineConfig {
  const values = { ...stackFileValues(stack) };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete values[k];
    else values[k] = v;
  }
  return engineConfig(values);
}

/** Every `Pulumi.<stack>.yaml` of the project root, and every YAML file with a `config:` map below `examples/`. */
export function allStackFiles(): StackFile[] {
  const files: string[] = readdirSync(PROJECT_ROOT)
    .filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f))
    .map((f) => join(PROJECT_ROOT, f));
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry)) files.push(path);
    }
  };
  walk(join(PROJECT_ROOT, "examples"));
  return files.flatMap((path) => {
    const values = read(path);
    // An example named otherwise than Pulumi.<stack>.yaml is a config for any stack: take prod.
    const stack = /^Pulumi\.[^.]+\.ya?ml$/.test(basename(path)) ? basename(path).split(".")[1] : "prod";
    return values ? [{ file: relative(PROJECT_ROOT, path), stack, values }] : [];
  });
}
