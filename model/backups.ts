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
