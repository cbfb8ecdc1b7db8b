/**
 * Memory: the tier's budgets turned into a limit per compose service, and into the Postgres and
 * Redis settings that must fit inside those limits. Pure functions of the tier and the services.
 */

import { CADDY_SERVICE, CLOUDFLARED_SERVICE, POSTGRES_SERVICE, REDIS_SERVICE } from "../model/services";
import type { Tier } from "../model/tiers";
import type { AppService } from "./app";
import type { Problem } from "./problems";

/** Caddy's part of the proxy budget; cloudflared gets the rest (it needs ~40 MiB at rest). */
const CADDY_SHARE_OF_PROXY = 0.6;
/** A container below this is not worth starting (Node alone needs ~40 MiB). */
const MIN_SERVICE_MB = 32;

export interface MemoryPlan {
  /** Limit in MiB of every long-running container, by compose service (a replica each). */
  readonly limitsMb: Readonly<Record<string, number>>;
  /** What all containers together may use: each limit times its replicas. */
  readonly containersMb: number;
  /** The tier's RAM and what the OS keeps. */
  readonly serverMb: number;
  readonly osMb: number;
}

/**
 * The stack's memory does not fit the server. It carries problems at the config key most to blame
 * (a service's memoryMb, its memoryShare, or webstack:tier), which `resolveConfig` reports as
 * config errors like any other.
 */
export class MemoryBudgetError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(problems.map((p) => `webstack:${p.path.join(".")}: ${p.message}`).join("; "));
    this.name = "MemoryBudgetError";
  }
}

/** What a service that does not fit can do about it. */
const REMEDY = "lower memoryMb or replicas, or choose a larger webstack:tier";

/**
 * Split the tier's budgets into container limits: Postgres, Redis, Caddy and cloudflared get their
 * budgets; the user's services get a fixed `memoryMb` or a share of what is left of the apps' budget
 * (weighted by `memoryShare`, each replica counted). Throws a MemoryBudgetError when the limits and
 * the OS add up to more than the server's RAM, or a service would get too little to start.
 */
export function planMemory(tier: Tier, services: readonly AppService[], withCloudflared: boolean): MemoryPlan {
  const m = tier.memory;
  const caddyMb = withCloudflared ? Math.floor(m.proxyMb * CADDY_SHARE_OF_PROXY) : m.proxyMb;
  const limits: Record<string, number> = {
    [POSTGRES_SERVICE]: m.postgresMb,
    [REDIS_SERVICE]: m.redisMb,
    [CADDY_SERVICE]: caddyMb,
  };
  if (withCloudflared) limits[CLOUDFLARED_SERVICE] = m.proxyMb - caddyMb;

  const fixedMb = services.reduce((sum, s) => sum + (s.memoryMb ?? 0) * s.replicas, 0);
  const shared = services.filter((s) => s.memoryMb === undefined);
  const shares = shared.reduce((sum, s) => sum + s.memoryShare * s.replicas, 0);
  const leftMb = m.appsMb - fixedMb;
  for (const s of services) {
    limits[s.name] = s.memoryMb ?? Math.floor((leftMb * s.memoryShare) / Math.max(shares, 1));
  }
  const budget = `the apps budget of the ${tier.name} tier is ${m.appsMb} MiB of ${tier.memoryMb} MiB`;

  if (fixedMb > m.appsMb) {
    // The service with the most fixed memory is the one to look at first.
    const largest = services.reduce(
      (top, s, i) =>
        (s.memoryMb ?? 0) * s.replicas > (services[top].memoryMb ?? 0) * services[top].replicas ? i : top,
      0,
    );
    throw new MemoryBudgetError([
      {
        path: ["services", largest, "memoryMb"],
        message: `the services' fixed memoryMb add up to ${fixedMb} MiB (replicas counted), more than fits: ${budget}; ${REMEDY}`,
      },
    ]);
  }
  const tooSmall = services.flatMap((s, i): Problem[] =>
    limits[s.name] < MIN_SERVICE_MB
      ? [
          {
            path: ["services", i, s.memoryMb === undefined ? "memoryShare" : "memoryMb"],
            message: `service "${s.name}" would get ${limits[s.name]} MiB, less than the ${MIN_SERVICE_MB} MiB a container needs (${budget}, fixed memoryMb ${fixedMb} MiB); ${REMEDY}`,
          },
        ]
      : [],
  );
  if (tooSmall.length > 0) throw new MemoryBudgetError(tooSmall);
  const containersMb = Object.entries(limits).reduce(
    (sum, [name, mb]) => sum + mb * (services.find((s) => s.name === name)?.replicas ?? 1),
    0,
  );
  if (containersMb + m.osMb > tier.memoryMb) {
    const table = Object.entries(limits)
      .map(([name, mb]) => `${name} ${mb}`)
      .join(", ");
    throw new MemoryBudgetError([
      {
        path: ["tier"],
        message: `container limits (${containersMb} MiB: ${table}) and the OS (${m.osMb} MiB) exceed the ${tier.name} tier's ${tier.memoryMb} MiB; ${REMEDY}`,
      },
    ]);
  }
  return { limitsMb: limits, containersMb, serverMb: tier.memoryMb, osMb: m.osMb };
}

export interface PostgresTuning {
  readonly sharedBuffersMb: number;
  readonly effectiveCacheSizeMb: number;
  readonly workMemMb: number;
  readonly maintenanceWorkMemMb: number;
  readonly maxConnections: number;
  /** /dev/shm of the container (parallel queries); it counts against the container's limit. */
  readonly shmMb: number;
}

/**
 * Postgres settings for its container limit: shared_buffers a quarter of it, the planner told that
 * three quarters can be cached, work_mem sized so that every connection running three sorts at
 * once still fits in what shared_buffers leaves.
 */
export function postgresTuning(postgresMb: number, maxConnectionsOverride?: number): PostgresTuning {
  const maxConnections = maxConnectionsOverride ?? Math.min(200, Math.max(50, Math.floor(postgresMb / 25 / 10) * 10));
  const sharedBuffersMb = Math.floor(postgresMb / 4);
  return {
    sharedBuffersMb,
    effectiveCacheSizeMb: Math.floor((postgresMb * 3) / 4),
    workMemMb: Math.max(1, Math.floor((postgresMb - sharedBuffersMb) / (maxConnections * 3))),
    maintenanceWorkMemMb: Math.max(16, Math.floor(postgresMb / 16)),
    maxConnections,
    shmMb: Math.min(512, Math.max(64, Math.floor(postgresMb / 8))),
  };
}

export interface RedisTuning {
  readonly maxmemoryMb: number;
  readonly evictionPolicy: string;
}

/**
 * Redis' maxmemory inside its container limit: three quarters as a cache; 60% with the append-only
 * file, whose rewrite forks Redis and can copy pages under write load.
 */
export function redisTuning(redisMb: number, appendOnly: boolean, evictionPolicy?: string): RedisTuning {
  return {
    maxmemoryMb: Math.floor(redisMb * (appendOnly ? 0.6 : 0.75)),
    evictionPolicy: evictionPolicy ?? (appendOnly ? "noeviction" : "allkeys-lru"),
  };
}

/** The memory plan of a stack: every container's limit, and the Postgres and Redis settings that fit them. */
export interface StackMemory extends MemoryPlan {
  readonly postgres: PostgresTuning;
  readonly redis: RedisTuning;
}

/** The memory plan of a resolved config; throws a MemoryBudgetError when it does not fit the tier. */
export function stackMemory(config: {
  readonly tier: Tier;
  readonly services: readonly AppService[];
  readonly exposure: "tunnel" | "direct";
  readonly postgres: { readonly maxConnections?: number };
  readonly redis: { readonly appendOnly: boolean; readonly evictionPolicy?: string };
}): StackMemory {
  const plan = planMemory(config.tier, config.services, config.exposure === "tunnel");
  return {
    ...plan,
    postgres: postgresTuning(plan.limitsMb[POSTGRES_SERVICE], config.postgres.maxConnections),
    redis: redisTuning(plan.limitsMb[REDIS_SERVICE], config.redis.appendOnly, config.redis.evictionPolicy),
  };
}
