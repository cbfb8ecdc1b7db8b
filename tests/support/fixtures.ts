/**
 * Shared test fixtures: stack configs as the engine would hand them to the program.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ConfigError } from "../../config/problems";
import { type EngineConfig, engineConfig, PROJECT_ROOT, ProgramFailed, runProgram } from "../../scripts/mock-engine";

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

/**
 * The message of the config error the program fails with for this config, having registered no
 * resource; throws when it does not fail so.
 */
export async function configErrorOf(stack: string, config: EngineConfig): Promise<string> {
  const failure = await runProgram(stack, config).then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(failure instanceof ProgramFailed) || !(failure.cause instanceof ConfigError)) {
    throw new Error(`expected a config error, got: ${String(failure)}`);
  }
  if (failure.resources.length > 0)
    throw new Error(`${failure.resources.length} resources registered before the error`);
  return failure.cause.message;
}
