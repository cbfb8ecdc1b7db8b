/**
 * Stack configs of the app stack tests: the example configs (`examples/*.yaml`), the project's
 * stacks (`Pulumi.<stack>.yaml`), resolved like the program does, and a `.env` with stand-in
 * secrets for rendering them outside Pulumi.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parse } from "yaml";
import { renderDotenv } from "../../compose/dotenv";
import { appSecretNames } from "../../config/app";
import { resolveConfig, type StackConfig } from "../../config/resolve";
import { PROJECT_ROOT } from "../../scripts/mock-engine";

export const EXAMPLES_DIR = join(PROJECT_ROOT, "examples");
/** The Docker CLI of Debian's docker.io (a different `docker` may come first on PATH). */
export const DOCKER = "/usr/bin/docker";

/** The example names: the file names in examples/ without `.yaml`. */
export function exampleNames(): string[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => basename(f, ".yaml"))
    .sort();
}

/** A stack-config file's `config:` map as raw values keyed without the namespace. */
export function configFileValues(path: string): Record<string, unknown> {
  const doc = parse(readFileSync(path, "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config)
      .filter(([k]) => k.startsWith("webstack:"))
      .map(([k, v]) => [k.slice("webstack:".length), v]),
  );
}

export function exampleValues(name: string): Record<string, unknown> {
  return configFileValues(join(EXAMPLES_DIR, `${name}.yaml`));
}

export function stackFileValues(stack: string): Record<string, unknown> {
  return configFileValues(join(PROJECT_ROOT, `Pulumi.${stack}.yaml`));
}

export function resolveExample(name: string): StackConfig {
  return resolveConfig("example", exampleValues(name));
}

/** A `.env` for a config with recognisable stand-in values. */
export function standInDotenv(config: StackConfig, overrides: Record<string, string> = {}): string {
  const values: Record<string, string> = {
    POSTGRES_PASSWORD: "standInPostgresPassword1",
    REDIS_PASSWORD: "standInRedisPassword1",
  };
  if (config.exposure === "tunnel") values.TUNNEL_TOKEN = "stand-in-tunnel-token";
  for (const name of appSecretNames(config.services)) values[name] = `stand-in-${name.toLowerCase()}`;
  return renderDotenv({ ...values, ...overrides });
}

/** Run a program; returns its exit status and both outputs (never throws for a non-zero status). */
export function run(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(file, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    input: options.input,
    encoding: "utf8",
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status ?? 1, stdout: result.stdout ?? "", stderr: result.stderr ?? String(result.error) };
}
