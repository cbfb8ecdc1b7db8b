/**
 * Facts of the server every layer agrees on: where state lives and who logs in. cloud-init creates
 * the users and mounts the volume; the deploy steps and the backups rely on both.
 */

/**
 * Where the Hetzner Volume is mounted; every piece of state lives below it. The static files of
 * cloud-init (the mount units) and the backup services (`RequiresMountsFor=`) say the same path.
 */
export const DATA_DIR = "/srv/data";

/**
 * Where the app stack lives: on the data volume, so a rebuilt server finds it. A parameter only
 * for the Docker end-to-end test, which renders the stack into a scratch directory.
 */
export function appDir(dataDir: string = DATA_DIR): string {
  return `${dataDir}/app`;
}

/**
 * The uploads directory of `webstack:uploads`, on the data volume: the writer services mount it,
 * Caddy serves it read-only, the backups archive it. A parameter only for the end-to-end test.
 */
export function uploadsDir(dataDir: string = DATA_DIR): string {
  return `${dataDir}/uploads`;
}

/**
 * The group that may write the uploads directory: every writer service gets it as a supplementary
 * group (`group_add`), and the deploy gives the directory to it (setgid, with a default ACL), so a
 * writer running as any user can write, and so can another writer under another user. A number,
 * not a name: the containers' /etc/group does not know it. Above the host's and images' usual ids.
 */
export const UPLOADS_GID = 10001;

/** Users who may log in over SSH; the sshd drop-in lists the same two names. */
export const ADMIN_USER = "admin";
/** The user the deploy steps and the backups' install run as (docker group, passwordless sudo). */
export const DEPLOY_USER = "deploy";

/**
 * How long the first deploy step waits for a new (or power-cycled) server: cloud-init's first boot
 * (3-5 min on a CAX server; 25 min in the TCG VM here), then the data volume and Docker.
 */
export const SERVER_READY_TIMEOUT_SECONDS = 1800;
