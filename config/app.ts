/**
 * The app stack's config keys: the user's services, the migration step, the uploads path, and the
 * Postgres, Redis and proxy images. Spread into `stackConfigSchema` next to the server's keys.
 *
 * Defaults are multi-arch images that run on ARM64: `postgis/postgis` is amd64-only, so Postgres
 * with PostGIS comes from `imresamu/postgis` (same layout and entrypoint as the official image).
 */
import { z } from "zod";
import { DEFAULT_IMAGES } from "../model/default-images";
import { PORT_ENV_NAME, STACK_DOTENV_KEYS, STACK_ENV_NAMES } from "../model/env";
import { majorOfImageTag } from "../model/postgres";
import { POSTGRES_ADMIN_ROLE, RESERVED_SERVICE_NAMES } from "../model/services";
import { wholeNumber } from "./checks";
import { APP_SECRET_NAMESPACE } from "./namespaces";
import type { CrossCheck, Problem } from "./problems";

const SERVICE_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * An image reference pinned by tag or digest: `ghcr.io/acme/api:1.4.2` or `ghcr.io/acme/api@sha256:…`.
 * `latest` and untagged references are refused: the deploy pulls only missing images, so a
 * moving tag would never update (and could not be rolled back).
 */
const imageSchema = z.string().superRefine((value, ctx) => {
  const match =
    /^([a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?\/)?[a-z0-9]+([._/-][a-z0-9]+)*(:([\w][\w.-]{0,127}))?(@sha256:[a-f0-9]{64})?$/.exec(
      value,
    );
  if (!match) {
    ctx.addIssue({ code: "custom", message: "is not an image reference such as ghcr.io/acme/api:1.4.2" });
    return;
  }
  const tag = match[6];
  const digest = match[7];
  if (!digest && (!tag || tag === "latest")) {
    ctx.addIssue({
      code: "custom",
      message: "must be pinned by a version tag or a digest (image:1.4.2 or image@sha256:…), not latest or untagged",
    });
  }
});

/** How long a deploy waits for the stack to be healthy unless `deployWaitSeconds` says otherwise. */
export const DEFAULT_DEPLOY_WAIT_SECONDS = 300;

const commandSchema = z.array(z.string().min(1)).min(1, { message: "must list the program and its arguments" });

/** How Docker decides that a service is healthy. */
const healthCheckSchema = z.union(
  [
    z.strictObject({
      /** HTTP path answered with 2xx when healthy, fetched inside the container on the service's port. */
      path: z.string().regex(/^\/[^\s]*$/, { message: 'must be a path such as "/health"' }),
    }),
    z.strictObject({
      /** Command run inside the container; exit 0 means healthy. */
      command: commandSchema,
    }),
  ],
  { message: 'must be {path: "/health"} or {command: ["program", "arg"]}' },
);

/** One of the user's services: an API, a worker or a web front end. */
export const appServiceSchema = z.strictObject({
  /** Compose service name, also the hostname other services reach it by. */
  name: z.string().regex(SERVICE_NAME, { message: "must be a service name (lowercase, a-z0-9-, at most 31)" }),
  /** Image pinned by tag or digest. @example "ghcr.io/acme/api:1.4.2" */
  image: imageSchema,
  /** Command overriding the image's, as a list. */
  command: commandSchema.optional(),
  /** Port the service listens on inside the network; absent for workers. */
  port: z.int().min(1).max(65535).optional(),
  /**
   * Health check: an HTTP path (needs `port`; fetched with wget or curl inside the container) or a
   * command. Omitted: a worker is healthy while it runs; a service with a port must have one.
   */
  healthCheck: healthCheckSchema.optional(),
  /** Plain environment variables (no secrets: those go in `secrets`). */
  environment: z
    .record(
      z.string().regex(ENV_NAME, { message: "environment variable names are A-Z, 0-9 and _" }),
      z.union([z.string(), z.number(), z.boolean()]).transform(String),
    )
    .default({}),
  /**
   * Names of app secrets this service receives as environment variables, each set with
   * `pulumi config set --secret secrets:<NAME> <value>`.
   */
  secrets: z
    .array(z.string().regex(ENV_NAME, { message: "secret names are environment variable names (A-Z, 0-9, _)" }))
    .default([]),
  /** Weight of this service in the tier's app memory (each replica counts once). @default 1 */
  memoryShare: z.int().min(1).max(100).default(1),
  /** Fixed memory limit in MiB instead of a share of the tier's app memory. */
  memoryMb: z.int().min(32).max(65536).optional(),
  /** Copies of a worker (services without a port); a routed service runs once. @default 1 */
  replicas: z.int().min(1).max(16).default(1),
  /** Run with a read-only root filesystem (a tmpfs on /tmp). @default false */
  readOnly: z.boolean().default(false),
  /** User (`uid:gid`) to run as instead of the image's. */
  user: z
    .string()
    .regex(/^[0-9]+(:[0-9]+)?$/, { message: 'must be "uid" or "uid:gid"' })
    .optional(),
});
export type AppService = z.output<typeof appServiceSchema>;

export const appConfigFields = {
  /**
   * The user's services. Every route's service must be one of these and have a port.
   * @example [{ name: "api", image: "ghcr.io/acme/api:1.4.2", port: 3000, healthCheck: { path: "/health" } }]
   */
  services: z.array(appServiceSchema).min(1, { message: "must list at least one service" }),
  /** Database migrations, run once per deploy before the new app containers start. */
  migration: z
    .strictObject({
      /** Service whose image, environment and secrets the migration uses. */
      service: z.string().regex(SERVICE_NAME, { message: "must be a service name" }),
      /** The migration command. @example ["npm", "run", "migrate"] */
      command: commandSchema,
    })
    .optional(),
  /** Files users upload, kept on the data volume and served by Caddy straight from it. */
  uploads: z
    .strictObject({
      /** URL path prefix Caddy serves the files under, on every hostname. @default "/uploads" */
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/, { message: 'must be a path prefix such as "/uploads"' })
        .default("/uploads"),
      /** Services that write the files; each gets the directory mounted read-write at `mountPath`. */
      services: z.array(z.string().regex(SERVICE_NAME, { message: "must be a service name" })).default([]),
      /** Where writer services see the directory. @default "/data/uploads" */
      mountPath: z
        .string()
        .regex(/^\/[A-Za-z0-9._/-]+$/, { message: "must be an absolute path" })
        .default("/data/uploads"),
    })
    .optional(),
  /** Postgres with PostGIS. */
  postgres: z
    .strictObject({
      /** Multi-arch image (PostgreSQL 17 + PostGIS 3.5 by default). */
      image: imageSchema.default(DEFAULT_IMAGES.postgres),
      /** Database name. @default "app" */
      database: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: "must be a lowercase SQL identifier" })
        .default("app"),
      /**
       * Role the apps and the migration connect as: it owns the database and everything in it but
       * is not a superuser. @default "app"
       */
      user: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: "must be a lowercase SQL identifier" })
        .refine((name) => name !== POSTGRES_ADMIN_ROLE, {
          message: `must not be "${POSTGRES_ADMIN_ROLE}": that is the stack's administrator role, which the apps never use`,
        })
        .refine((name) => !name.startsWith("pg_"), { message: 'must not start with "pg_" (PostgreSQL reserves it)' })
        .default("app"),
      /**
       * Extensions the administrator creates in the database before the migration runs: the app's
       * role may create only trusted ones (pgcrypto, citext, pg_trgm, …), not postgis_raster or
       * postgis_topology. PostGIS itself is always there. @default []
       */
      extensions: z
        .array(
          z
            .string()
            .regex(/^[a-z0-9_][a-z0-9_-]{0,62}$/, { message: "must be an extension name such as postgis_raster" }),
        )
        .default([]),
      /**
       * The image's PostgreSQL major version, when its tag does not start with it (a digest alone).
       * It decides where the cluster lives on the volume. @default the tag's ("17-3.5": 17)
       */
      majorVersion: z.int().min(12).max(99).optional(),
      /** Override the tier's max_connections. */
      maxConnections: z.int().min(10).max(1000).optional(),
    })
    .default({ image: DEFAULT_IMAGES.postgres, database: "app", user: "app", extensions: [] }),
  /** Redis (always with a generated password). */
  redis: z
    .strictObject({
      image: imageSchema.default(DEFAULT_IMAGES.redis),
      /** Append-only file persistence, for queues (BullMQ) whose jobs must survive a restart. @default false */
      appendOnly: z.boolean().default(false),
      /**
       * What Redis does at maxmemory. @default "allkeys-lru" as a cache, "noeviction" with appendOnly
       * (a queue must never lose jobs silently; BullMQ requires it).
       */
      evictionPolicy: z
        .enum([
          "noeviction",
          "allkeys-lru",
          "allkeys-lfu",
          "allkeys-random",
          "volatile-lru",
          "volatile-lfu",
          "volatile-random",
          "volatile-ttl",
        ])
        .optional(),
    })
    .default({ image: DEFAULT_IMAGES.redis, appendOnly: false }),
  /**
   * Timing of every container's health check (Postgres, Redis, the apps, Caddy, cloudflared).
   * Each value left out keeps the stack's own: every 5 s for Postgres and Redis and 10 s for the
   * rest, a 5 s timeout, 5 retries. Slow them down on a busy small server, or for apps whose
   * check is expensive.
   */
  healthChecks: z
    .strictObject({
      /** Seconds between two checks of a container (the first runs one interval after it starts). */
      intervalSeconds: wholeNumber(1, 3600, "seconds").optional(),
      /** Seconds one check may take before it counts as failed. */
      timeoutSeconds: wholeNumber(1, 600, "seconds").optional(),
      /** Failed checks in a row that make a container unhealthy. */
      retries: wholeNumber(1, 100, "checks").optional(),
    })
    .default({}),
  /**
   * Seconds a deploy waits for every service to be healthy before it rolls back to the previous
   * release. @default 300
   */
  deployWaitSeconds: wholeNumber(30, 7200, "seconds").default(DEFAULT_DEPLOY_WAIT_SECONDS),
  /** Images of the reverse proxy pair. */
  proxy: z
    .strictObject({
      caddyImage: imageSchema.default(DEFAULT_IMAGES.caddy),
      cloudflaredImage: imageSchema.default(DEFAULT_IMAGES.cloudflared),
    })
    .default({ caddyImage: DEFAULT_IMAGES.caddy, cloudflaredImage: DEFAULT_IMAGES.cloudflared }),
};

/** Pulumi.yaml's one-line description of each key (scripts/pulumi-yaml.ts writes them there). */
export const appConfigDescriptions: Record<keyof typeof appConfigFields, string> = {
  services:
    "The app services: a list of {name, image (pinned by tag or digest), command, port (absent for workers), healthCheck ({path} or {command}), environment, secrets (names of secrets:<NAME> config keys set with --secret), memoryShare (default 1), memoryMb, replicas (workers only, default 1), readOnly, user}.",
  migration:
    "Optional database migration run before new containers start: {service (whose image and environment it uses), command}.",
  uploads:
    "Optional uploads directory on the volume, served by Caddy: {path (URL prefix, default /uploads), services (writers), mountPath (default /data/uploads)}.",
  postgres: `Postgres with PostGIS: {image (default ${DEFAULT_IMAGES.postgres}, multi-arch), database (default app), user (default app; not a superuser), extensions (default none), majorVersion (default from the image's tag), maxConnections (default by tier)}.`,
  redis: `Redis: {image (default ${DEFAULT_IMAGES.redis}), appendOnly (default false), evictionPolicy (default allkeys-lru, noeviction with appendOnly)}.`,
  healthChecks:
    "Timing of every container's health check: {intervalSeconds, timeoutSeconds, retries}. Each value left out keeps the stack's own: every 5 s for Postgres and Redis, 10 s for the rest; 5 s timeout; 5 retries.",
  deployWaitSeconds:
    "Seconds a deploy waits for every service to be healthy before it rolls back to the previous release; at least three health check intervals.",
  proxy: `Proxy images: {caddyImage (default ${DEFAULT_IMAGES.caddy}), cloudflaredImage (default ${DEFAULT_IMAGES.cloudflared})}.`,
};

type Loose = Record<string, unknown>;
const isObject = (v: unknown): v is Loose => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Cross-key checks of the app stack: routes name services with a port, service names are unique
 * and not the stack's own, the migration and uploads name existing services, workers alone scale.
 * Like the foundation's checks they look only at values of the right shape.
 */
export const appCrossChecks: CrossCheck[] = [
  function servicesAreWellFormed(raw) {
    if (!Array.isArray(raw.services)) return [];
    const problems: Problem[] = [];
    const seen = new Set<string>();
    raw.services.forEach((s, i) => {
      if (!isObject(s) || typeof s.name !== "string") return;
      if ((RESERVED_SERVICE_NAMES as readonly string[]).includes(s.name)) {
        problems.push({
          path: ["services", i, "name"],
          message: `"${s.name}" is a service of the stack itself; reserved: ${RESERVED_SERVICE_NAMES.join(", ")}`,
        });
      }
      if (seen.has(s.name))
        problems.push({ path: ["services", i, "name"], message: `service "${s.name}" is defined twice` });
      seen.add(s.name);
      const hasPort = typeof s.port === "number";
      if (typeof s.replicas === "number" && s.replicas > 1 && hasPort) {
        problems.push({
          path: ["services", i, "replicas"],
          message:
            "only workers (services without a port) run as several replicas; grow a routed service with the tier",
        });
      }
      if (hasPort && s.healthCheck === undefined) {
        problems.push({
          path: ["services", i, "healthCheck"],
          message: 'a service with a port needs a health check, e.g. {path: "/health"}',
        });
      }
      if (!hasPort && isObject(s.healthCheck) && "path" in s.healthCheck) {
        problems.push({
          path: ["services", i, "healthCheck"],
          message: "an HTTP health check needs the service's port; a worker uses {command: [...]}",
        });
      }
      problems.push(...stackVariablesKept(s, i));
      if (isObject(s.environment)) {
        for (const key of Object.keys(s.environment)) {
          if ((STACK_ENV_NAMES as readonly string[]).includes(key)) {
            problems.push({
              path: ["services", i, "environment", key],
              message: `is set by the stack (${STACK_ENV_NAMES.join(", ")}); remove it`,
            });
          }
        }
        if (Array.isArray(s.secrets)) {
          for (const name of s.secrets) {
            if (typeof name === "string" && name in s.environment) {
              problems.push({
                path: ["services", i, "secrets"],
                message: `${name} is both a plain environment variable and a secret`,
              });
            }
          }
        }
      }
    });
    return problems;
  },
  function postgresMajorIsKnown(raw) {
    if (!isObject(raw.postgres) || typeof raw.postgres.image !== "string") return [];
    const fromTag = majorOfImageTag(raw.postgres.image);
    const given = raw.postgres.majorVersion;
    if (given === undefined && fromTag === undefined) {
      return [
        {
          path: ["postgres", "majorVersion"],
          message: `the image's tag does not say its PostgreSQL major version (${raw.postgres.image}): set it, e.g. 17`,
        },
      ];
    }
    if (typeof given === "number" && fromTag !== undefined && given !== fromTag) {
      return [{ path: ["postgres", "majorVersion"], message: `is ${given}, but the image's tag names ${fromTag}` }];
    }
    return [];
  },
  function routesGoToServicesWithAPort(raw) {
    if (!Array.isArray(raw.routes) || !Array.isArray(raw.services)) return [];
    const services = new Map(
      raw.services.filter(isObject).flatMap((s) => (typeof s.name === "string" ? [[s.name, s] as const] : [])),
    );
    const names = [...services.keys()].join(", ") || "(none)";
    return raw.routes.flatMap((route, i): Problem[] => {
      if (!isObject(route) || typeof route.service !== "string") return [];
      const service = services.get(route.service);
      if (!service) {
        return [{ path: ["routes", i, "service"], message: `no service "${route.service}"; services: ${names}` }];
      }
      if (typeof service.port !== "number") {
        return [
          {
            path: ["routes", i, "service"],
            message: `service "${route.service}" has no port (a worker cannot be routed to)`,
          },
        ];
      }
      return [];
    });
  },
  function deployWaitOutlastsAHealthCheck(raw) {
    const interval = isObject(raw.healthChecks) ? raw.healthChecks.intervalSeconds : undefined;
    const wait = raw.deployWaitSeconds ?? DEFAULT_DEPLOY_WAIT_SECONDS;
    if (typeof interval !== "number" || typeof wait !== "number" || wait >= 3 * interval) return [];
    // Postgres must pass one check, then the apps theirs, and one retry should fit too.
    return [
      {
        path: ["deployWaitSeconds"],
        message: `must last at least three health check intervals (healthChecks.intervalSeconds is ${interval}), so at least ${3 * interval} (seconds)`,
      },
    ];
  },
  function migrationAndUploadsNameServices(raw) {
    if (!Array.isArray(raw.services)) return [];
    const names = raw.services.filter(isObject).map((s) => s.name);
    const list = names.join(", ");
    const problems: Problem[] = [];
    if (
      isObject(raw.migration) &&
      typeof raw.migration.service === "string" &&
      !names.includes(raw.migration.service)
    ) {
      problems.push({
        path: ["migration", "service"],
        message: `no service "${raw.migration.service}"; services: ${list}`,
      });
    }
    if (isObject(raw.uploads) && Array.isArray(raw.uploads.services)) {
      raw.uploads.services.forEach((name, i) => {
        if (typeof name === "string" && !names.includes(name)) {
          problems.push({ path: ["uploads", "services", i], message: `no service "${name}"; services: ${list}` });
        }
      });
    }
    return problems;
  },
  function uploadsPathNotShadowedByARoute(raw) {
    if (!isObject(raw.uploads) || !Array.isArray(raw.routes)) return [];
    const path = typeof raw.uploads.path === "string" ? raw.uploads.path : "/uploads";
    return raw.routes.flatMap((route, i): Problem[] =>
      isObject(route) && route.path === path
        ? [{ path: ["routes", i, "path"], message: `${path} is the uploads path, served from the volume by Caddy` }]
        : [],
    );
  },
];

/**
 * A service's secrets and environment leave alone what the stack sets: its database and Redis
 * variables (a secret of that name would replace them in the container), the `.env` keys of the
 * stack's own passwords and tunnel token (an app secret is written to the same file), and a
 * routed service's PORT, which must say its `port` (Caddy and the health check use that one).
 */
function stackVariablesKept(s: Loose, i: number): Problem[] {
  const problems: Problem[] = [];
  const stackNames: readonly string[] = [...STACK_ENV_NAMES, ...STACK_DOTENV_KEYS];
  const hasPort = typeof s.port === "number";
  if (Array.isArray(s.secrets)) {
    s.secrets.forEach((name, j) => {
      if (typeof name !== "string") return;
      if (stackNames.includes(name)) {
        problems.push({
          path: ["services", i, "secrets", j],
          message: `${name} is set by the stack (${stackNames.join(", ")}); name the secret otherwise`,
        });
      } else if (name === PORT_ENV_NAME && hasPort) {
        problems.push({
          path: ["services", i, "secrets", j],
          message: `${PORT_ENV_NAME} is set by the stack from the service's port (${s.port}); remove it`,
        });
      }
    });
  }
  const environment = isObject(s.environment) ? s.environment : {};
  if (hasPort && PORT_ENV_NAME in environment && environment[PORT_ENV_NAME] !== String(s.port)) {
    problems.push({
      path: ["services", i, "environment", PORT_ENV_NAME],
      message: `disagrees with the service's port (${s.port}), which Caddy and the health check use; remove it (the stack sets ${PORT_ENV_NAME}=${s.port})`,
    });
  }
  return problems;
}

/** The app secrets the services name, each once, sorted. */
export function appSecretNames(services: readonly AppService[]): string[] {
  return [...new Set(services.flatMap((s) => s.secrets))].sort();
}

/** `secrets:<NAME>`, the full config key of an app secret. */
export function appSecretKey(name: string): string {
  return `${APP_SECRET_NAMESPACE}:${name}`;
}

/**
 * The problems with the app secrets: every name the services use must be set in the `secrets`
 * namespace with `--secret`. Returns one message per missing or plaintext key.
 */
export function appSecretProblems(
  services: readonly AppService[],
  allConfig: Readonly<Record<string, string>>,
  isSecret: (key: string) => boolean,
): string[] {
  return secretKeyProblems(appSecretNames(services), "a service lists it in secrets", allConfig, isSecret);
}

/** One message per `secrets:<NAME>` key that is missing (`why` says who needs it) or plaintext. */
export function secretKeyProblems(
  names: readonly string[],
  why: string,
  allConfig: Readonly<Record<string, string>>,
  isSecret: (key: string) => boolean,
): string[] {
  return names.flatMap((name) => {
    const key = appSecretKey(name);
    if (!(key in allConfig)) {
      return [`${key}: is required (${why}); set it with: pulumi config set --secret ${key} <value>`];
    }
    if (!isSecret(key)) {
      return [`${key}: is stored in plaintext; set it again with: pulumi config set --secret ${key} <value>`];
    }
    return [];
  });
}
