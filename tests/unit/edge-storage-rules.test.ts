/**
 * The pure rules of the edge and storage: tunnel ingress from routes, path prefixes as regexes,
 * zone settings per exposure, bucket names, lifecycle rules and R2 credentials.
 */
import { describe, expect, it } from "vitest";
import { pathPrefixRegex, routeUrl, tunnelIngressRules, zoneSettingsFor } from "../../components/edge";
import {
  backupLifecycleRules,
  bucketNames,
  permissionGroupIds,
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
    expect(rules.at(-1)).toEqual({ service: "http_status:404" });
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

  it("expire daily backups after 7 days, weekly after 5 weeks and monthly after a year", () => {
    const days = (prefix: string) => {
      const rule = rules.find((r) => (r.conditions as { prefix: string }).prefix === prefix);
      expect(rule?.enabled, prefix).toBe(true);
      const transition = rule?.deleteObjectsTransition as { condition: { type: string; maxAge: number } } | undefined;
      expect(transition?.condition.type, prefix).toBe("Age");
      return (transition?.condition.maxAge ?? 0) / 86_400;
    };
    expect({ daily: days("daily/"), weekly: days("weekly/"), monthly: days("monthly/") }).toEqual({
      daily: 7,
      weekly: 35,
      monthly: 365,
    });
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

  it("derives the S3 secret access key as the SHA-256 hex of the token value, as Cloudflare does", () => {
    // sha256sum of the bytes "token-value" (a known answer, not the same call again).
    expect(s3SecretFromTokenValue("token-value")).toBe(
      "e6c02a5742ea9d4de588eb9b9de7bed43dc17011552186bed3e98b2c5958ff4a",
    );
  });

  it("picks the R2 object read and write permission groups by name", () => {
    const groups = [
      { id: "w", name: "Workers R2 Storage Bucket Item Write" },
      { id: "x", name: "Zone Read" },
      { id: "r", name: "Workers R2 Storage Bucket Item Read" },
    ];
    expect(permissionGroupIds(groups)).toEqual(["r", "w"]);
  });

  it("explains what to do when the account lists no such permission group", () => {
    expect(() => permissionGroupIds([{ id: "x", name: "Zone Read" }])).toThrow(/backupCredentials.*config/);
  });
});
