/**
 * The config keys of the backups (`webstack:backup*`): spread into `stackConfigSchema` next to the
 * server's keys. Each is documented where it is declared, with its default.
 */
import { z } from "zod";
import { DATA_DIR } from "../model/server";
import { ageRecipientProblem, checked } from "./checks";

const recipientSchema = checked(ageRecipientProblem);

/**
 * A systemd calendar expression (`OnCalendar=`). The characters are limited to what calendar
 * expressions use, so a value can never break out of its line in the unit file; the test suite
 * checks the defaults and examples with `systemd-analyze calendar`.
 */
const calendarSchema = z
  .string()
  .regex(/^[A-Za-z0-9*:.,/~ -]{1,80}$/, {
    message:
      'must be a systemd calendar expression such as "daily", "*-*-* 02:00:00" or "Sun *-*-* 05:00:00" (letters, digits, * : . , / ~ - and spaces)',
  })
  .refine((v) => v.trim() === v && v.length > 0, { message: "must not start or end with spaces" });

export const backupConfigFields = {
  /**
   * Public keys the backups are encrypted to: age recipients (`age1…`, from `age-keygen -y`) or
   * OpenSSH ed25519/RSA public keys. Their private keys stay with the operators: the server never
   * holds one. List two people (or a person and an offline key) so that one lost key loses nothing.
   * @example ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
   */
  backupRecipients: z.array(recipientSchema).min(1, { message: "must list at least one age public key" }),
  /**
   * When the daily backup runs (systemd OnCalendar, server time = UTC), with up to 30 minutes of
   * random delay; a run missed while the server was off runs at the next boot.
   * @default "*-*-* 02:00:00"
   */
  backupSchedule: calendarSchema.default("*-*-* 02:00:00"),
  /** Run the weekly restore drill (restores the latest backup into a throwaway PostgreSQL). @default true */
  backupDrill: z.boolean().default(true),
  /** When the restore drill runs (systemd OnCalendar). @default "Sun *-*-* 05:00:00" */
  backupDrillSchedule: calendarSchema.default("Sun *-*-* 05:00:00"),
  /**
   * Monitoring URL pinged after each backup and drill (healthchecks.io style: the URL on success,
   * URL + "/fail" on failure, the journal line as the body). Omitted: no pings. Set it with
   * `pulumi config set --secret` when it holds a token.
   * @example "https://hc-ping.com/0b5c7e4e-1a2b-4c3d-9e8f-001122334455"
   */
  backupPingUrl: z
    .string()
    .regex(/^https?:\/\/[^\s"\\]+$/, { message: "must be an http(s) URL without spaces or quotes" })
    .optional(),
  /**
   * More directories on the data volume to archive with each backup, encrypted like the database,
   * beside it in the backups bucket. The uploads directory of `webstack:uploads` is always included.
   * @default []
   * @example ["/srv/data/app/uploads"]
   */
  backupUploadsDirs: z
    .array(
      z.string().regex(new RegExp(`^${DATA_DIR}/[A-Za-z0-9._/-]+$`), {
        message: `must be an absolute path under ${DATA_DIR} (letters, digits, '.', '_', '-', '/')`,
      }),
    )
    .default([]),
};

/** Pulumi.yaml's one-line description of each key (scripts/pulumi-yaml.ts writes them there). */
export const backupConfigDescriptions: Record<keyof typeof backupConfigFields, string> = {
  backupRecipients:
    "Public keys the backups are encrypted to: age recipients (age1..., from age-keygen -y) or ssh-ed25519/ssh-rsa public keys. Their private keys never go to the server.",
  backupSchedule: "When the daily backup runs (systemd OnCalendar, UTC), with up to 30 minutes of random delay.",
  backupDrill: "Run the weekly restore drill that restores the latest backup into a throwaway PostgreSQL container.",
  backupDrillSchedule: "When the restore drill runs (systemd OnCalendar, UTC).",
  backupPingUrl:
    "Optional monitoring URL pinged after each backup and drill (URL on success, URL/fail on failure); set it with --secret when it holds a token.",
  backupUploadsDirs:
    "More directories under /srv/data archived with each backup, encrypted like the database (the webstack:uploads directory always is).",
};
