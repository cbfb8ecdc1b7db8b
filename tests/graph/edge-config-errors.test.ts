/**
 * Bad edge config stops the real program before any resource is registered, naming the key.
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../config/problems";
import { ProgramFailed, runProgram } from "../../scripts/mock-engine";
import { withChanges } from "../support/fixtures";

async function failureOf(changes: Record<string, unknown>): Promise<ProgramFailed> {
  const failure = await runProgram("prod", withChanges("prod", changes)).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(failure).toBeInstanceOf(ProgramFailed);
  expect((failure as ProgramFailed).cause).toBeInstanceOf(ConfigError);
  return failure as ProgramFailed;
}

describe("the program with bad edge config", () => {
  it("refuses a secret access key set without --secret, registering nothing and printing no secret", async () => {
    const secret = "e".repeat(64);
    const failure = await failureOf({
      backupCredentials: "config",
      backupAccessKeyId: "0".repeat(32),
      backupSecretAccessKey: secret,
    });
    expect(failure.message).toContain("webstack:backupSecretAccessKey");
    expect(failure.message).toContain("--secret");
    expect(failure.message).not.toContain(secret);
    expect(failure.resources).toEqual([]);
  });

  it("refuses a malformed account id, registering nothing", async () => {
    const failure = await failureOf({ cloudflareAccountId: "ACCOUNT" });
    expect(failure.message).toContain("webstack:cloudflareAccountId");
    expect(failure.resources).toEqual([]);
  });
});
