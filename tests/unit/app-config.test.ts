import { describe, expect, it } from "vitest";
import { appSecretProblems } from "../../config/app";
import { ConfigError } from "../../config/problems";
import { resolveConfig } from "../../config/resolve";
import { exampleNames, exampleValues, resolveExample, stackFileValues } from "../support/stack-configs";

const prod = () => stackFileValues("prod");

function problemsOf(values: Record<string, unknown>): string {
  try {
    resolveConfig("prod", values);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("the config was accepted");
}

describe("app stack config", () => {
  it("resolves every example config", () => {
    for (const name of exampleNames()) expect(() => resolveExample(name), name).not.toThrow();
  });

  it("fills Postgres, Redis and proxy defaults with multi-arch images", () => {
    const { postgres, redis, proxy } = resolveConfig("prod", { ...prod(), postgres: undefined, redis: undefined });
    expect(postgres).toEqual({
      image: "imresamu/postgis:17-3.5",
      database: "app",
      user: "app",
      extensions: [],
      major: 17,
    });
    expect(redis).toEqual({ image: "redis:7.4", appendOnly: false });
    expect(proxy.caddyImage).toMatch(/^caddy:/);
  });

  it("waits 300 s for a deploy and keeps the stack's health check timing unless told otherwise", () => {
    const { deployWaitSeconds, healthChecks } = resolveConfig("prod", prod());
    expect(deployWaitSeconds).toBe(300);
    expect(healthChecks).toEqual({});
  });

  it("refuses health check timing that is not a whole number of seconds in range, naming the key", () => {
    const values = { ...prod(), healthChecks: { intervalSeconds: 0.5, timeoutSeconds: 0, retries: 500 } };
    const message = problemsOf(values);
    expect(message).toMatch(/webstack:healthChecks\.intervalSeconds \(got 0\.5\): must be a whole number of seconds/);
    expect(message).toMatch(/webstack:healthChecks\.timeoutSeconds \(got 0\): must be at least 1 \(seconds\)/);
    expect(message).toMatch(/webstack:healthChecks\.retries \(got 500\): must be at most 100 \(checks\)/);
  });

  it("names a misspelled health check setting with its path and the settings there are", () => {
    expect(problemsOf({ ...prod(), healthChecks: { intervalSecond: 30 } })).toMatch(
      "webstack:healthChecks.intervalSecond: unknown key (did you mean webstack:healthChecks.intervalSeconds?); known keys: intervalSeconds, timeoutSeconds, retries",
    );
  });

  it("names a misspelled key in a service's health check with the keys a health check takes", () => {
    const services = prod().services as Record<string, unknown>[];
    const broken = [{ ...services[0], healthCheck: { path: "/health", pth: "/x" } }, ...services.slice(1)];
    expect(problemsOf({ ...prod(), services: broken })).toMatch(
      "webstack:services[0].healthCheck.pth: unknown key (did you mean webstack:services[0].healthCheck.path?); known keys: path, command",
    );
  });

  it("refuses a deploy wait shorter than three health check intervals", () => {
    const values = { ...prod(), healthChecks: { intervalSeconds: 120 }, deployWaitSeconds: 300 };
    expect(problemsOf(values)).toMatch(
      /webstack:deployWaitSeconds \(got 300\): must last at least three health check intervals \(healthChecks\.intervalSeconds is 120\), so at least 360 \(seconds\)/,
    );
  });

  it("refuses a route to a service that does not exist", () => {
    const values = { ...prod(), routes: [{ hostname: "api.example.com", service: "backend" }] };
    expect(problemsOf(values)).toMatch(
      /webstack:routes\[0\]\.service \(got "backend"\): no service "backend"; services: api, worker, web/,
    );
  });

  it("refuses a route to a worker, which has no port", () => {
    const values = { ...prod(), routes: [{ hostname: "api.example.com", service: "worker" }] };
    expect(problemsOf(values)).toMatch(/service "worker" has no port/);
  });

  it("refuses an image pinned to latest or not pinned at all", () => {
    const services = exampleValues("nestjs-expo").services as Record<string, unknown>[];
    const values = {
      ...exampleValues("nestjs-expo"),
      services: [
        { ...services[0], image: "ghcr.io/fieldmap/api:latest" },
        { ...services[1], image: "nginx" },
      ],
    };
    const message = problemsOf(values);
    expect(message).toMatch(/webstack:services\[0\]\.image \(got "ghcr.io\/fieldmap\/api:latest"\): must be pinned/);
    expect(message).toMatch(/webstack:services\[1\]\.image \(got "nginx"\): must be pinned/);
  });

  it("accepts an image pinned by digest", () => {
    const config = resolveExample("migrations-pinned-digests");
    expect(config.services[0].image).toMatch(/@sha256:[0-9a-f]{64}$/);
  });

  it("refuses a user service named like one of the stack's own", () => {
    const services = prod().services as Record<string, unknown>[];
    expect(problemsOf({ ...prod(), services: [...services, { ...services[1], name: "redis" }] })).toMatch(
      /"redis" is a service of the stack itself/,
    );
  });

  it("refuses the administrator's name or a reserved name for the apps' database role", () => {
    const postgres = { image: "imresamu/postgis:17-3.5", database: "app" };
    expect(problemsOf({ ...prod(), postgres: { ...postgres, user: "postgres" } })).toMatch(
      /webstack:postgres\.user \(got "postgres"\): must not be "postgres": that is the stack's administrator role/,
    );
    expect(problemsOf({ ...prod(), postgres: { ...postgres, user: "pg_app" } })).toMatch(
      /webstack:postgres\.user \(got "pg_app"\): must not start with "pg_"/,
    );
  });

  it("takes PostgreSQL's major version from the image's tag, or from majorVersion when the tag does not say", () => {
    expect(resolveConfig("prod", prod()).postgres.major).toBe(17);
    const on18 = { image: "imresamu/postgis:18-3.6" };
    expect(resolveConfig("prod", { ...prod(), postgres: on18 }).postgres.major).toBe(18);
    const byDigest = { image: `imresamu/postgis@sha256:${"a".repeat(64)}`, majorVersion: 18 };
    expect(resolveConfig("prod", { ...prod(), postgres: byDigest }).postgres.major).toBe(18);
  });

  it("asks for majorVersion when the image's tag does not say it, and refuses one the tag contradicts", () => {
    const byDigest = { image: `imresamu/postgis@sha256:${"a".repeat(64)}` };
    expect(problemsOf({ ...prod(), postgres: byDigest })).toMatch(
      /webstack:postgres\.majorVersion: the image's tag does not say its PostgreSQL major version .*: set it, e\.g\. 17/,
    );
    expect(problemsOf({ ...prod(), postgres: { image: "imresamu/postgis:18-3.6", majorVersion: 17 } })).toMatch(
      /webstack:postgres\.majorVersion \(got 17\): is 17, but the image's tag names 18/,
    );
  });

  it("refuses an extension name that is not one", () => {
    const postgres = { image: "imresamu/postgis:17-3.5", extensions: ["postgis_raster", "x; DROP TABLE t"] };
    expect(problemsOf({ ...prod(), postgres })).toMatch(
      /webstack:postgres\.extensions\[1\] \(got "x; DROP TABLE t"\): must be an extension name such as postgis_raster/,
    );
  });

  it("refuses replicas of a routed service", () => {
    const services = prod().services as Record<string, unknown>[];
    const values = { ...prod(), services: [{ ...services[0], replicas: 2 }, ...services.slice(1)] };
    expect(problemsOf(values)).toMatch(/webstack:services\[0\]\.replicas .*only workers/);
  });

  it("refuses a service with a port but no health check", () => {
    const services = prod().services as Record<string, unknown>[];
    const { healthCheck, ...api } = services[0];
    void healthCheck;
    expect(problemsOf({ ...prod(), services: [api, ...services.slice(1)] })).toMatch(/needs a health check/);
  });

  it("refuses an environment variable the stack sets itself", () => {
    const services = prod().services as Record<string, unknown>[];
    const values = {
      ...prod(),
      services: [{ ...services[0], environment: { DATABASE_URL: "x" } }, ...services.slice(1)],
    };
    expect(problemsOf(values)).toMatch(/webstack:services\[0\]\.environment\.DATABASE_URL .*is set by the stack/);
  });

  it("refuses a migration of a service that does not exist", () => {
    expect(problemsOf({ ...prod(), migration: { service: "db", command: ["migrate"] } })).toMatch(
      /webstack:migration\.service \(got "db"\): no service "db"/,
    );
  });

  it("asks for each missing app secret with the command that sets it", () => {
    const config = resolveConfig("prod", prod());
    expect(appSecretProblems(config.services, {}, () => true)).toEqual([
      "secrets:JWT_SECRET: is required (a service lists it in secrets); set it with: pulumi config set --secret secrets:JWT_SECRET <value>",
    ]);
  });

  it("refuses an app secret stored in plaintext", () => {
    const config = resolveConfig("prod", prod());
    expect(appSecretProblems(config.services, { "secrets:JWT_SECRET": "x" }, () => false)[0]).toMatch(
      /secrets:JWT_SECRET: is stored in plaintext/,
    );
  });
});
