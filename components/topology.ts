/**
 * Names that several parts of the stack must agree on: the compose service the tunnel sends
 * traffic to, and the backup prefixes that the backup job writes and the bucket's lifecycle
 * rules expire. One place, so they cannot drift apart.
 */

/** The reverse proxy's compose service name and the port it listens on inside the stack's network. */
export const CADDY_SERVICE = "caddy";
export const CADDY_INTERNAL_PORT = 80;
/** Where cloudflared (in the same compose network) sends every tunnel request. */
export const CADDY_INTERNAL_URL = `http://${CADDY_SERVICE}:${CADDY_INTERNAL_PORT}`;

/**
 * Backup retention by prefix in the backups bucket: the backup job writes each run under one of
 * these prefixes and the bucket's lifecycle rules delete objects older than `keepDays`.
 */
export const BACKUP_RETENTION = [
  { prefix: "daily/", keepDays: 7 },
  { prefix: "weekly/", keepDays: 35 },
  { prefix: "monthly/", keepDays: 365 },
] as const;
