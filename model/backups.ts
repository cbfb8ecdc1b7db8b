import { uploadsDir } from "./server";

/**
 * Backup retention by prefix in the backups bucket: the backup job writes each run under one of
 * these prefixes and the bucket's lifecycle rules delete objects older than `keepDays`. One place,
 * so the job and the rules cannot drift apart.
 */
export const BACKUP_RETENTION = [
  { prefix: "daily/", keepDays: 7 },
  { prefix: "weekly/", keepDays: 35 },
  { prefix: "monthly/", keepDays: 365 },
] as const;

/**
 * Where the backup job spools the uncompressed dump, inside the Postgres container: a bind mount
 * of `BACKUP_SPOOL_HOST_DIR` on the data volume. Not the container's /tmp, a tmpfs that counts
 * against the container's memory limit: a database near that limit would fill it (ENOSPC) or get
 * Postgres itself killed for memory.
 */
export const BACKUP_SPOOL_DIR = "/var/lib/webstack-backup";
/**
 * Where the deploy dumps the running database before a changed migration runs, as the Postgres
 * container sees it: in the spool, on the data volume. The next good backup removes the dumps.
 */
export const PRE_MIGRATION_DUMP_DIR = `${BACKUP_SPOOL_DIR}/pre-migration`;
/** Where the deploy dumps the database for a PostgreSQL major upgrade, removed once it is done. */
export const MAJOR_UPGRADE_DUMP_DIR = `${BACKUP_SPOOL_DIR}/major-upgrade`;
/** The spool's directory on the data volume, relative to the data directory (`/srv/data`). */
export const BACKUP_SPOOL_HOST_DIR = "backup-spool";

/**
 * The directories each backup archives beside the dump: the uploads directory when the stack has
 * one (`webstack:uploads`), then `webstack:backupUploadsDirs`, each once.
 */
export function backedUpDirs(config: { uploads?: unknown; backupUploadsDirs: readonly string[] }): string[] {
  return [...new Set([...(config.uploads ? [uploadsDir()] : []), ...config.backupUploadsDirs])];
}
