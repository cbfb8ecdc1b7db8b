/**
 * Every stack-config file the project ships: `Pulumi.<stack>.yaml` at the root and every YAML file
 * with a `config:` map below `examples/`, read as plain values keyed without the `webstack:`
 * namespace.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../scripts/mock-engine";

export interface StackFile {
  /** Path relative to the project root. */
  file: string;
  /** The stack it configures, named as `npm run plan -- <file>` names it. */
  stack: string;
  values: Record<string, unknown>;
}

function read(path: string): Record<string, unknown> | undefined {
  const doc = parse(readFileSync(path, "utf8")) as { config?: Record<string, unknown> } | null;
  if (!doc?.config) return undefined;
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^webstack:/, ""), v]));
}

export function allStackFiles(): StackFile[] {
  const files: string[] = readdirSync(PROJECT_ROOT)
    .filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f))
    .map((f) => join(PROJECT_ROOT, f));
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry)) files.push(path);
    }
  };
  walk(join(PROJECT_ROOT, "examples"));
  return files.flatMap((path) => {
    const values = read(path);
    const stack = basename(path)
      .replace(/^Pulumi\./, "")
      .replace(/\.ya?ml$/, "");
    return values ? [{ file: relative(PROJECT_ROOT, path), stack, values }] : [];
  });
}
