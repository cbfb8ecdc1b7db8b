/**
 * Config errors a user can cause, as the real program raises them under mocks: no message prints a
 * secret, later checks (the memory budget) are config errors too, keys nothing reads are named,
 * variables the stack owns cannot be shadowed, list entries are unique, the offline plan's
 * stand-ins pass the checks the real values pass, and unusual but valid configs are not refused.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HIDDEN } from "../../config/echo";
import { SHAPED_SECRET_KEYS } from "../../config/stand-ins";
import { type EngineConfig, engineConfig, PROJECT_ROOT, readConfigFile, runProgram } from "../../scripts/mock-engine";
import { configErrorOf, stackValues, withChanges } from "../support/fixtures";

/** The prod stack with changes, and these keys (full names) set with `--secret` to these values. */
function withSecrets(changes: Record<string, unknown>, secrets: Record<string, string>): EngineConfig {
  const config = withChanges("prod", changes);
  const values = { ...config.values, ...secrets };
  return { values, secretKeys: [...new Set([...config.secretKeys, ...Object.keys(secrets)])] };
}

/** The prod stack's services with the first one (api) changed. */
function withApi(change: Record<string, unknown>): Record<string, unknown> {
  const services = stackValues("prod").services as Record<string, unknown>[];
  return { services: [{ ...services[0], ...change }, ...services.slice(1)] };
}

const GITHUB_TOKEN = "ghp_4Fq9ZkX2mV7pR1sT8uW3yB6nC0dE5gH2jK4L";
const JWT_SECRET_VALUE = "correct-horse-battery-staple-jwt-signing-value";

describe("no config error prints a secret", () => {
  it("hides the value of a key set with --secret when it is refused", async () => {
    const url = "not a url but a secret-token-9f8e7d6c";
    const message = await configErrorOf("prod", withSecrets({}, { "webstack:backupPingUrl": url }));
    expect(message).toContain("webstack:backupPingUrl (value hidden: secret): must be an http(s) URL");
    expect(message).not.toContain("secret-token-9f8e7d6c");
  });

  it("hides a token pasted into a plain key", async () => {
    const message = await configErrorOf("prod", withChanges("prod", { appName: GITHUB_TOKEN }));
    expect(message).toContain("webstack:appName");
    expect(message).toContain(HIDDEN);
    expect(message).not.toContain(GITHUB_TOKEN.slice(4, 20));
  });

  it("hides a private key pasted where a public key belongs", async () => {
    const privateKey =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----";
    const message = await configErrorOf("prod", withChanges("prod", { adminSshKeys: [privateKey] }));
    expect(message).toContain("webstack:adminSshKeys[0]");
    expect(message).toContain("is a private key");
    expect(message).not.toContain("b3BlbnNzaC1rZXktdjEAAAAABG5vbmU");
  });

  it("hides an app secret's value pasted into another key, however short its shape", async () => {
    const config = withSecrets({ domain: JWT_SECRET_VALUE }, { "secrets:JWT_SECRET": JWT_SECRET_VALUE });
    const message = await configErrorOf("prod", config);
    expect(message).toContain("webstack:domain");
    expect(message).not.toContain(JWT_SECRET_VALUE);
  });
});

describe("checks after validation are config errors", () => {
  it("refuses fixed memory that does not fit the tier at the service's memoryMb, registering nothing", async () => {
    const message = await configErrorOf("prod", withChanges("prod", withApi({ memoryMb: 4096, memoryShare: 1 })));
    expect(message).toMatch(/webstack:services\[0\]\.memoryMb \(got 4096\): the services' fixed memoryMb add up/);
    expect(message).not.toMatch(/MemoryBudgetError|\n\s+at /);
  });
});

describe("keys nothing reads are named", () => {
  it("refuses a misspelled namespace, saying which was meant", async () => {
    const config = withChanges("prod", {});
    config.values["webstak:volumeSizeGb"] = "80";
    const message = await configErrorOf("prod", config);
    expect(message).toContain(
      'webstak:volumeSizeGb: unknown config namespace "webstak" (did you mean webstack:volumeSizeGb?)',
    );
  });

  it("refuses an app secret nothing names, saying which was meant, without its value", async () => {
    const message = await configErrorOf("prod", withSecrets({}, { "secrets:JWT_SECRT": JWT_SECRET_VALUE }));
    expect(message).toContain("secrets:JWT_SECRT: no service (secrets), registry (passwordSecret) or webstack:alerts");
    expect(message).toContain("did you mean secrets:JWT_SECRET?");
    expect(message).toContain("pulumi config rm secrets:JWT_SECRT");
    expect(message).not.toContain(JWT_SECRET_VALUE);
  });

  it("refuses a key in no namespace near a known one, and an app secret left by a removed registry", async () => {
    const config = withSecrets({}, { "secret:JWT_SECRET": "a-b", "secrets:GHCR_TOKEN": "t0ken-value-left-behind" });
    const message = await configErrorOf("prod", config);
    expect(message).toContain(
      'secret:JWT_SECRET: unknown config namespace "secret" (did you mean secrets:JWT_SECRET?)',
    );
    expect(message).toContain("secrets:GHCR_TOKEN: no service (secrets), registry (passwordSecret)");
    expect(message).not.toContain("t0ken-value-left-behind");
  });

  it("accepts the providers' own namespaces", async () => {
    const config = withSecrets({}, { "hcloud:token": "x".repeat(64), "cloudflare:apiToken": "y".repeat(40) });
    await expect(runProgram("prod", config)).resolves.toBeDefined();
  });
});

describe("a file that is not a stack config file", () => {
  const dir = mkdtempSync(join(tmpdir(), "webstack-not-a-stack-"));
  const fileWith = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("is named as the project file when it is Pulumi.yaml", () => {
    expect(() => readConfigFile(join(PROJECT_ROOT, "Pulumi.yaml"))).toThrow(
      /Pulumi\.yaml is not a stack config file: it is a Pulumi project file \(it has name: and runtime:\); plan a stack file such as Pulumi\.prod\.yaml/,
    );
  });

  it("is named as such when it is a list, has no config: key, or is YAML that does not parse", () => {
    expect(() => readConfigFile(fileWith("compose.yaml", "services:\n  api: {}\n"))).toThrow(
      /compose\.yaml is not a stack config file: it has no config: key \(its keys: services\)/,
    );
    expect(() => readConfigFile(fileWith("list.yaml", "- webstack:tier: small\n"))).toThrow(
      /list\.yaml is not a stack config file: it is not a YAML mapping; a stack config file is a YAML mapping with a config: mapping/,
    );
    expect(() => readConfigFile(fileWith("broken.yaml", "config:\n  webstack:tier: [small\n"))).toThrow(
      /broken\.yaml is not valid YAML \(line \d+\)/,
    );
  });
});

describe("variables the stack owns cannot be shadowed", () => {
  it("refuses an app secret named like the stack's database URL or its own .env passwords", async () => {
    const message = await configErrorOf(
      "prod",
      withChanges("prod", withApi({ secrets: ["DATABASE_URL", "POSTGRES_PASSWORD"] })),
    );
    expect(message).toContain("webstack:services[0].secrets[0]");
    expect(message).toContain("DATABASE_URL is set by the stack");
    expect(message).toContain("webstack:services[0].secrets[1]");
    expect(message).toContain("POSTGRES_PASSWORD is set by the stack");
  });

  it("refuses an app secret named like the stack's Redis password, its tunnel token or a Postgres variable", async () => {
    const message = await configErrorOf(
      "prod",
      withChanges("prod", withApi({ secrets: ["JWT_SECRET", "REDIS_PASSWORD", "TUNNEL_TOKEN", "PGPASSWORD"] })),
    );
    for (const [i, name] of [
      [1, "REDIS_PASSWORD"],
      [2, "TUNNEL_TOKEN"],
      [3, "PGPASSWORD"],
    ])
      expect(message).toContain(`webstack:services[0].secrets[${i}] (got "${name}"): ${name} is set by the stack`);
    expect(message).not.toContain("secrets[0]");
  });

  it("refuses a routed service's PORT given as a secret", async () => {
    const message = await configErrorOf("prod", withChanges("prod", withApi({ secrets: ["JWT_SECRET", "PORT"] })));
    expect(message).toContain(
      'webstack:services[0].secrets[1] (got "PORT"): PORT is set by the stack from the service\'s port (3000)',
    );
  });

  it("refuses a PORT that disagrees with the service's port", async () => {
    const message = await configErrorOf(
      "prod",
      withChanges("prod", withApi({ environment: { NODE_ENV: "production", PORT: "8080" } })),
    );
    expect(message).toContain(
      'webstack:services[0].environment.PORT (got "8080"): disagrees with the service\'s port (3000)',
    );
  });
});

describe("list entries are unique as their tool compares them", () => {
  it("refuses the same SSH key twice under another comment, the same network spelled otherwise, and a label key twice", async () => {
    const prod = stackValues("prod");
    const key = (prod.adminSshKeys as string[])[0];
    const message = await configErrorOf(
      "prod",
      withChanges("prod", {
        adminSshKeys: [key, `${key.split(" ").slice(0, 2).join(" ")} alice@laptop`],
        sshAllowedCidrs: ["2001:db8:1234::/48", "2001:0db8:1234:0000::/48"],
        labels: ["team=shop", "environment=production", "team=platform"],
      }),
    );
    expect(message).toContain("webstack:adminSshKeys[1]");
    expect(message).toContain("is the same key as entry [0]");
    expect(message).toContain("webstack:sshAllowedCidrs[1]");
    expect(message).toContain("is the same network as entry [0]");
    expect(message).toContain('webstack:labels[2] (got "team=platform"): sets the same label key');
  });

  it("refuses the same recipient, extension, writer service or secret twice", async () => {
    const prod = stackValues("prod");
    const recipient = (prod.backupRecipients as string[])[0];
    const message = await configErrorOf(
      "prod",
      withChanges("prod", {
        backupRecipients: [recipient, recipient],
        postgres: { extensions: ["postgis", "pg_trgm", "postgis"] },
        uploads: { services: ["api", "api"] },
        ...withApi({ secrets: ["JWT_SECRET", "JWT_SECRET"] }),
      }),
    );
    expect(message).toContain("webstack:backupRecipients[1]");
    expect(message).toContain('webstack:postgres.extensions[2] (got "postgis"): is the same extension as entry [0]');
    expect(message).toContain('webstack:uploads.services[1] (got "api"): is the same service as entry [0]');
    expect(message).toContain('webstack:services[0].secrets[1] (got "JWT_SECRET"): is the same secret as entry [0]');
  });
});

describe("the offline plan's stand-ins", () => {
  it.each(SHAPED_SECRET_KEYS)("for %s set as secure: pass the checks its real values pass", async (fullKey) => {
    const key = fullKey.replace(/^webstack:/, "");
    const values = { ...stackValues("prod"), [key]: { secure: "v1:AAAAstand-in-ciphertext" } };
    if (key === "backupSecretAccessKey")
      Object.assign(values, { backupCredentials: "config", backupAccessKeyId: "0".repeat(32) });
    await expect(runProgram("prod", engineConfig(values))).resolves.toBeDefined();
  });
});

describe("unusual but valid configs are not refused", () => {
  const VALID: { what: string; changes: Record<string, unknown> }[] = [
    { what: "a PORT that says the service's port", changes: withApi({ environment: { PORT: "3000" } }) },
    {
      what: "a worker that is told a PORT of its own",
      changes: { ...withApi({}), ...workerWith({ environment: { PORT: "9000" } }) },
    },
    { what: "two networks that only overlap", changes: { sshAllowedCidrs: ["203.0.113.0/24", "203.0.113.0/25"] } },
    {
      what: "two labels with the same value",
      changes: { labels: ["team=shop", "owner=shop", "environment=production"] },
    },
    {
      what: "two different keys with the same comment",
      changes: {
        adminSshKeys: (stackValues("prod").adminSshKeys as string[]).map(
          (k) => `${k.split(" ").slice(0, 2).join(" ")} ops`,
        ),
      },
    },
  ];

  it.each(VALID)("with $what plans", async ({ changes }) => {
    await expect(runProgram("prod", withChanges("prod", changes))).resolves.toBeDefined();
  });
});

describe("values are passed on in the spelling their tool returns", () => {
  it("opens the firewall to a network in its canonical spelling, however it was written", async () => {
    const run = await runProgram("prod", withChanges("prod", { sshAllowedCidrs: ["2001:0DB8:1234:0000::/48"] }));
    const firewall = run.resources.find((r) => r.type === "hcloud:index/firewall:Firewall");
    const sources = JSON.stringify(firewall?.inputs.rules);
    expect(sources).toContain('"2001:db8:1234::/48"');
    expect(sources).not.toMatch(/0DB8|0000/);
  });
});

/** The prod stack's services with the worker (the second) changed. */
function workerWith(change: Record<string, unknown>): Record<string, unknown> {
  const services = stackValues("prod").services as Record<string, unknown>[];
  return { services: [services[0], { ...services[1], ...change }, ...services.slice(2)] };
}
