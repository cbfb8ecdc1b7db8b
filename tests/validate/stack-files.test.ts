/**
 * Every example config and both stacks render files the real tools accept: Compose v2's
 * `docker compose config -q` (with the rendered .env) and `caddy validate`; the deploy scripts
 * pass shellcheck. Tools come from scripts/install-test-tools.sh.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderStackFiles, SCRIPTS_DIR } from "../../compose/stack-files";
import { resolveConfig, type StackConfig } from "../../config/resolve";
import { DOCKER, exampleNames, resolveExample, run, stackFileValues, standInDotenv } from "../support/stack-configs";

function writeStack(config: StackConfig, dotenv = standInDotenv(config)): string {
  const dir = mkdtempSync(join(tmpdir(), "webstack-validate-"));
  const { files } = renderStackFiles(config, "/srv/data");
  writeFileSync(join(dir, "compose.yaml"), files["compose.yaml"]);
  writeFileSync(join(dir, "Caddyfile"), files.Caddyfile);
  writeFileSync(join(dir, ".env"), dotenv, { mode: 0o600 });
  return dir;
}

const configs: [string, () => StackConfig][] = [
  ...exampleNames().map((name): [string, () => StackConfig] => [`example ${name}`, () => resolveExample(name)]),
  ...["prod", "staging"].map((stack): [string, () => StackConfig] => [
    `stack ${stack}`,
    () => resolveConfig(stack, stackFileValues(stack)),
  ]),
  [
    "stack prod with SSH through the tunnel",
    () => resolveConfig("prod", { ...stackFileValues("prod"), sshThroughTunnel: true, sshAllowedCidrs: [] }),
  ],
];

describe("rendered stack files under the real validators", () => {
  it("has four example configs", () => {
    expect(exampleNames()).toHaveLength(4);
  });

  for (const [label, load] of configs) {
    it(`${label}: docker compose config -q accepts the compose file`, () => {
      const dir = writeStack(load());
      const result = run(DOCKER, ["compose", "config", "-q"], { cwd: dir });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
    });

    it(`${label}: caddy validate accepts the Caddyfile`, () => {
      const dir = writeStack(load());
      const result = run("caddy", ["validate", "--adapter", "caddyfile", "--config", join(dir, "Caddyfile")]);
      expect(`${result.stdout}${result.stderr}`).toContain("Valid configuration");
      expect(result.status).toBe(0);
    });
  }

  it("compose reads every .env value back byte for byte, quotes, dollars and newlines included", () => {
    const config = resolveExample("fastify-bullmq-nextjs");
    const tricky = `it's $HOME "quoted" \\ back\nslash`;
    const dir = writeStack(config, standInDotenv(config, { STRIPE_SECRET_KEY: tricky, SMTP_PASSWORD: "pa$$word" }));
    const result = run(DOCKER, ["compose", "config", "--format", "json"], { cwd: dir });
    expect(result.status).toBe(0);
    const env = JSON.parse(result.stdout).services.worker.environment;
    // `config` prints a compose file again, so a literal `$` comes out escaped as `$$`.
    const literal = (value: string) => value.replaceAll("$", () => "$$");
    expect(env.STRIPE_SECRET_KEY).toBe(literal(tricky));
    expect(env.SMTP_PASSWORD).toBe(literal("pa$$word"));
  });

  it("compose refuses to run without a variable the compose file needs", () => {
    const config = resolveConfig("prod", stackFileValues("prod"));
    const dir = writeStack(config, "POSTGRES_PASSWORD='x'\n");
    const result = run(DOCKER, ["compose", "config", "-q"], { cwd: dir });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/is missing from \.env/);
  });

  it("the deploy script passes shellcheck", () => {
    const result = run("shellcheck", [join(SCRIPTS_DIR, "deploy.sh")]);
    expect(result.stdout).toBe("");
    expect(result.status).toBe(0);
  });
});
