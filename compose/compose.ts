/**
 * The compose renderer: one compose file for the whole stack. Pure: same input, same bytes.
 *
 * - Postgres (with PostGIS) and Redis sit on the internal `data` network only and publish nothing;
 *   their data lives on the volume; both are tuned to the tier's memory budget.
 * - The user's services join `edge` (outbound and Caddy) and `data`.
 * - Caddy is the only way in: in tunnel mode it publishes nothing and cloudflared (same `edge`
 *   network) forwards to it; in direct mode it alone publishes 80 and 443.
 * - Every service: a health check, a memory limit, log rotation, a restart policy,
 *   no-new-privileges; read-only root filesystems where the image allows.
 * - Secrets never appear here: they are `${VAR}` references filled from the 0600 `.env` beside the
 *   compose file. Redis reads its password from a file it writes into its own tmpfs, so the
 *   password is never on a command line.
 */
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import type { AppService } from "../config/app";
import type { StackMemory } from "../config/memory";
import { BACKUP_SPOOL_DIR, BACKUP_SPOOL_HOST_DIR } from "../model/backups";
import { POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY, TUNNEL_TOKEN_KEY } from "../model/env";
import type { PublicPort } from "../model/ports";
import { postgresLayout } from "../model/postgres";
import { UPLOADS_GID, uploadsDir } from "../model/server";
import {
  CADDY_INTERNAL_PORT,
  CADDY_SERVICE,
  CLOUDFLARED_SERVICE,
  MIGRATE_SERVICE,
  POSTGRES_ADMIN_ROLE,
  POSTGRES_PORT,
  POSTGRES_SERVICE,
  REDIS_PORT,
  REDIS_SERVICE,
} from "../model/services";
import { CADDY_ADMIN, CADDY_UPLOADS_DIR } from "./caddyfile";

/** Where cloudflared serves /ready inside its container (its health check asks it). */
const CLOUDFLARED_METRICS = "127.0.0.1:60123";

export interface ComposeInput {
  /** Compose project name (the app name). */
  readonly project: string;
  readonly exposure: "tunnel" | "direct";
  /** cloudflared also carries SSH to the host's sshd (`sshThroughTunnel`). */
  readonly sshThroughTunnel?: boolean;
  readonly services: readonly AppService[];
  readonly migration?: { readonly service: string; readonly command: readonly string[] };
  readonly uploads?: { readonly services: readonly string[]; readonly mountPath: string };
  readonly postgres: {
    readonly image: string;
    readonly database: string;
    readonly user: string;
    /** PostgreSQL's major version: where the cluster lives on the volume (postgresLayout). */
    readonly major: number;
    /** Created by the administrator before the migration (the app's role may not create them). */
    readonly extensions?: readonly string[];
    readonly maxConnections?: number;
  };
  readonly redis: { readonly image: string; readonly appendOnly: boolean; readonly evictionPolicy?: string };
  readonly proxy: { readonly caddyImage: string; readonly cloudflaredImage: string };
  /** Where the data volume is mounted on the server (`/srv/data`). */
  readonly dataDir: string;
  /** The container memory limits and the Postgres and Redis settings (see stackMemory). */
  readonly memory: StackMemory;
  /** The ports Caddy publishes: the web ports of direct mode, none with the tunnel. */
  readonly publicWebPorts: readonly PublicPort[];
  /** The Caddyfile text: its hash labels the Caddy container, so a new Caddyfile recreates it. */
  readonly caddyfile: string;
  /** Health check timing for every container; each value left out keeps the service's own. */
  readonly healthChecks?: HealthCheckTiming;
}

export interface HealthCheckTiming {
  readonly intervalSeconds?: number;
  readonly timeoutSeconds?: number;
  readonly retries?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: a compose service is free-form YAML
type ComposeService = Record<string, any>;

const LOGGING = { driver: "json-file", options: { "max-size": "10m", "max-file": "3" } };
const NO_NEW_PRIVILEGES = ["no-new-privileges:true"];

/** `${NAME:?…}`: compose refuses to start when `.env` lacks the variable. */
export function required(name: string): string {
  return `\${${name}:?${name} is missing from .env}`;
}

/** `${NAME}`: a value compose fills in from `.env`. */
function ref(name: string): string {
  return `\${${name}}`;
}

/** The compose file of the stack. */
export function renderCompose(input: ComposeInput): string {
  const { memory } = input;
  const tunnel = input.exposure === "tunnel";
  const healthy = { condition: "service_healthy" };
  const services: Record<string, ComposeService> = {};

  services[POSTGRES_SERVICE] = postgresService(input);
  services[REDIS_SERVICE] = redisService(input);
  for (const s of input.services) services[s.name] = appService(input, s);
  if (input.migration) services[MIGRATE_SERVICE] = migrateService(input);
  services[CADDY_SERVICE] = caddyService(input);
  if (tunnel) {
    services[CLOUDFLARED_SERVICE] = {
      image: input.proxy.cloudflaredImage,
      command: ["tunnel", "--no-autoupdate", "run"],
      restart: "unless-stopped",
      environment: {
        // cloudflared reads its token from the environment: `--token` would show it in `ps`.
        TUNNEL_TOKEN: required(TUNNEL_TOKEN_KEY),
        TUNNEL_METRICS: CLOUDFLARED_METRICS,
      },
      depends_on: { [CADDY_SERVICE]: healthy },
      networks: ["edge"],
      // SSH through the tunnel: the host's sshd, at the gateway of Docker's default bridge.
      ...(input.sshThroughTunnel ? { extra_hosts: ["host.docker.internal:host-gateway"] } : {}),
      read_only: true,
      cap_drop: ["ALL"],
      security_opt: NO_NEW_PRIVILEGES,
      mem_limit: `${memory.limitsMb[CLOUDFLARED_SERVICE]}m`,
      healthcheck: {
        test: ["CMD", "cloudflared", "tunnel", "--metrics", CLOUDFLARED_METRICS, "ready"],
        ...timing(input, 10, 30),
      },
      logging: LOGGING,
    };
  }

  const doc = {
    name: input.project,
    services,
    networks: {
      edge: {},
      // No route out and no published port: only the stack's own services reach Postgres and Redis.
      data: { internal: true },
    },
  };
  return stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** A health check's timing: the service's own interval and start period unless the config sets them. */
function timing(input: ComposeInput, intervalS: number, startPeriodS: number) {
  const t = input.healthChecks ?? {};
  return {
    interval: `${t.intervalSeconds ?? intervalS}s`,
    timeout: `${t.timeoutSeconds ?? 5}s`,
    retries: t.retries ?? 5,
    start_period: `${startPeriodS}s`,
  };
}

function postgresService(input: ComposeInput): ComposeService {
  const pg = input.postgres;
  const layout = postgresLayout(pg.major, input.dataDir);
  const t = input.memory.postgres;
  const settings = [
    `shared_buffers=${t.sharedBuffersMb}MB`,
    `effective_cache_size=${t.effectiveCacheSizeMb}MB`,
    `work_mem=${t.workMemMb}MB`,
    `maintenance_work_mem=${t.maintenanceWorkMemMb}MB`,
    `max_connections=${t.maxConnections}`,
  ];
  return {
    image: pg.image,
    command: ["postgres", ...settings.flatMap((s) => ["-c", s])],
    restart: "unless-stopped",
    // The image initialises a new cluster with POSTGRES_USER as its superuser, whose password is
    // POSTGRES_PASSWORD until the deploy's role setup (scripts/postgres-roles.sql) gives that
    // password to the app's role and takes it from the administrator.
    environment: {
      POSTGRES_USER: POSTGRES_ADMIN_ROLE,
      POSTGRES_DB: pg.database,
      [POSTGRES_PASSWORD_KEY]: required(POSTGRES_PASSWORD_KEY),
      POSTGRES_APP_USER: pg.user,
      ...(pg.extensions?.length ? { POSTGRES_EXTENSIONS: pg.extensions.join(" ") } : {}),
      // The per-major layout's place, said rather than left to the image (a PostGIS image may differ).
      ...(layout.pgdata !== layout.mountPoint ? { PGDATA: layout.pgdata } : {}),
    },
    // The backup job's dump spool on the data volume too (BACKUP_SPOOL_DIR says why).
    volumes: [
      `${layout.hostDir}:${layout.mountPoint}`,
      `${input.dataDir}/${BACKUP_SPOOL_HOST_DIR}:${BACKUP_SPOOL_DIR}`,
    ],
    // The entrypoint starts as root to own the data directory, then runs postgres as `postgres`.
    read_only: true,
    tmpfs: ["/tmp", "/var/run/postgresql"],
    shm_size: `${t.shmMb}m`,
    networks: ["data"],
    security_opt: NO_NEW_PRIVILEGES,
    mem_limit: `${input.memory.limitsMb[POSTGRES_SERVICE]}m`,
    stop_grace_period: "60s",
    healthcheck: {
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", pg.user, "-d", pg.database],
      ...timing(input, 5, 120),
    },
    logging: LOGGING,
  };
}

function redisService(input: ComposeInput): ComposeService {
  const t = input.memory.redis;
  const args = [
    "--appendonly",
    input.redis.appendOnly ? "yes" : "no",
    "--maxmemory",
    `${t.maxmemoryMb}mb`,
    "--maxmemory-policy",
    t.evictionPolicy,
  ];
  // The password goes into a config file in the container's own tmpfs (printf is a shell
  // builtin, so it never shows in a process list), then the image's entrypoint starts Redis with
  // it and drops to the `redis` user. `$$` keeps compose from interpolating.
  const start =
    "printf 'requirepass %s\\n' \"$$REDIS_PASSWORD\" > /tmp/redis-auth.conf && " +
    `exec docker-entrypoint.sh redis-server /tmp/redis-auth.conf ${args.join(" ")}`;
  return {
    image: input.redis.image,
    command: ["sh", "-c", start],
    restart: "unless-stopped",
    environment: { [REDIS_PASSWORD_KEY]: required(REDIS_PASSWORD_KEY) },
    volumes: [`${input.dataDir}/redis:/data`],
    read_only: true,
    tmpfs: ["/tmp"],
    networks: ["data"],
    security_opt: NO_NEW_PRIVILEGES,
    mem_limit: `${input.memory.limitsMb[REDIS_SERVICE]}m`,
    healthcheck: {
      // REDISCLI_AUTH keeps the password off redis-cli's command line.
      test: ["CMD-SHELL", 'REDISCLI_AUTH="$$REDIS_PASSWORD" redis-cli ping | grep -q PONG'],
      ...timing(input, 5, 30),
    },
    logging: LOGGING,
  };
}

/** What every app service (and the migration) gets: connection settings, its env and secrets. */
function appEnvironment(input: ComposeInput, s: AppService): Record<string, string> {
  const pg = input.postgres;
  const env: Record<string, string> = {
    DATABASE_URL: `postgres://${pg.user}:${ref(POSTGRES_PASSWORD_KEY)}@${POSTGRES_SERVICE}:${POSTGRES_PORT}/${pg.database}`,
    PGHOST: POSTGRES_SERVICE,
    PGPORT: String(POSTGRES_PORT),
    PGUSER: pg.user,
    PGPASSWORD: ref(POSTGRES_PASSWORD_KEY),
    PGDATABASE: pg.database,
    REDIS_URL: `redis://:${ref(REDIS_PASSWORD_KEY)}@${REDIS_SERVICE}:${REDIS_PORT}/0`,
    REDIS_HOST: REDIS_SERVICE,
    REDIS_PORT: String(REDIS_PORT),
    REDIS_PASSWORD: ref(REDIS_PASSWORD_KEY),
  };
  if (s.port !== undefined) env.PORT = String(s.port);
  for (const [k, v] of Object.entries(s.environment)) env[k] = escapeDollars(v);
  for (const name of s.secrets) env[name] = required(name);
  return env;
}

/** Plain values are literal: a `$` in them must not be read as a compose variable. */
function escapeDollars(value: string): string {
  return value.replaceAll("$", () => "$$");
}

function appService(input: ComposeInput, s: AppService): ComposeService {
  const healthy = { condition: "service_healthy" };
  const service: ComposeService = {
    image: s.image,
    ...(s.command ? { command: [...s.command] } : {}),
    restart: "unless-stopped",
    init: true,
    ...(s.user ? { user: s.user } : {}),
    environment: appEnvironment(input, s),
    depends_on: { [POSTGRES_SERVICE]: healthy, [REDIS_SERVICE]: healthy },
    networks: ["edge", "data"],
    ...(s.readOnly ? { read_only: true, tmpfs: ["/tmp"] } : {}),
    ...(input.uploads?.services.includes(s.name)
      ? {
          volumes: [`${uploadsDir(input.dataDir)}:${input.uploads.mountPath}`],
          // The uploads directory's group (see UPLOADS_GID): whatever user the image runs as.
          group_add: [String(UPLOADS_GID)],
        }
      : {}),
    security_opt: NO_NEW_PRIVILEGES,
    mem_limit: `${input.memory.limitsMb[s.name]}m`,
    stop_grace_period: "30s",
    healthcheck: appHealthCheck(input, s),
    logging: LOGGING,
  };
  if (s.replicas > 1) service.deploy = { replicas: s.replicas };
  return service;
}

function appHealthCheck(input: ComposeInput, s: AppService): ComposeService {
  const check = s.healthCheck;
  if (check && "command" in check) return { test: ["CMD", ...check.command], ...timing(input, 10, 60) };
  if (check && "path" in check) {
    const url = `http://127.0.0.1:${s.port}${check.path}`;
    // Whichever HTTP client the image has: wget (Alpine, busybox), curl, or Node itself (slim images).
    const probe =
      `if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null '${url}'; ` +
      `elif command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null '${url}'; ` +
      `else node -e "fetch('${url}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; fi`;
    return { test: ["CMD-SHELL", probe], ...timing(input, 10, 60) };
  }
  // A worker without a check is healthy while its process runs (compose waits for "running").
  return { test: ["CMD-SHELL", "exit 0"], ...timing(input, 30, 5) };
}

function migrateService(input: ComposeInput): ComposeService {
  const migration = input.migration!;
  const source = input.services.find((s) => s.name === migration.service)!;
  const healthy = { condition: "service_healthy" };
  return {
    image: source.image,
    command: [...migration.command],
    // Started only by the deploy script (`docker compose run --rm migrate`), never by `up`.
    profiles: [MIGRATE_SERVICE],
    restart: "no",
    init: true,
    ...(source.user ? { user: source.user } : {}),
    environment: appEnvironment(input, source),
    depends_on: { [POSTGRES_SERVICE]: healthy, [REDIS_SERVICE]: healthy },
    networks: ["edge", "data"],
    security_opt: NO_NEW_PRIVILEGES,
    mem_limit: `${input.memory.limitsMb[source.name]}m`,
    logging: LOGGING,
  };
}

/** A port published on the host as the same port (`443:443`, `443:443/udp`). */
function publishedPort({ port, protocol }: PublicPort): string {
  return `${port}:${port}${protocol === "udp" ? "/udp" : ""}`;
}

function caddyService(input: ComposeInput): ComposeService {
  const tunnel = input.exposure === "tunnel";
  const caddyfileHash = createHash("sha256").update(input.caddyfile).digest("hex").slice(0, 16);
  return {
    image: input.proxy.caddyImage,
    restart: "unless-stopped",
    // Direct mode: the only published ports of the stack. Tunnel mode: none.
    ...(input.publicWebPorts.length > 0 ? { ports: input.publicWebPorts.map(publishedPort) } : {}),
    ...(tunnel ? { expose: [String(CADDY_INTERNAL_PORT)] } : {}),
    volumes: [
      "./Caddyfile:/etc/caddy/Caddyfile:ro",
      `${input.dataDir}/caddy/data:/data`,
      `${input.dataDir}/caddy/config:/config`,
      ...(input.uploads ? [`${uploadsDir(input.dataDir)}:${CADDY_UPLOADS_DIR}:ro`] : []),
    ],
    // A changed Caddyfile changes this label, so `up` recreates Caddy with it.
    labels: { "webstack.caddyfile-sha256": caddyfileHash },
    // No depends_on on the apps: compose recreates the dependents of a recreated service, so a
    // failing app release would take Caddy (and every other route) down with it.
    networks: ["edge"],
    read_only: true,
    tmpfs: ["/tmp"],
    cap_drop: ["ALL"],
    cap_add: ["NET_BIND_SERVICE"],
    security_opt: NO_NEW_PRIVILEGES,
    mem_limit: `${input.memory.limitsMb[CADDY_SERVICE]}m`,
    healthcheck: {
      test: ["CMD", "wget", "-q", "-O", "/dev/null", `http://${CADDY_ADMIN}/config/`],
      ...timing(input, 10, 10),
    },
    logging: LOGGING,
  };
}
