/**
 * The prod stack switched to direct exposure, with the backup job's R2 keys taken from the stack
 * config (`pulumi config set --secret`), under mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { Storage } from "../../components/storage";
import { type ProgramRun, type RecordedResource, runProgram } from "../../scripts/mock-engine";
import { resourcesDocument } from "../../scripts/plan";
import { withChanges } from "../support/fixtures";

const DNS = "cloudflare:index/dnsRecord:DnsRecord";
const ACCESS_KEY_ID = "89abcdef0123456789abcdef01234567";

let run: ProgramRun;
let resources: RecordedResource[];
const ofType = (type: string) => resources.filter((r) => r.type === type);
const engine = withChanges("prod", {
  exposure: "direct",
  backupCredentials: "config",
  backupAccessKeyId: ACCESS_KEY_ID,
  // As `pulumi config set --secret` stores it; the engine hands the program a stand-in marked secret.
  backupSecretAccessKey: { secure: "v1:stand-in-ciphertext" },
});

beforeAll(async () => {
  run = await runProgram("prod", engine);
  resources = [...run.resources];
});

describe("the prod stack in direct mode", () => {
  it("creates no tunnel and reports no tunnel id", () => {
    expect(resources.filter((r) => r.type.includes("ZeroTrustTunnel"))).toEqual([]);
    expect(ofType("random:index/randomBytes:RandomBytes")).toEqual([]);
    expect(run.outputs.tunnelId).toBeUndefined();
  });

  it("points every hostname with a proxied CNAME at the origin name", () => {
    const records = ofType(DNS);
    for (const hostname of ["api.example.com", "app.example.com"]) {
      const mine = records.filter((r) => r.inputs.name === hostname);
      expect(mine.map((r) => [r.inputs.type, r.inputs.content, r.inputs.proxied])).toEqual([
        ["CNAME", "shop-prod-origin.example.com", true],
      ]);
    }
  });

  it("gives the origin name one proxied A record to the server's IPv4 and no AAAA (the ports answer on IPv4 only)", () => {
    const origin = ofType(DNS).filter((r) => r.inputs.name === "shop-prod-origin.example.com");
    expect(origin.map((r) => [r.inputs.type, r.inputs.content, r.inputs.proxied])).toEqual([
      ["A", "203.0.113.10", true],
    ]);
    expect(ofType(DNS).filter((r) => r.inputs.type === "AAAA")).toEqual([]);
    expect(ofType(DNS)).toHaveLength(3);
  });

  it("sets the zone's SSL mode to full (strict)", () => {
    const ssl = ofType("cloudflare:index/zoneSetting:ZoneSetting").find((r) => r.inputs.settingId === "ssl");
    expect(ssl?.inputs.value).toBe("strict");
  });

  it("opens 80 and 443 on the Hetzner firewall", () => {
    const [firewall] = ofType("hcloud:index/firewall:Firewall");
    const ports = (firewall.inputs.rules as { port?: string }[]).map((r) => r.port);
    expect(ports).toEqual(expect.arrayContaining(["80", "443"]));
  });
});

describe("backup credentials from the stack config", () => {
  it("create no API token", () => {
    expect(ofType("cloudflare:index/accountToken:AccountToken")).toEqual([]);
  });

  it("keep the secret access key out of every plaintext input and of resources.json", () => {
    const secret = engine.values["webstack:backupSecretAccessKey"];
    expect(engine.secretKeys).toContain("webstack:backupSecretAccessKey");
    for (const r of resources) {
      for (const [key, value] of Object.entries(r.rawInputs)) {
        if (JSON.stringify(value).includes(secret)) expect(r.secretInputs, `${r.name}.${key}`).toContain(key);
      }
    }
    expect(JSON.stringify(resourcesDocument({ ...run, resources }))).not.toContain(secret);
  });

  it("hand the backup job both keys as secrets", async () => {
    const storage = new Storage("probe", {
      prefix: "probe",
      accountId: "0123456789abcdef0123456789abcdef",
      corsOrigins: [],
      location: "weur",
      jurisdiction: "eu",
      backupCredentials: { mode: "config", accessKeyId: ACCESS_KEY_ID, secretAccessKey: "plain-input" },
    });
    expect(await pulumi.isSecret(storage.backupCredentials.accessKeyId)).toBe(true);
    expect(await pulumi.isSecret(storage.backupCredentials.secretAccessKey)).toBe(true);
    expect(storage.s3Endpoint).toBe("https://0123456789abcdef0123456789abcdef.eu.r2.cloudflarestorage.com");
  });
});
