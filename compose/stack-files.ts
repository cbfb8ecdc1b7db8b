/**
 * Everything the app stack ships to the server, rendered from the resolved config: the compose
 * file, the Caddyfile and the deploy scripts. Pure; the same function feeds the AppStack
 * component, the offline plan and the tests.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { StackConfig } from "../config/resolve";
import { MAJOR_UPGRADE_DUMP_DIR, PRE_MIGRATION_DUMP_DIR } from "../model/backups";
import { DATA_DIR, UPLOADS_GID, uploadsDir } from "../model/server";
import { renderCaddyfile } from "./caddyfile";
import { renderCompose } from "./compose";

/** The server-side scripts, shipped as they are in `compose/scripts/` (deploy.sh runs the SQL). */
export const DEPLOY_SCRIPTS = ["deploy.sh", "postgres-roles.sql"] as const;
export const SCRIPTS_DIR = join(__dirname, "scripts");

export type AppStackConfig = Pick<
  StackConfig,
  | "appName"
  | "exposure"
  | "sshThroughTunnel"
  | "hostnames"
  | "routesInMatchOrder"
  | "memory"
  | "publicWebPorts"
  | "services"
  | "migration"
  | "uploads"
  | "postgres"
  | "redis"
  | "proxy"
  | "healthChecks"
  | "deployWaitSeconds"
  | "registries"
>;

export interface StackFiles {
  /** File name (relative to the app directory) → text. Not secret. */
  readonly files: Readonly<Record<string, string>>;
  /** sha256 of every shipped file, names included: the deploy re-runs when and only when it changes. */
  readonly contentHash: string;
}

/**
 * Render the compose file and Caddyfile and read the deploy scripts. `dataDir` is the server's
 * data directory; only the Docker end-to-end test renders into another.
 */
export function renderStackFiles(config: AppStackConfig, dataDir: string = DATA_DIR): StackFiles {
  const caddyfile = renderCaddyfile({
    exposure: config.exposure,
    hostnames: config.hostnames,
    routesInMatchOrder: config.routesInMatchOrder,
    services: config.services,
    uploadsPath: config.uploads?.path,
  });
  const compose = renderCompose({
    project: config.appName,
    exposure: config.exposure,
    sshThroughTunnel: config.sshThroughTunnel,
    services: config.services,
    migration: config.migration,
    uploads: config.uploads,
    postgres: config.postgres,
    redis: config.redis,
    proxy: config.proxy,
    dataDir,
    memory: config.memory,
    publicWebPorts: config.publicWebPorts,
    caddyfile,
    healthChecks: config.healthChecks,
  });
  const files: Record<string, string> = { "compose.yaml": compose, Caddyfile: caddyfile };
  for (const script of DEPLOY_SCRIPTS) files[`scripts/${script}`] = readFileSync(join(SCRIPTS_DIR, script), "utf8");
  return { files, contentHash: hashFiles(files) };
}

/**
 * The environment deploy.sh runs with (its header says what each variable does): how long it
 * waits for health, the uploads directory it gives to the writers' group, and where it dumps the
 * database before a changed migration.
 */
export function deployEnvironment(config: AppStackConfig, dataDir: string = DATA_DIR): Record<string, string> {
  return {
    WAIT_TIMEOUT: String(config.deployWaitSeconds),
    // The release's PostgreSQL, checked against the clusters on the volume before anything stops.
    DATA_DIR: dataDir,
    POSTGRES_IMAGE: config.postgres.image,
    POSTGRES_MAJOR: String(config.postgres.major),
    MAJOR_UPGRADE_DIR: MAJOR_UPGRADE_DUMP_DIR,
    ...(config.uploads ? { UPLOADS_DIR: uploadsDir(dataDir), UPLOADS_GID: String(UPLOADS_GID) } : {}),
    ...(config.migration ? { PRE_MIGRATION_DIR: PRE_MIGRATION_DUMP_DIR } : {}),
  };
}

export function hashFiles(files: Readonly<Record<string, string>>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(files).sort()) hash.update(`${name}\0${files[name]}\0`);
  return hash.digest("hex");
}
