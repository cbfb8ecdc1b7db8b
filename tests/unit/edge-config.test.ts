/**
 * The edge and storage config keys: defaults, and errors that name the key, the bad value (never a
 * secret's) and what is allowed.
 */
import { describe, expect, it } from "vitest";
import { backupCredentialsSource } from "../../components/storage";
import { ConfigError } from "../../config/problems";
import { resolveConfig } from "../../config/resolve";
import { stackValues } from "../support/fixtures";

const SECRET = "f".repeat(64);
const prod = () => stackValues("prod");

function problemsOf(changes: Record<string, unknown>, isSecret?: (key: string) => boolean): string {
  try {
    resolveConfig("prod", { ...prod(), ...changes }, isSecret);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error("the config was accepted");
}

describe("edge config defaults", () => {
  it("manage zone settings, hint western Europe, use the default jurisdiction and create a backup token", () => {
    const { manageZoneSettings, r2Location, r2Jurisdiction, backupCredentials, ...rest } = prod();
    void [manageZoneSettings, r2Location, r2Jurisdiction, backupCredentials];
    expect(resolveConfig("prod", rest)).toMatchObject({
      manageZoneSettings: true,
      r2Location: "weur",
      r2Jurisdiction: "default",
      backupCredentials: "token",
    });
  });
});

describe("an invalid edge config", () => {
  it.each([
    [{ cloudflareAccountId: "my-account" }, ["webstack:cloudflareAccountId", '"my-account"', "32 lowercase hex"]],
    [{ cloudflareAccountId: undefined }, ["webstack:cloudflareAccountId", "is required"]],
    [{ r2Location: "eu-west" }, ["webstack:r2Location", '"eu-west"', "weur"]],
    [{ r2Jurisdiction: "fedramp" }, ["webstack:r2Jurisdiction", "default, eu"]],
    [{ backupCredentials: "keys" }, ["webstack:backupCredentials", "token, config"]],
    [{ manageZoneSettings: "no" }, ["webstack:manageZoneSettings", "boolean"]],
    [{ backupAccessKeyId: "AKIA1234" }, ["webstack:backupAccessKeyId", "32 lowercase hex"]],
  ])("with %j is rejected naming the key", (changes, fragments) => {
    const message = problemsOf(changes);
    for (const f of fragments) expect(message).toContain(f);
  });

  it("in config mode without keys names both missing keys", () => {
    const message = problemsOf({ backupCredentials: "config" });
    expect(message).toMatch(/webstack:backupAccessKeyId: is required with backupCredentials "config"/);
    expect(message).toMatch(/webstack:backupSecretAccessKey: is required with backupCredentials "config"/);
  });

  it("in token mode refuses keys that would be ignored, without printing the secret", () => {
    const message = problemsOf({ backupSecretAccessKey: SECRET });
    expect(message).toContain("webstack:backupSecretAccessKey");
    expect(message).toContain('only with backupCredentials "config"');
    expect(message).not.toContain(SECRET);
  });

  it("refuses a secret access key stored in plaintext, naming the --secret command", () => {
    const changes = { backupCredentials: "config", backupAccessKeyId: "0".repeat(32), backupSecretAccessKey: SECRET };
    const message = problemsOf(changes, () => false);
    expect(message).toContain("webstack:backupSecretAccessKey");
    expect(message).toContain("pulumi config set --secret webstack:backupSecretAccessKey");
    expect(message).not.toContain(SECRET);
    expect(() =>
      resolveConfig("prod", { ...prod(), ...changes }, (k) => k === "webstack:backupSecretAccessKey"),
    ).not.toThrow();
  });
});

describe("the backup credentials source", () => {
  it("is a token the program creates by default", () => {
    expect(backupCredentialsSource(resolveConfig("prod", prod()))).toEqual({ mode: "token" });
  });

  it("carries the configured keys in config mode", () => {
    const config = resolveConfig("prod", {
      ...prod(),
      backupCredentials: "config",
      backupAccessKeyId: "0".repeat(32),
      backupSecretAccessKey: SECRET,
    });
    expect(backupCredentialsSource(config)).toMatchObject({ mode: "config", accessKeyId: "0".repeat(32) });
  });
});
