/**
 * The pure rules of the edge and storage: tunnel ingress from routes, path prefixes as regexes,
 * zone settings per exposure, bucket names, lifecycle rules and R2 credentials.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CATCH_ALL_SERVICE,
  pathPrefixRegex,
  routeUrl,
  tunnelIngressRules,
  zoneSettingsFor,
} from "../../components/edge";
import {
  backupLifecycleRules,
  bucketNames,
  permissionGroupIds,
  R2_OBJECT_PERMISSION_GROUPS,
  r2BucketNameProblem,
  r2BucketResourceKey,
  r2Endpoint,
  s3SecretFromTokenValue,
  uploadsCorsRules,
} from "../../components/storage";
import { routesInMatchOrder } from "../../config/routes";
import type { Route } from "../../config/server";
import { BACKUP_RETENTION } from "../../model/backups";
import { CADDY_INTERNAL_URL } from "../../model/services";

const route = (hostname: string, service: string, path?: string): Route => ({
  hostname,
  service,
  websockets: false,
  ...(path ? { path } : {}),
});

describe("tunnel ingress rules", () => {
  const routes = [
    route("app.example.com", "web"),
    route("api.example.com", "api"),
    route("app.example.com", "api", "/api"),
    route("app.example.com", "admin", "/api/admin"),
  ];
  const rules = tunnelIngressRules(routesInMatchOrder(routes), CADDY_INTERNAL_URL);

  it("has one rule per route plus the catch-all", () => {
    expect(rules).toHaveLength(routes.length + 1);
    const keys = rules.slice(0, -1).map((r) => `${r.hostname} ${r.path ?? ""}`);
    expect(new Set(keys)).toEqual(new Set(routes.map((r) => `${r.hostname} ${r.path ? pathPrefixRegex(r.path) : ""}`)));
  });

  it("ends with the catch-all 404 and nothing else has no hostname", () => {
    expect(rules.at(-1)).toEqual({ service: CATCH_ALL_SERVICE });
    expect(CATCH_ALL_SERVICE).toBe("http_status:404");
    expect(rules.slice(0, -1).every((r) => typeof r.hostname === "string")).toBe(true);
  });

  it("sends every route to the internal Caddy service", () => {
    expect(rules.slice(0, -1).map((r) => r.service)).toEqual(Array(routes.length).fill("http://caddy:80"));
  });

  it("puts longer path prefixes of a hostname before shorter ones and the whole hostname last", () => {
    const app = rules.filter((r) => r.hostname === "app.example.com").map((r) => r.path);
    expect(app).toEqual([pathPrefixRegex("/api/admin"), pathPrefixRegex("/api"), undefined]);
  });

  it("keeps hostnames in the order they first appear", () => {
    const hosts = [...new Set(rules.slice(0, -1).map((r) => r.hostname))];
    expect(hosts).toEqual(["app.example.com", "api.example.com"]);
  });
});

describe("a path prefix as cloudflared's path regex", () => {
  const matches = (prefix: string, path: string) => new RegExp(pathPrefixRegex(prefix)).test(path);

  it("matches the prefix itself and everything below it", () => {
    expect(matches("/api", "/api")).toBe(true);
    expect(matches("/api", "/api/")).toBe(true);
    expect(matches("/api", "/api/users/7")).toBe(true);
  });

  it("matches no sibling that merely starts with the same letters, nor other paths", () => {
    expect(matches("/api", "/apix")).toBe(false);
    expect(matches("/api", "/")).toBe(false);
    expect(matches("/api", "/v1/api")).toBe(false);
  });

  it("treats dots literally", () => {
    expect(matches("/v1.2", "/v1.2/x")).toBe(true);
    expect(matches("/v1.2", "/v1x2/x")).toBe(false);
  });
});

describe("route URLs", () => {
  it("are https URLs of the hostname and path prefix", () => {
    expect(routeUrl(route("app.example.com", "web"))).toBe("https://app.example.com");
    expect(routeUrl(route("app.example.com", "api", "/api"))).toBe("https://app.example.com/api");
  });
});

describe("zone settings", () => {
  const ids = (exposure: "tunnel" | "direct") => zoneSettingsFor(exposure).map((s) => s.settingId);

  it("set SSL to full (strict) only in direct mode", () => {
    expect(zoneSettingsFor("direct").find((s) => s.settingId === "ssl")?.value).toBe("strict");
    expect(ids("tunnel")).not.toContain("ssl");
  });

  it("always redirect to HTTPS, require TLS 1.2 and send HSTS in both modes", () => {
    for (const exposure of ["tunnel", "direct"] as const) {
      const settings = Object.fromEntries(zoneSettingsFor(exposure).map((s) => [s.settingId, s.value]));
      expect(settings.always_use_https).toBe("on");
      expect(settings.min_tls_version).toBe("1.2");
      expect(settings.security_header).toMatchObject({ strict_transport_security: { enabled: true } });
    }
  });

  it("name HSTS fields the API's way (snake_case), so the setting converges", () => {
    const hsts = zoneSettingsFor("tunnel").find((s) => s.settingId === "security_header")?.value;
    expect(Object.keys((hsts as { strict_transport_security: object }).strict_transport_security).sort()).toEqual([
      "enabled",
      "include_subdomains",
      "max_age",
      "nosniff",
      "preload",
    ]);
  });
});

describe("bucket names", () => {
  it("are named from app and stack", () => {
    expect(bucketNames("shop-prod")).toEqual({ uploads: "shop-prod-uploads", backups: "shop-prod-backups" });
  });

  it("stay valid R2 names for the longest app and stack names the config allows", () => {
    const prefix = `${"a".repeat(30)}-${"s".repeat(20)}`;
    for (const name of Object.values(bucketNames(prefix))) expect(r2BucketNameProblem(name)).toBeUndefined();
  });

  it("are judged by R2's rules", () => {
    expect(r2BucketNameProblem("ab")).toMatch("3 to 63");
    expect(r2BucketNameProblem("a".repeat(64))).toMatch("3 to 63");
    expect(r2BucketNameProblem("Shop-prod")).toMatch("lowercase");
    expect(r2BucketNameProblem("shop_prod")).toMatch("lowercase");
    expect(r2BucketNameProblem("-shop")).toMatch("begin and end");
    expect(r2BucketNameProblem("shop-prod-backups")).toBeUndefined();
  });
});

describe("backup lifecycle rules", () => {
  const rules = backupLifecycleRules();

  it("expire every backup prefix after its retention", () => {
    for (const { prefix, keepDays } of BACKUP_RETENTION) {
      const rule = rules.find((r) => (r.conditions as { prefix: string }).prefix === prefix);
      expect(rule, prefix).toBeDefined();
      expect(rule?.enabled).toBe(true);
      expect(rule?.deleteObjectsTransition).toEqual({ condition: { type: "Age", maxAge: keepDays * 86_400 } });
    }
  });

  it("keep daily backups 7 days, weekly 5 weeks and monthly 12 months", () => {
    const days = Object.fromEntries(BACKUP_RETENTION.map((r) => [r.prefix, r.keepDays]));
    expect(days).toEqual({ "daily/": 7, "weekly/": 35, "monthly/": 365 });
  });

  it("abort incomplete multipart uploads anywhere in the bucket", () => {
    const abort = rules.find((r) => r.abortMultipartUploadsTransition !== undefined);
    expect(abort?.conditions).toEqual({ prefix: "" });
    expect(abort?.deleteObjectsTransition).toBeUndefined();
  });

  it("delete nothing outside the backup prefixes", () => {
    const deleting = rules.filter((r) => r.deleteObjectsTransition !== undefined);
    expect(deleting.map((r) => (r.conditions as { prefix: string }).prefix).sort()).toEqual(
      BACKUP_RETENTION.map((r) => r.prefix).sort(),
    );
  });

  it("have unique ids", () => {
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length);
  });
});

describe("uploads CORS", () => {
  it("allows exactly the app's origins to read and upload, exposing ETag for multipart uploads", () => {
    const [rule] = uploadsCorsRules(["https://app.example.com"]);
    expect(rule.allowed).toMatchObject({
      origins: ["https://app.example.com"],
      methods: ["GET", "HEAD", "PUT", "POST"],
    });
    expect(rule.exposeHeaders).toContain("ETag");
  });
});

describe("R2 access", () => {
  const account = "0123456789abcdef0123456789abcdef";

  it("uses the account's S3 endpoint, and the EU one in the EU jurisdiction", () => {
    expect(r2Endpoint(account, "default")).toBe(`https://${account}.r2.cloudflarestorage.com`);
    expect(r2Endpoint(account, "eu")).toBe(`https://${account}.eu.r2.cloudflarestorage.com`);
  });

  it("scopes a token to one bucket by account, jurisdiction and bucket name", () => {
    expect(r2BucketResourceKey(account, "default", "shop-prod-backups")).toBe(
      `com.cloudflare.edge.r2.bucket.${account}_default_shop-prod-backups`,
    );
  });

  it("derives the S3 secret access key as the SHA-256 hex of the token value", () => {
    const secret = s3SecretFromTokenValue("token-value");
    expect(secret).toBe(createHash("sha256").update("token-value").digest("hex"));
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
  });

  it("picks the R2 object read and write permission groups by name", () => {
    const groups = [
      { id: "w", name: "Workers R2 Storage Bucket Item Write" },
      { id: "x", name: "Zone Read" },
      { id: "r", name: "Workers R2 Storage Bucket Item Read" },
    ];
    expect(permissionGroupIds(groups)).toEqual(["r", "w"]);
    expect(R2_OBJECT_PERMISSION_GROUPS).toHaveLength(2);
  });

  it("explains what to do when the account lists no such permission group", () => {
    expect(() => permissionGroupIds([{ id: "x", name: "Zone Read" }])).toThrow(/backupCredentials.*config/);
  });
});
