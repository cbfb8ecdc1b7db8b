/**
 * Private registries in the resource graph: the deploy logs in with passwords that travel only
 * inside the secret `.registries` file, and a rotated password redeploys. The login itself runs
 * on a real registry in tests/stack/registry.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { secretKeyProblems } from "../../config/app";
import { engineConfig, type ProgramRun, runProgram } from "../../scripts/mock-engine";
import { configErrorOf, stackValues } from "../support/fixtures";

const TOKEN = "ghp_registryStandInToken0123456789abcdef";
const REGISTRY = { server: "ghcr.io", username: "shop-bot", passwordSecret: "GHCR_TOKEN" };

function prodWithRegistry(token: string) {
  const config = engineConfig({ ...stackValues("prod"), registries: [REGISTRY] });
  return {
    values: { ...config.values, "secrets:GHCR_TOKEN": token },
    secretKeys: [...config.secretKeys, "secrets:GHCR_TOKEN"],
  };
}

let run: ProgramRun;
const byName = (run: ProgramRun, suffix: string) => {
  const found = run.resources.find((r) => r.name.endsWith(suffix));
  if (!found) throw new Error(`no resource named *${suffix}`);
  return found;
};

beforeAll(async () => {
  run = await runProgram("prod", prodWithRegistry(TOKEN));
});

describe("a stack that pulls from a private registry", () => {
  it("ships the login as a secret .registries file: server, user and the password in base64", () => {
    const ship = byName(run, "-app-ship-registries");
    expect(ship.secretInputs).toContain("stdin");
    expect(ship.rawInputs.stdin).toBe(`ghcr.io\tshop-bot\t${Buffer.from(TOKEN).toString("base64")}\n`);
    expect(ship.rawInputs.create).toContain("/.registries");
  });

  it("never puts the password in a command line, a trigger in the clear, an output or the .env", () => {
    const encoded = Buffer.from(TOKEN).toString("base64");
    for (const r of run.resources) {
      const { connection, stdin, ...rest } = r.inputs as Record<string, unknown>;
      void connection;
      const text = JSON.stringify(rest);
      expect(text, r.name).not.toContain(TOKEN);
      expect(text, r.name).not.toContain(encoded);
      if (r.name.endsWith("-ship-env")) expect(String(stdin)).not.toContain(TOKEN);
    }
    expect(JSON.stringify(run.outputs)).not.toContain(TOKEN);
  });

  it("redeploys when the registry password is rotated", async () => {
    const rotated = await runProgram("prod", prodWithRegistry(`${TOKEN}-rotated`));
    const triggers = (r: ProgramRun) => JSON.stringify(byName(r, "-app-deploy").rawInputs.triggers);
    expect(triggers(rotated)).not.toBe(triggers(run));
    expect(byName(rotated, "-app-deploy").secretInputs).toContain("triggers");
  });

  it("ships an empty .registries file without registries, so the deploy logs out of every one", async () => {
    const plain = await runProgram("prod", engineConfig(stackValues("prod")));
    expect(byName(plain, "-app-ship-registries").rawInputs.stdin).toBe("");
  });

  it("refuses a registry whose password secret is stored in plaintext, naming the key", async () => {
    const config = prodWithRegistry(TOKEN);
    const plaintext = { ...config, secretKeys: config.secretKeys.filter((k) => k !== "secrets:GHCR_TOKEN") };
    const message = await configErrorOf("prod", plaintext);
    expect(message).toContain("secrets:GHCR_TOKEN: is stored in plaintext");
    expect(message).not.toContain(TOKEN);
  });

  it("asks for a registry's missing password secret with the command that sets it", () => {
    expect(secretKeyProblems(["GHCR_TOKEN"], "a registry names it as its passwordSecret", {}, () => true)).toEqual([
      "secrets:GHCR_TOKEN: is required (a registry names it as its passwordSecret); set it with: pulumi config set --secret secrets:GHCR_TOKEN <value>",
    ]);
  });
});
