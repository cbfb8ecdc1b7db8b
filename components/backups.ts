/**
 * Backups: a systemd timer on the server dumps the app's database (pg_dump, directory format, in
 * parallel), encrypts it with age to the operators' public keys and streams it to the R2 backups
 * bucket; a weekly timer restores the latest backup into a throwaway PostgreSQL container to prove
 * it restores. The scripts live in backup/ and are installed over SSH as the deploy user.
 *
 * Secrets (the bucket credentials, the ping URL) reach the server only as the stdin of one SSH
 * command that writes /etc/webstack/backup/backup.env with mode 0600: never in a command line,
 * an output or a log. Every file is its own command, re-run when its content changes or the
 * server is new (a rebuilt server gets everything installed again).
 *
 * No command here has a `delete`: Pulumi creates a replacement before it deletes the old resource,
 * so an old file command's `rm` or the old timers command's `disable` would undo what its
 * replacement just did, and the backups would stop silently. What a new config no longer wants
 * (the drill's timer) is removed by the timers command of that config.
 *
 * The files, the environment file and the timers are still replaced delete-first: Pulumi runs the
 * delete that the *state* holds, and a stack deployed by an earlier release holds `rm -f` and
 * `systemctl disable` there. Deleting first, those run before the new file is written and the
 * timers enabled again, so upgrading such a stack keeps its backups.
 *
 * Cost: R2 storage of the backups (about 7 dailies + 5 weeklies + 12 monthlies of the compressed
 * database; 10 GB free, then $0.015/GB-month), no egress fees; a few minutes of CPU a day.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import {
  BACKUP_PATHS,
  BACKUP_UNIT,
  backupFiles,
  DRILL_UNIT,
  renderBackupEnv,
  type ServerFile,
  sha256,
} from "../backup/render";
import { BACKUP_SPOOL_DIR, PRE_MIGRATION_DUMP_DIR } from "../model/backups";
import { DEFAULT_IMAGES } from "../model/default-images";
import { appDir, DEPLOY_USER } from "../model/server";
import { POSTGRES_SERVICE } from "../model/services";
import { filesHash, type ShippedFile, shipFile, shippedFile } from "./ship-file";

export interface BackupsArgs {
  /** SSH connection of the deploy user (passwordless sudo). The private key is a secret. */
  connection: {
    host: pulumi.Input<string>;
    /** @default "deploy" */
    user?: string;
    privateKey: pulumi.Input<string>;
  };
  /** The backups bucket and its S3 endpoint, e.g. `https://<account>.r2.cloudflarestorage.com`. */
  bucket: pulumi.Input<string>;
  endpoint: pulumi.Input<string>;
  /** S3 credentials of the backups bucket (secret). */
  accessKeyId: pulumi.Input<string>;
  secretAccessKey: pulumi.Input<string>;
  /** age public keys the backups are encrypted to. */
  recipients: readonly string[];
  /** systemd OnCalendar of the backup. */
  schedule: string;
  /** Run the weekly restore drill. */
  drill: boolean;
  /** systemd OnCalendar of the drill. */
  drillSchedule: string;
  /** Monitoring URL (secret when it holds a token). */
  pingUrl?: pulumi.Input<string>;
  /**
   * Directories of the server archived with each backup, encrypted to the same recipients and
   * written to the backups bucket beside the dump (so the one bucket-scoped token covers them).
   */
  uploadsDirs: readonly string[];
  /** The app's database, and the role the backups connect as (the cluster's superuser, POSTGRES_ADMIN_ROLE). */
  database: pulumi.Input<string>;
  databaseUser: pulumi.Input<string>;
  /**
   * The compose file of the app stack on the server.
   * @default "/srv/data/app/compose.yaml"
   */
  composeFile?: string;
  /** @default "postgres" */
  postgresService?: string;
  /**
   * Image of the drill's throwaway PostgreSQL: the app's own PostGIS image, so the drill restores
   * with the same major version.
   * @default DEFAULT_IMAGES.postgres
   */
  postgresImage?: string;
  /**
   * Values that change when the server is new (its id, its volume attachment's id): every step
   * runs again on a rebuilt server. AppStack's `serverIdentity`.
   */
  serverIdentity: pulumi.Input<string>[];
  /** Resources the install must wait for (the server, its volume attachment, the app stack). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class Backups extends pulumi.ComponentResource {
  /** Public key of the drill-only age identity generated on the server (empty when the drill is off). */
  readonly drillRecipient: pulumi.Output<string>;
  /** The files installed, by path (non-secret ones only). */
  readonly installedFiles: string[];
  /** Every file it ships (the environment file included), with the command that ships it. */
  readonly shipped: readonly ShippedFile[];

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:backups:Backups", name, {}, opts);
    const parent = { parent: this };
    const connection = {
      host: args.connection.host,
      user: args.connection.user ?? DEPLOY_USER,
      privateKey: pulumi.secret(args.connection.privateKey),
    };

    const shippedFiles: ShippedFile[] = [];
    const packages = installPackages();
    const files = backupFiles({
      recipients: args.recipients,
      schedule: args.schedule,
      drill: args.drill,
      drillSchedule: args.drillSchedule,
    });
    const installed = files.map((file) => installFile(file, [packages]));
    const envFile = installEnvFile([packages]);
    const drillKey = args.drill ? createDrillKey([packages]) : undefined;
    const timers = enableTimers([...installed, envFile, ...(drillKey ? [drillKey] : [])]);

    this.drillRecipient = drillKey ? drillKey.stdout.apply((s) => (s ?? "").trim()) : pulumi.output("");
    this.installedFiles = files.map((f) => f.path);
    this.shipped = shippedFiles;
    this.registerOutputs({
      drillRecipient: this.drillRecipient,
      installedFiles: this.installedFiles,
      shipped: shippedFiles,
      timers: timers.id,
    });

    function installPackages(): command.remote.Command {
      return new command.remote.Command(
        `${name}-packages`,
        {
          connection,
          create:
            "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends age rclone zstd jq curl >/dev/null",
          triggers: args.serverIdentity,
        },
        { ...parent, dependsOn: args.dependsOn },
      );
    }

    /** Install one file as root, re-shipped when its content changes or the server is new. */
    function installFile(file: ServerFile, after: pulumi.Resource[]): command.remote.Command {
      const slug = file.path
        .split("/")
        .pop()!
        .replace(/[^a-zA-Z0-9-]/g, "-");
      const commandName = `${name}-file-${slug}`;
      shippedFiles.push(shippedFile(commandName, file));
      return shipFile(
        commandName,
        file,
        { connection, writer: "root", triggers: [sha256(file.content), ...args.serverIdentity] },
        { ...parent, dependsOn: after, deleteBeforeReplace: true },
      );
    }

    function installEnvFile(after: pulumi.Resource[]): command.remote.Command {
      const composeFile = args.composeFile ?? `${appDir()}/compose.yaml`;
      const service = args.postgresService ?? POSTGRES_SERVICE;
      const content = pulumi
        .all([
          args.endpoint,
          args.bucket,
          args.accessKeyId,
          args.secretAccessKey,
          args.database,
          args.databaseUser,
          args.pingUrl,
        ])
        .apply(([endpoint, bucket, accessKeyId, secretAccessKey, database, databaseUser, pingUrl]) =>
          renderBackupEnv({
            endpoint,
            bucket,
            accessKeyId,
            secretAccessKey,
            database,
            databaseUser,
            pgExec: `docker compose -f ${composeFile} exec -T ${service}`,
            // Inside the postgres container, on the data volume beside the database itself.
            workDir: BACKUP_SPOOL_DIR,
            // The deploy's dumps before migrations, which each good backup supersedes.
            preMigrationDir: PRE_MIGRATION_DUMP_DIR,
            pingUrl,
            uploadsDirs: args.uploadsDirs,
            drillPostgresImage: args.drill ? (args.postgresImage ?? DEFAULT_IMAGES.postgres) : undefined,
          }),
        );
      const envFile = { path: BACKUP_PATHS.envFile, mode: "0600", content: pulumi.secret(content) } as const;
      const commandName = `${name}-env`;
      shippedFiles.push(shippedFile(commandName, envFile));
      return shipFile(
        commandName,
        envFile,
        { connection, writer: "root", triggers: args.serverIdentity },
        { ...parent, dependsOn: after, deleteBeforeReplace: true },
      );
    }

    /**
     * The drill's own age identity, made on the server once and kept on the data volume: its
     * private half never leaves the server; the public half is added to every backup's recipients.
     */
    function createDrillKey(after: pulumi.Resource[]): command.remote.Command {
      const key = BACKUP_PATHS.drillIdentityFile;
      const dir = key.slice(0, key.lastIndexOf("/"));
      return new command.remote.Command(
        `${name}-drill-key`,
        {
          connection,
          create:
            `sudo install -d -m 0700 ${dir} && ` +
            `sudo sh -c 'test -s ${key} || (umask 077 && age-keygen -o ${key} 2>/dev/null)' && ` +
            `sudo age-keygen -y ${key}`,
          triggers: args.serverIdentity,
        },
        { ...parent, dependsOn: after },
      );
    }

    function enableTimers(after: pulumi.Resource[]): command.remote.Command {
      const timers = [`${BACKUP_UNIT}.timer`, ...(args.drill ? [`${DRILL_UNIT}.timer`] : [])];
      const disableDrill = args.drill
        ? ""
        : ` && (sudo systemctl disable --now ${DRILL_UNIT}.timer 2>/dev/null; sudo rm -f ${BACKUP_PATHS.unitDir}/${DRILL_UNIT}.timer; true)`;
      return new command.remote.Command(
        `${name}-timers`,
        {
          connection,
          create: `sudo systemctl daemon-reload && sudo systemctl enable --now ${timers.join(" ")}${disableDrill}`,
          triggers: [filesHash(files), ...args.serverIdentity],
        },
        { ...parent, dependsOn: after, deleteBeforeReplace: true },
      );
    }
  }
}
