/**
 * The prod stack as shipped (tunnel mode) under mocks: the tunnel, its ingress, the DNS records,
 * the firewall, the buckets, and where the secrets go.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { Edge, pathPrefixRegex } from "../../components/edge";
import { Storage, s3SecretFromTokenValue } from "../../components/storage";
import { resolveConfig } from "../../config/resolve";
import { BACKUP_RETENTION } from "../../model/backups";
import {
  type ProgramRun,
  type RecordedResource,
  readStackFile,
  runProgram,
  standInHex,
  standInTunnelToken,
} from "../../scripts/mock-engine";
import { artifactsOf, resourcesDocument } from "../../scripts/plan";
import { stackValues } from "../support/fixtures";

const TUNNEL = "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared";
const TUNNEL_CONFIG = "cloudflare:index/zeroTrustTunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig";
const DNS = "cloudflare:index/dnsRecord:DnsRecord";
const BUCKET = "cloudflare:index/r2Bucket:R2Bucket";
const LIFECYCLE = "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle";
const TOKEN = "cloudflare:index/accountToken:AccountToken";

const config = resolveConfig("prod", stackValues("prod"));
let run: ProgramRun;
let resources: RecordedResource[];
const ofType = (type: string) => resources.filter((r) => r.type === type);

beforeAll(async () => {
  run = await runProgram("prod", readStackFile("prod"));
  resources = [...run.resources];
});

describe("the prod stack in tunnel mode", () => {
  it("puts the Cloudflare resources under Edge, Storage and Alerts (its Worker), and only components at the top", () => {
    for (const r of resources.filter((x) => !x.parent)) expect(r.type).toMatch(/^vps:/);
    const parents = new Set(resources.filter((r) => /^(cloudflare|random):/.test(r.type)).map((r) => r.parent));
    // The app stack's generated database and Redis passwords are its own.
    expect([...parents].sort()).toEqual([
      "vps:alerts:Alerts::shop-prod-alerts",
      "vps:app:AppStack::shop-prod-app",
      "vps:edge:Edge::shop-prod",
      "vps:storage:Storage::shop-prod",
    ]);
  });

  it("creates one remotely managed tunnel named after app and stack, with a generated secret", () => {
    const [tunnel, ...others] = ofType(TUNNEL);
    expect(others).toEqual([]);
    expect(tunnel.inputs).toMatchObject({
      name: "shop-prod",
      configSrc: "cloudflare",
      accountId: config.cloudflareAccountId,
    });
    expect(tunnel.secretInputs).toContain("tunnelSecret");
    expect(Buffer.from(String(tunnel.rawInputs.tunnelSecret), "base64")).toHaveLength(32);
  });

  it("has ingress rules that match the routes one to one and end with the catch-all", () => {
    const [tunnelConfig] = ofType(TUNNEL_CONFIG);
    const ingresses = (tunnelConfig.inputs.config as { ingresses: Record<string, unknown>[] }).ingresses;
    expect(ingresses.at(-1)).toEqual({ service: "http_status:404" });
    const expected = config.routes.map((r) => ({
      hostname: r.hostname,
      ...(r.path ? { path: pathPrefixRegex(r.path) } : {}),
      service: "http://caddy:80",
    }));
    expect(ingresses.slice(0, -1)).toEqual(expect.arrayContaining(expected));
    expect(ingresses).toHaveLength(expected.length + 1);
  });

  it("configures the tunnel it created", () => {
    const [tunnelConfig] = ofType(TUNNEL_CONFIG);
    expect(tunnelConfig.inputs.tunnelId).toBe("shop-prod-tunnel-id");
    expect(tunnelConfig.options.dependsOn).toContain(`${TUNNEL}::shop-prod-tunnel`);
  });

  it("gives every hostname exactly one DNS record: a proxied CNAME to the tunnel inside the zone", () => {
    const records = ofType(DNS);
    for (const hostname of config.hostnames) {
      const mine = records.filter((r) => r.inputs.name === hostname);
      expect(mine, hostname).toHaveLength(1);
      expect(mine[0].inputs).toMatchObject({
        type: "CNAME",
        content: "shop-prod-tunnel-id.cfargotunnel.com",
        proxied: true,
        ttl: 1,
      });
    }
    expect(records).toHaveLength(config.hostnames.length);
    for (const r of records) expect(String(r.inputs.name)).toMatch(/(^|\.)example\.com$/);
    expect(new Set(records.map((r) => r.inputs.zoneId)).size).toBe(1);
    expect(records[0].inputs.zoneId).toBe(standInHex("zone example.com", 16));
  });

  it("creates no A or AAAA record", () => {
    expect(ofType(DNS).filter((r) => r.inputs.type !== "CNAME")).toEqual([]);
  });

  it("opens neither 80 nor 443 on the Hetzner firewall", () => {
    const [firewall] = ofType("hcloud:index/firewall:Firewall");
    const ports = (firewall.inputs.rules as { port?: string }[]).map((r) => r.port);
    expect(ports).not.toContain("80");
    expect(ports).not.toContain("443");
    expect(ports).toContain("22");
  });

  it("manages HTTPS, TLS 1.2 and HSTS on the zone but leaves its SSL mode alone", () => {
    const settings = ofType("cloudflare:index/zoneSetting:ZoneSetting").map((r) => r.inputs.settingId);
    expect(settings.sort()).toEqual(["always_use_https", "min_tls_version", "security_header"]);
  });

  it("has Caddy send the HSTS policy the zone setting sets, no stricter (no includeSubDomains)", () => {
    const header = ofType("cloudflare:index/zoneSetting:ZoneSetting").find(
      (r) => r.inputs.settingId === "security_header",
    )?.inputs.value as { strict_transport_security: { max_age: number; include_subdomains: boolean } };
    const zone = header.strict_transport_security;
    const caddy = /Strict-Transport-Security "([^"]*)"/.exec(artifactsOf(run).Caddyfile)?.[1];
    expect(caddy).toBe(`max-age=${zone.max_age}${zone.include_subdomains ? "; includeSubDomains" : ""}`);
    expect(zone.include_subdomains).toBe(false);
  });

  it("creates an uploads and a backups bucket named from app and stack, both protected", () => {
    const buckets = ofType(BUCKET);
    expect(buckets.map((b) => b.inputs.name).sort()).toEqual(["shop-prod-backups", "shop-prod-uploads"]);
    for (const b of buckets) expect(b.options.protect, String(b.inputs.name)).toBe(true);
  });

  it("puts lifecycle rules for every backup prefix on the backups bucket", () => {
    const lifecycle = ofType(LIFECYCLE).find((r) => r.inputs.bucketName === "shop-prod-backups");
    const rules = lifecycle?.inputs.rules as { conditions: { prefix: string }; deleteObjectsTransition?: unknown }[];
    for (const { prefix, keepDays } of BACKUP_RETENTION) {
      expect(rules.find((r) => r.conditions.prefix === prefix)?.deleteObjectsTransition).toEqual({
        condition: { type: "Age", maxAge: keepDays * 86_400 },
      });
    }
  });

  it("scopes the backup token to the backups bucket alone, with object read and write", () => {
    const [token] = ofType(TOKEN);
    const [policy, ...more] = token.inputs.policies as {
      effect: string;
      resources: string;
      permissionGroups: unknown[];
    }[];
    expect(more).toEqual([]);
    expect(policy.effect).toBe("allow");
    expect(JSON.parse(policy.resources)).toEqual({
      [`com.cloudflare.edge.r2.bucket.${config.cloudflareAccountId}_default_shop-prod-backups`]: "*",
    });
    expect(policy.permissionGroups).toHaveLength(2);
  });

  it("lets no secret appear in a plaintext input, an output or resources.json", () => {
    const secrets = [
      Buffer.from(standInHex("shop-prod-tunnel-secret", 32), "hex").toString("base64"),
      standInTunnelToken("shop-prod-tunnel-id"),
      "stand-in-api-token-shop-prod-backups-token",
      s3SecretFromTokenValue("stand-in-api-token-shop-prod-backups-token"),
    ];
    for (const r of resources) {
      for (const [key, value] of Object.entries(r.rawInputs)) {
        const text = JSON.stringify(value);
        if (secrets.some((s) => text.includes(s))) expect(r.secretInputs, `${r.name}.${key}`).toContain(key);
      }
    }
    const published = JSON.stringify(resourcesDocument({ ...run, resources }));
    for (const s of secrets) expect(published).not.toContain(s);
    // The check above can fail: the tunnel secret does reach an input, as a secret.
    expect(resources.some((r) => JSON.stringify(r.rawInputs).includes(secrets[0]))).toBe(true);
  });

  it("reports route URLs, tunnel id, bucket names and the S3 endpoint as stack outputs", () => {
    expect(run.outputs).toMatchObject({
      routeUrls: ["https://api.example.com", "https://app.example.com"],
      tunnelId: "shop-prod-tunnel-id",
      uploadsBucket: "shop-prod-uploads",
      backupsBucket: "shop-prod-backups",
      s3Endpoint: `https://${config.cloudflareAccountId}.r2.cloudflarestorage.com`,
    });
    const doc = resourcesDocument({ ...run, resources });
    expect(doc.outputs).toMatchObject({ tunnelId: "shop-prod-tunnel-id", backupsBucket: "shop-prod-backups" });
    expect(doc.resources.map((r) => r.type)).toEqual(
      expect.arrayContaining([TUNNEL, TUNNEL_CONFIG, DNS, BUCKET, LIFECYCLE]),
    );
  });
});

describe("the components' secret outputs", () => {
  it("keep the tunnel token secret, and it is the token of the created tunnel", async () => {
    const edge = new Edge("probe", {
      prefix: "probe",
      accountId: config.cloudflareAccountId,
      domain: config.domain,
      routes: config.routes,
      hostnames: config.hostnames,
      routesInMatchOrder: config.routesInMatchOrder,
      exposure: "tunnel",
      manageZoneSettings: false,
    });
    expect(edge.tunnelToken).toBeDefined();
    expect(await pulumi.isSecret(edge.tunnelToken!)).toBe(true);
    const token = await new Promise((resolve) => pulumi.unsecret(edge.tunnelToken!).apply(resolve));
    expect(token).toBe(standInTunnelToken("probe-tunnel-id"));
  });

  it("keep both backup credentials secret, with the secret key derived from the token", async () => {
    const storage = new Storage("probe", {
      prefix: "probe",
      accountId: config.cloudflareAccountId,
      corsOrigins: ["https://app.example.com"],
      location: "weur",
      jurisdiction: "default",
      backupCredentials: { mode: "token" },
    });
    const { accessKeyId, secretAccessKey } = storage.backupCredentials;
    expect(await pulumi.isSecret(accessKeyId)).toBe(true);
    expect(await pulumi.isSecret(secretAccessKey)).toBe(true);
    const secret = await new Promise((resolve) => pulumi.unsecret(secretAccessKey).apply(resolve));
    expect(secret).toBe(s3SecretFromTokenValue("stand-in-api-token-probe-backups-token"));
  });
});
