/**
 * The app stack on the server: ships the rendered compose file, Caddyfile, deploy script and a
 * 0600 `.env` over SSH as the deploy user, then runs the deploy script (pull, migration,
 * `docker compose up -d --wait`, prune, rollback on failure).
 *
 * Secrets (the generated Postgres and Redis passwords, the tunnel token, the app secrets) reach
 * the server only inside the `.env` text, which travels as a Pulumi secret on the SSH session's
 * stdin: never in a command line, a trigger or an output. The deploy re-runs when and only when
 * what it ships changes (the content hash of the files, a hash of the `.env` kept secret) or the
 * server is replaced.
 *
 * Cost: nothing beyond the server; the images come from the registries the config names.
 */

import { createHash } from "node:crypto";
import * as command from "@pulumi/command";
import type * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderDotenv } from "../compose/dotenv";
import { renderRegistryLogins } from "../compose/registry-logins";
import { type AppStackConfig, deployEnvironment, renderStackFiles } from "../compose/stack-files";
import { appSecretNames } from "../config/app";
import { POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY, TUNNEL_TOKEN_KEY } from "../model/env";
import { appDir, DATA_DIR, DEPLOY_USER, SERVER_READY_TIMEOUT_SECONDS } from "../model/server";
import { type RemoteFile, type ShippedFile, shipFile, shippedFile, shq } from "./ship-file";

export interface AppStackArgs {
  /** The resolved stack config (services, routes, tier, images). */
  config: AppStackConfig;
  /** Address the deploy commands connect to. */
  host: pulumi.Input<string>;
  /** Private half of the deploy key (OpenSSH format). Secret. */
  privateKey: pulumi.Input<string>;
  /**
   * The Cloudflare tunnel's connector token (secret); required in tunnel mode, ignored in direct
   * mode. cloudflared reads it from `.env`.
   */
  tunnelToken: pulumi.Input<string> | undefined;
  /** App secret values by name (`secrets:<NAME>` config keys), each a Pulumi secret. */
  appSecrets: Readonly<Record<string, pulumi.Input<string>>>;
  /** Registry passwords by the name of their `secrets:<NAME>` key, each a Pulumi secret. */
  registryPasswords: Readonly<Record<string, pulumi.Input<string>>>;
  /** The server and the attachment of its data volume: nothing is shipped before both exist. */
  server: hcloud.Server;
  volumeAttachment: hcloud.VolumeAttachment;
}

export class AppStack extends pulumi.ComponentResource {
  /** sha256 of the shipped files (compose.yaml, Caddyfile, scripts); names the release directory. */
  readonly contentHash: string;
  /** The release directory on the server. */
  readonly releaseDir: string;
  /** The deploy command (other components that need the running stack depend on it). */
  readonly deploy: command.remote.Command;
  /**
   * Values that change when the server is new (its id, its volume attachment's id): what is
   * installed on the server is installed again on a rebuilt one.
   */
  readonly serverIdentity: pulumi.Output<string>[];
  /** The first step on a new server: cloud-init's first boot is over, the volume and Docker are up. */
  readonly serverReady: command.remote.Command;
  /** Every file it ships (the .env included), with the command that ships it. */
  readonly shipped: readonly ShippedFile[];

  constructor(name: string, args: AppStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:app:AppStack", name, {}, opts);
    const parent = { parent: this };
    const { config } = args;
    if (config.exposure === "tunnel" && args.tunnelToken === undefined) {
      throw new Error("AppStack: tunnel exposure needs the tunnel token (args.tunnelToken)");
    }
    const missing = appSecretNames(config.services).filter((n) => !(n in args.appSecrets));
    if (missing.length > 0) throw new Error(`AppStack: no value for the app secrets ${missing.join(", ")}`);

    const { files, contentHash } = renderStackFiles(config);
    const app = appDir();
    const releaseDir = `${app}/releases/${contentHash.slice(0, 16)}`;
    const connection = {
      host: args.host,
      user: DEPLOY_USER,
      privateKey: args.privateKey,
      // A fresh server answers SSH before cloud-init has created the deploy user: keep retrying.
      dialErrorLimit: 60,
    };
    const serverIdentity = [args.server.id, args.volumeAttachment.id];
    // A new server type is a power cycle: wait for the volume and Docker again before deploying.
    const serverReadyTriggers = [...serverIdentity, args.server.serverType];
    const after = { ...parent, dependsOn: [args.server, args.volumeAttachment] };

    const serverReady = waitForServer();
    const passwords = generatePasswords();
    const envText = dotenvText();
    const loginsText = registryLoginsText();
    const shippedFiles: ShippedFile[] = [];
    const shipped = Object.entries(files).map(([file, text]): [string, RemoteFile] => [
      file.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase(),
      { path: `${releaseDir}/${file}`, mode: file.endsWith(".sh") ? "0755" : "0644", content: text },
    ]);
    const uploads = [
      ...shipped.map(([slug, file]) => ship(slug, file)),
      ship("env", { path: `${releaseDir}/.env`, mode: "0600", content: envText }),
      ship("registries", { path: `${releaseDir}/.registries`, mode: "0600", content: loginsText }),
    ];
    const deploy = runDeploy();

    this.contentHash = contentHash;
    this.releaseDir = releaseDir;
    this.deploy = deploy;
    this.serverIdentity = serverIdentity;
    this.serverReady = serverReady;
    this.shipped = shippedFiles;
    this.registerOutputs({ contentHash, releaseDir, shipped: shippedFiles });

    function waitForServer(): command.remote.Command {
      return new command.remote.Command(
        `${name}-server-ready`,
        { connection, create: serverReadyCommand(app, SERVER_READY_TIMEOUT_SECONDS), triggers: serverReadyTriggers },
        after,
      );
    }

    function generatePasswords() {
      // Letters and digits only: they go into URLs (DATABASE_URL, REDIS_URL) unescaped.
      const password = (what: string) =>
        new random.RandomPassword(`${name}-${what}-password`, { length: 40, special: false }, parent);
      return { postgres: password("postgres"), redis: password("redis") };
    }

    function dotenvText(): pulumi.Output<string> {
      const values: Record<string, pulumi.Input<string>> = {
        [POSTGRES_PASSWORD_KEY]: passwords.postgres.result,
        [REDIS_PASSWORD_KEY]: passwords.redis.result,
        ...args.appSecrets,
      };
      if (config.exposure === "tunnel") values[TUNNEL_TOKEN_KEY] = args.tunnelToken!;
      return pulumi.secret(pulumi.all(values).apply((v) => renderDotenv(v)));
    }

    function registryLoginsText(): pulumi.Output<string> {
      return pulumi.secret(
        pulumi.all({ ...args.registryPasswords }).apply((p) => renderRegistryLogins(config.registries, p)),
      );
    }

    /** Ship one file of the release (the .env as 0600: never readable by anyone but the deploy user). */
    function ship(slug: string, remote: RemoteFile): command.remote.Command {
      const commandName = `${name}-ship-${slug}`;
      shippedFiles.push(shippedFile(commandName, remote));
      return shipFile(
        commandName,
        remote,
        { connection, writer: "deploy", triggers: [contentHash, ...serverIdentity] },
        { ...parent, dependsOn: [serverReady] },
      );
    }

    function runDeploy(): command.remote.Command {
      // A hash of the secret .env and registry logins, itself kept secret (the state encrypts it):
      // a rotated secret redeploys without the hash of a weak secret ever being stored in the clear.
      const envHash = pulumi.secret(
        pulumi.all([envText, loginsText]).apply(([env, logins]) => {
          const hash = createHash("sha256").update(env);
          // Without registries the hash is the .env's alone, as before registries existed.
          if (logins !== "") hash.update("\0").update(logins);
          return hash.digest("hex");
        }),
      );
      // Unquoted when plain, so the command of a stack without uploads or a migration stays the
      // `WAIT_TIMEOUT=300 bash …` earlier releases ran: no update on the first `pulumi up` after.
      const environment = Object.entries(deployEnvironment(config))
        .map(([key, value]) => `${key}=${/^[\w./:-]+$/.test(value) ? value : shq(value)}`)
        .join(" ");
      return new command.remote.Command(
        `${name}-deploy`,
        {
          connection,
          create: `${environment} bash ${shq(`${releaseDir}/scripts/deploy.sh`)} ${shq(app)} ${shq(releaseDir)}`,
          triggers: [contentHash, envHash, ...serverIdentity],
          // No delete command: replacing this resource must never take the running stack down.
        },
        { ...parent, dependsOn: uploads },
      );
    }
  }
}

/**
 * Wait for the server to be ready for the stack, or fail saying why: cloud-init's first boot has
 * finished (an error fails with its status and the end of its log; a degraded boot, which Debian's
 * deprecation notices can cause, is reported and accepted), the data volume is mounted and the
 * Docker engine answers (again after a power cycle). All within `timeoutSeconds`. Then the app
 * directory on the volume becomes the deploy user's.
 */
export function serverReadyCommand(app: string, timeoutSeconds: number): string {
  const report = [
    "cloud-init status --long >&2 || true",
    "echo '--- the end of /var/log/cloud-init-output.log:' >&2",
    "sudo -n tail -n 60 /var/log/cloud-init-output.log >&2 || true",
  ].join("; ");
  return [
    "set -u",
    `deadline=$(( $(date +%s) + ${timeoutSeconds} ))`,
    "rc=0",
    `timeout ${timeoutSeconds} cloud-init status --wait >/dev/null 2>&1 || rc=$?`,
    `if [ "$rc" -eq 124 ]; then echo "server-ready: cloud-init's first boot did not finish within ${timeoutSeconds} s" >&2; ${report}; exit 1; fi`,
    `if [ "$rc" -eq 2 ]; then echo "server-ready: cloud-init finished degraded (recoverable errors):" >&2; cloud-init status --long >&2 || true; fi`,
    `if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then echo "server-ready: cloud-init's first boot failed (exit $rc)" >&2; ${report}; exit 1; fi`,
    `until mountpoint -q ${shq(DATA_DIR)} && docker info >/dev/null 2>&1; do`,
    `  if [ "$(date +%s)" -ge "$deadline" ]; then echo "server-ready: the data volume (${DATA_DIR}) or Docker is not up after ${timeoutSeconds} s" >&2; systemctl --no-pager --failed >&2 || true; exit 1; fi`,
    "  sleep 2",
    "done",
    "docker compose version >/dev/null",
    // The volume's directories belong to root; the app directory becomes the deploy user's.
    `sudo -n install -d -o ${DEPLOY_USER} -g ${DEPLOY_USER} -m 0750 ${shq(app)}`,
  ].join("\n");
}
