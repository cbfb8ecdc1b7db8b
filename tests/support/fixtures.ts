/**
 * Shared test fixtures: stack configs as the engine would hand them to the program.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { type EngineConfig, engineConfig, PROJECT_ROOT } from "../../scripts/mock-engine";

/** The `config:` map of a stack file, without namespace, as plain values. */
export function stackValues(stack: string): Record<string, unknown> {
  const doc = parse(readFileSync(join(PROJECT_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^webstack:/, ""), v]));
}

/** A stack's config with some keys changed (undefined deletes a key), ready for the engine. */
export function withChanges(stack: string, changes: Record<string, unknown>): EngineConfig {
  const values = { ...stackValues(stack) };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete values[k];
    else values[k] = v;
  }
  return engineConfig(values);
}

/** The stacks this project ships. */
export const STACKS = ["prod", "staging"] as const;
