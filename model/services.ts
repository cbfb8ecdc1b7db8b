/**
 * The compose services the stack runs itself, and the ports they listen on inside its networks.
 * The compose renderer, the Caddyfile, the tunnel's ingress and the backups all name them.
 */

export const POSTGRES_SERVICE = "postgres";
export const REDIS_SERVICE = "redis";
/** The reverse proxy: the only way into the stack. */
export const CADDY_SERVICE = "caddy";
export const CLOUDFLARED_SERVICE = "cloudflared";
/** The one-off migration service the deploy script runs before the new release starts. */
export const MIGRATE_SERVICE = "migrate";

/** Compose service names the stack itself uses; user services may not take them. */
export const RESERVED_SERVICE_NAMES = [
  POSTGRES_SERVICE,
  REDIS_SERVICE,
  CADDY_SERVICE,
  CLOUDFLARED_SERVICE,
  MIGRATE_SERVICE,
] as const;

export const POSTGRES_PORT = 5432;
export const REDIS_PORT = 6379;
/** The port Caddy listens on inside the stack's network (tunnel mode). */
export const CADDY_INTERNAL_PORT = 80;
/** Where cloudflared (in the same compose network) sends every tunnel request. */
export const CADDY_INTERNAL_URL = `http://${CADDY_SERVICE}:${CADDY_INTERNAL_PORT}`;

/**
 * The cluster's superuser: it has no password and logs in only over the postgres container's own
 * socket (`docker compose exec`), for the deploy's role setup and the backups. The apps connect as
 * `webstack:postgres.user`, which owns the database but is not a superuser.
 */
export const POSTGRES_ADMIN_ROLE = "postgres";
