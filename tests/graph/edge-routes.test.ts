/**
 * The staging stack with a richer route list (the zone apex, path prefixes, a hostname served by
 * several routes, a hostname two labels deep that a listed certificate covers) under mocks: ingress
 * and DNS still follow the routes exactly.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { pathPrefixRegex } from "../../components/edge";
import { type RecordedResource, runProgram } from "../../scripts/mock-engine";
import { withChanges } from "../support/fixtures";

const ROUTES = [
  { hostname: "staging.example.com", service: "web" },
  { hostname: "staging.example.com", path: "/api", service: "api", websockets: true },
  { hostname: "staging.example.com", path: "/api/uploads", service: "api", maxBodyMb: 200 },
  { hostname: "admin.staging.example.com", service: "web" },
];

let resources: RecordedResource[];
let outputs: Record<string, unknown>;

beforeAll(async () => {
  const run = await runProgram(
    "staging",
    withChanges("staging", { routes: ROUTES, certifiedHostnames: ["*.staging.example.com"] }),
  );
  resources = [...run.resources];
  outputs = run.outputs;
});

describe("a stack with path routes", () => {
  it("has one ingress rule per route, in first-match order, then the catch-all", () => {
    const config = resources.find((r) => r.type.endsWith(":ZeroTrustTunnelCloudflaredConfig"));
    const ingresses = (config!.inputs.config as { ingresses: unknown[] }).ingresses;
    expect(ingresses).toEqual([
      { hostname: "staging.example.com", path: pathPrefixRegex("/api/uploads"), service: "http://caddy:80" },
      { hostname: "staging.example.com", path: pathPrefixRegex("/api"), service: "http://caddy:80" },
      { hostname: "staging.example.com", service: "http://caddy:80" },
      { hostname: "admin.staging.example.com", service: "http://caddy:80" },
      { service: "http_status:404" },
    ]);
  });

  it("has one DNS record per distinct hostname, however many routes share it", () => {
    const names = resources.filter((r) => r.type === "cloudflare:index/dnsRecord:DnsRecord").map((r) => r.inputs.name);
    expect(names.sort()).toEqual(["admin.staging.example.com", "staging.example.com"]);
  });

  it("reports a URL for every route", () => {
    expect(outputs.routeUrls).toEqual([
      "https://staging.example.com",
      "https://staging.example.com/api",
      "https://staging.example.com/api/uploads",
      "https://admin.staging.example.com",
    ]);
  });

  it("allows the uploads bucket's CORS for every hostname's https origin", () => {
    const cors = resources.find((r) => r.type === "cloudflare:index/r2BucketCors:R2BucketCors");
    const [rule] = cors!.inputs.rules as { allowed: { origins: string[] } }[];
    expect(rule.allowed.origins).toEqual(["https://staging.example.com", "https://admin.staging.example.com"]);
  });

  it("leaves the shared zone's settings to prod", () => {
    expect(resources.filter((r) => r.type === "cloudflare:index/zoneSetting:ZoneSetting")).toEqual([]);
  });
});
