import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { quoteDotenvValue, renderDotenv } from "../../compose/dotenv";
import { renderStackFiles } from "../../compose/stack-files";
import { planMemory, postgresTuning, redisTuning } from "../../config/memory";
import { ConfigError } from "../../config/problems";
import { resolveConfig, type StackConfig } from "../../config/resolve";
import { TIER_NAMES, TIERS } from "../../model/tiers";
import { exampleNames, exampleValues, resolveExample } from "../support/stack-configs";

// biome-ignore lint/suspicious/noExplicitAny: parsed compose YAML is free-form
type Compose = { services: Record<string, any>; networks: Record<string, any> };

function composeOf(config: StackConfig): Compose {
  return parse(renderStackFiles(config, "/srv/data").files["compose.yaml"]) as Compose;
}

const mb = (limit: string) => Number.parseInt(limit, 10);

describe("compose renderer", () => {
  it("publishes nothing in tunnel mode", () => {
    const { services } = composeOf(resolveExample("nestjs-expo"));
    for (const [name, s] of Object.entries(services)) expect(s.ports, name).toBeUndefined();
    expect(services.cloudflared.environment.TUNNEL_TOKEN).toMatch(/^\$\{TUNNEL_TOKEN:\?/);
  });

  it("publishes only Caddy's 80 and 443 in direct mode, with no cloudflared", () => {
    const { services } = composeOf(resolveExample("migrations-pinned-digests"));
    const published = Object.entries(services).filter(([, s]) => s.ports);
    expect(published.map(([n]) => n)).toEqual(["caddy"]);
    expect(services.caddy.ports).toEqual(["80:80", "443:443", "443:443/udp"]);
    expect(services.cloudflared).toBeUndefined();
  });

  it("keeps Postgres and Redis on the internal network only", () => {
    const { services, networks } = composeOf(resolveExample("express-socketio-nextjs"));
    expect(networks.data).toEqual({ internal: true });
    expect(services.postgres.networks).toEqual(["data"]);
    expect(services.redis.networks).toEqual(["data"]);
    expect(services.caddy.networks).toEqual(["edge"]);
  });

  it("gives every service a health check, a memory limit, log rotation and a restart policy", () => {
    for (const name of exampleNames()) {
      const { services } = composeOf(resolveExample(name));
      for (const [service, s] of Object.entries(services)) {
        // The migration is a one-off: its exit status is its health.
        if (service !== "migrate") expect(s.healthcheck?.test, `${name} ${service}`).toBeDefined();
        expect(s.mem_limit, `${name} ${service}`).toMatch(/^\d+m$/);
        expect(s.logging.options["max-size"]).toBe("10m");
        expect(s.restart).toBe(service === "migrate" ? "no" : "unless-stopped");
      }
    }
  });

  it("starts app services only once Postgres and Redis are healthy, with an init process", () => {
    const { services } = composeOf(resolveExample("fastify-bullmq-nextjs"));
    for (const name of ["api", "worker", "web"]) {
      expect(services[name].depends_on).toEqual({
        postgres: { condition: "service_healthy" },
        redis: { condition: "service_healthy" },
      });
      expect(services[name].init).toBe(true);
    }
    expect(services.worker.deploy).toEqual({ replicas: 2 });
  });

  it("never writes a secret value, only references to .env", () => {
    const files = renderStackFiles(resolveExample("express-socketio-nextjs"), "/srv/data").files;
    const { services } = parse(files["compose.yaml"]) as Compose;
    expect(services.backend.environment.SESSION_SECRET).toBe(`\${SESSION_SECRET:?SESSION_SECRET is missing from .env}`);
    expect(services.backend.environment.DATABASE_URL).toBe(`postgres://app:\${POSTGRES_PASSWORD}@postgres:5432/app`);
    expect(services.redis.command.join(" ")).not.toMatch(/requirepass [^%]/);
  });

  it("runs the migration as a one-off profile with the source service's image and secrets", () => {
    const { services } = composeOf(resolveExample("migrations-pinned-digests"));
    expect(services.migrate.profiles).toEqual(["migrate"]);
    expect(services.migrate.image).toBe(services.api.image);
    expect(services.migrate.command).toEqual(["ledger", "migrate", "--wait-for-lock"]);
    expect(services.migrate.environment.JWT_SECRET).toMatch(/^\$\{JWT_SECRET/);
  });

  it("keeps a cluster before PostgreSQL 18 in /var/lib/postgresql/data, and the apps' role apart from the superuser", () => {
    const postgres = composeOf(resolveExample("nestjs-expo")).services.postgres;
    expect(postgres.volumes).toContain("/srv/data/postgres:/var/lib/postgresql/data");
    expect(postgres.environment).toMatchObject({ POSTGRES_USER: "postgres", POSTGRES_APP_USER: "app" });
    expect(postgres.environment).not.toHaveProperty("PGDATA");
  });

  it("keeps a PostgreSQL 18 cluster in its major's directory under one mount at /var/lib/postgresql", () => {
    const config = resolveExample("nestjs-expo");
    const on18 = { ...config, postgres: { ...config.postgres, image: "imresamu/postgis:18-3.6", major: 18 } };
    const postgres = composeOf(on18).services.postgres;
    expect(postgres.volumes).toContain("/srv/data/postgresql:/var/lib/postgresql");
    expect(postgres.volumes).not.toContain("/srv/data/postgres:/var/lib/postgresql/data");
    expect(postgres.environment).toMatchObject({ PGDATA: "/var/lib/postgresql/18/docker" });
  });

  it("tunes Redis for a queue: append-only and never evicting", () => {
    const { services } = composeOf(resolveExample("fastify-bullmq-nextjs"));
    expect(services.redis.command[2]).toContain("--appendonly yes");
    expect(services.redis.command[2]).toContain("--maxmemory-policy noeviction");
  });

  it("recreates Caddy when only the Caddyfile changes", () => {
    const values = exampleValues("nestjs-expo");
    const routes = values.routes as Record<string, unknown>[];
    const before = composeOf(resolveConfig("example", values)).services.caddy.labels;
    // The routes change through the config, so every value derived from them follows.
    const changed = { ...values, routes: [{ ...routes[0], maxBodyMb: 50 }, ...routes.slice(1)] };
    const after = composeOf(resolveConfig("example", changed)).services.caddy.labels;
    expect(after["webstack.caddyfile-sha256"]).not.toBe(before["webstack.caddyfile-sha256"]);
  });

  it("checks Postgres and Redis every 5 s and the other containers every 10 s, each within 5 s, by default", () => {
    const { services } = composeOf(resolveExample("nestjs-expo"));
    expect(services.postgres.healthcheck).toMatchObject({ interval: "5s", timeout: "5s", retries: 5 });
    expect(services.redis.healthcheck.interval).toBe("5s");
    for (const name of ["api", "caddy", "cloudflared"]) {
      expect(services[name].healthcheck, name).toMatchObject({ interval: "10s", timeout: "5s", retries: 5 });
    }
  });

  it("gives every container the health check timing of the config, keeping each start period", () => {
    const config = resolveExample("nestjs-expo");
    const defaults = composeOf(config).services;
    const timed = composeOf({ ...config, healthChecks: { intervalSeconds: 60, timeoutSeconds: 90, retries: 3 } });
    for (const [name, s] of Object.entries(timed.services)) {
      if (name === "migrate") continue;
      expect(s.healthcheck, name).toMatchObject({ interval: "60s", timeout: "90s", retries: 3 });
      expect(s.healthcheck.start_period, name).toBe(defaults[name].healthcheck.start_period);
    }
  });

  it("keeps the stack's own value for each health check setting the config leaves out", () => {
    const config = resolveExample("nestjs-expo");
    const { services } = composeOf({ ...config, healthChecks: { timeoutSeconds: 30 } });
    expect(services.postgres.healthcheck).toMatchObject({ interval: "5s", timeout: "30s", retries: 5 });
    expect(services.caddy.healthcheck).toMatchObject({ interval: "10s", timeout: "30s", retries: 5 });
  });

  it("renders byte-identical files and the same content hash for the same input", () => {
    const a = renderStackFiles(resolveExample("fastify-bullmq-nextjs"), "/srv/data");
    const b = renderStackFiles(resolveExample("fastify-bullmq-nextjs"), "/srv/data");
    expect(a.files).toEqual(b.files);
    expect(a.contentHash).toBe(b.contentHash);
  });
});

describe("memory budgets", () => {
  it("adds up, with the OS, to at most the server's RAM on every tier", () => {
    for (const tier of TIER_NAMES) {
      const m = TIERS[tier].memory;
      expect(m.osMb + m.postgresMb + m.redisMb + m.proxyMb + m.appsMb, tier).toBe(TIERS[tier].memoryMb);
      const config = resolveExample("fastify-bullmq-nextjs");
      const plan = planMemory(TIERS[tier], config.services, true);
      expect(plan.containersMb + plan.osMb, tier).toBeLessThanOrEqual(TIERS[tier].memoryMb);
    }
  });

  it("splits the apps' budget by memory share, each replica counted", () => {
    const config = resolveExample("fastify-bullmq-nextjs");
    const { limitsMb } = planMemory(TIERS.medium, config.services, true);
    // shares: api 2, worker 1 x 2 replicas, web 2 → 6 parts of 3840 MiB
    expect(limitsMb).toMatchObject({ api: 1280, worker: 640, web: 1280 });
  });

  it("limits each container to what the compose file says", () => {
    const { services } = composeOf(resolveExample("nestjs-expo"));
    expect(mb(services.postgres.mem_limit)).toBe(TIERS.small.memory.postgresMb);
    expect(mb(services.redis.mem_limit)).toBe(TIERS.small.memory.redisMb);
    expect(mb(services.caddy.mem_limit) + mb(services.cloudflared.mem_limit)).toBe(TIERS.small.memory.proxyMb);
  });

  it("refuses, as a config error at the largest memoryMb, fixed memory that does not fit the tier", () => {
    const greedy = () => resolveConfig("example", { ...exampleValues("migrations-pinned-digests"), tier: "small" });
    expect(greedy).toThrow(ConfigError);
    expect(greedy).toThrow(
      /webstack:services\[\d\]\.memoryMb \(got \d+\): the services' fixed memoryMb add up to 2048 MiB \(replicas counted\), more than fits: the apps budget of the small tier is 1792 MiB of 4096 MiB; .*larger webstack:tier/,
    );
  });

  it("names each service that would get less than a container needs, at its memoryShare", () => {
    const base = exampleValues("migrations-pinned-digests");
    const services: Record<string, unknown>[] = (base.services as Record<string, unknown>[]).map((s) => ({
      ...s,
      memoryMb: undefined,
    }));
    services[0] = { ...services[0], memoryMb: 1780 };
    const attempt = () => resolveConfig("example", { ...base, tier: "small", services });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      /webstack:services\[1\]\.memoryShare \(got \d+\): service "worker" would get \d+ MiB, less than the 32 MiB/,
    );
  });

  it("tunes Postgres to its container: a quarter for shared buffers, work_mem that fits every connection", () => {
    const t = postgresTuning(TIERS.small.memory.postgresMb);
    expect(t).toMatchObject({ sharedBuffersMb: 256, effectiveCacheSizeMb: 768, maxConnections: 50, workMemMb: 5 });
    expect(t.workMemMb * t.maxConnections * 3 + t.sharedBuffersMb).toBeLessThanOrEqual(TIERS.small.memory.postgresMb);
  });

  it("keeps Redis' maxmemory well inside its container, lower with the append-only file", () => {
    expect(redisTuning(256, false)).toEqual({ maxmemoryMb: 192, evictionPolicy: "allkeys-lru" });
    expect(redisTuning(256, true)).toEqual({ maxmemoryMb: 153, evictionPolicy: "noeviction" });
  });
});

describe(".env writer", () => {
  it("single-quotes plain values and double-quotes ones with quotes or newlines", () => {
    expect(quoteDotenvValue("abc$def")).toBe("'abc$def'");
    expect(quoteDotenvValue("it's\n$x")).toBe('"it\'s\\n\\$x"');
  });

  it("writes sorted NAME=value lines and refuses a bad name", () => {
    expect(renderDotenv({ B: "2", A: "1" }).split("\n").slice(1)).toEqual(["A='1'", "B='2'", ""]);
    expect(() => renderDotenv({ "bad-name": "x" })).toThrow(/bad-name/);
  });
});
