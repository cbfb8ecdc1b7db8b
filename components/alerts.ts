/**
 * Alerts: on the server, a sender (alert.sh) that the backup's and the drill's `OnFailure=` and a
 * failed deploy call, and a health check every minute (systemd timer) that restarts unhealthy
 * containers and alerts on restart loops, full disks, OOM kills, a reboot left pending and the
 * tunnel connector down. Outside it, on Cloudflare, a Worker with an hourly cron trigger reads the
 * age of the last backup in the backups bucket: a backup that did not happen raises the alarm even
 * when the server is dead (a dead man's switch).
 *
 * The channel's URL is a secret: it reaches the server only in /etc/webstack/alerts/alerts.env
 * (0600, root, shipped on stdin) and the Worker only as a secret binding. Without `webstack:alerts`
 * the server's part is installed all the same (restarts, and every alert in the journal), and no
 * Worker is made.
 *
 * Cost: nothing. The Worker's hourly run is far inside the Workers free plan (100,000 requests a
 * day); the Cloudflare API token Pulumi runs with needs "Workers Scripts: Edit" for it.
 */
import * as cloudflare from "@pulumi/cloudflare";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ALERT_PATHS, alertFiles, deadMansSwitchScript, HEALTH_UNIT, renderAlertsEnv } from "../alerts/render";
import { sha256 } from "../backup/render";
import { type AlertsConfig, DEFAULT_DISK_PERCENT } from "../config/alerts";
import { DEPLOY_USER } from "../model/server";
import { filesHash, pathSlug, type ShippedFile, shipFile, shippedFile } from "./ship-file";

/** When the Worker looks at the backups: every hour, at a minute no one else picks. */
export const DEAD_MANS_SWITCH_CRON = "17 * * * *";
/** The Workers runtime's behaviour the Worker is written for. */
const COMPATIBILITY_DATE = "2026-11-01";

export interface AlertsArgs {
  /** SSH connection of the deploy user (passwordless sudo). The private key is a secret. */
  connection: { host: pulumi.Input<string>; privateKey: pulumi.Input<string> };
  /** `webstack:alerts`; absent: the journal only, and no Worker. */
  alerts?: AlertsConfig;
  /** The channel's URL (a secret), with `alerts`. */
  url?: pulumi.Input<string>;
  /** `<app>-<stack>`: in every title, and the Worker's name. */
  prefix: string;
  /** The compose file of the app stack on the server. */
  composeFile: string;
  /** The tunnel connector's compose service; absent in direct mode. */
  tunnelService?: string;
  /** The Cloudflare account, and the backups bucket the Worker reads (with its jurisdiction). */
  accountId: string;
  backupsBucket: pulumi.Input<string>;
  jurisdiction: "default" | "eu";
  /** Values that change when the server is new: everything is installed again on a rebuilt server. */
  serverIdentity: pulumi.Input<string>[];
  /** What must be done first: the server's first boot. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

export class Alerts extends pulumi.ComponentResource {
  /** Every file it ships (the environment file included), with the command that ships it. */
  readonly shipped: readonly ShippedFile[];
  /** The dead man's switch's Worker name; absent without `webstack:alerts`. */
  readonly deadMansSwitch?: pulumi.Output<string>;

  constructor(name: string, args: AlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:alerts:Alerts", name, {}, opts);
    const parent = { parent: this };
    const connection = {
      host: args.connection.host,
      user: DEPLOY_USER,
      privateKey: pulumi.secret(args.connection.privateKey),
    };

    const shipped: ShippedFile[] = [];
    const files = alertFiles();
    const installed = files.map((file) => {
      const commandName = `${name}-file-${pathSlug(file.path)}`;
      shipped.push(shippedFile(commandName, file));
      return shipFile(
        commandName,
        file,
        { connection, writer: "root", triggers: [sha256(file.content), ...args.serverIdentity] },
        { ...parent, dependsOn: args.dependsOn },
      );
    });
    const envFile = installEnvFile();
    const timer = enableHealthTimer([...installed, envFile]);
    const worker = args.alerts && args.url ? createDeadMansSwitch(args.alerts, args.url) : undefined;

    this.shipped = shipped;
    this.deadMansSwitch = worker?.scriptName;
    this.registerOutputs({ shipped, timer: timer.id, deadMansSwitch: this.deadMansSwitch });

    function installEnvFile(): command.remote.Command {
      const content = pulumi.output(args.url).apply((url) =>
        renderAlertsEnv({
          channel: args.alerts?.channel,
          url,
          email: args.alerts?.email,
          stack: args.prefix,
          diskPercent: args.alerts?.diskPercent ?? DEFAULT_DISK_PERCENT,
          tunnelService: args.tunnelService,
          composeFile: args.composeFile,
        }),
      );
      const file = { path: ALERT_PATHS.envFile, mode: "0600", content: pulumi.secret(content) } as const;
      const commandName = `${name}-env`;
      shipped.push(shippedFile(commandName, file));
      return shipFile(
        commandName,
        file,
        { connection, writer: "root", triggers: args.serverIdentity },
        { ...parent, dependsOn: args.dependsOn },
      );
    }

    /** The timer enabled once its units are in place; re-run when a unit changes or the server is new. */
    function enableHealthTimer(after: command.remote.Command[]): command.remote.Command {
      return new command.remote.Command(
        `${name}-timer`,
        {
          connection,
          create: `sudo systemctl daemon-reload && sudo systemctl enable --now ${HEALTH_UNIT}.timer`,
          triggers: [filesHash(files), ...args.serverIdentity],
        },
        { ...parent, dependsOn: after },
      );
    }

    /**
     * The Worker that reads `latest.json`'s age in the backups bucket every hour and alerts when it
     * is older than `backupMaxAgeHours` (alerts/dead-mans-switch.js). It keeps its own small state
     * object at the bucket's root, outside the locked prefixes.
     */
    function createDeadMansSwitch(alerts: AlertsConfig, url: pulumi.Input<string>): cloudflare.WorkersScript {
      const script = new cloudflare.WorkersScript(
        `${name}-dead-mans-switch`,
        {
          accountId: args.accountId,
          scriptName: `${args.prefix}-dead-mans-switch`,
          content: deadMansSwitchScript(),
          mainModule: "dead-mans-switch.js",
          compatibilityDate: COMPATIBILITY_DATE,
          bindings: [
            {
              name: "BACKUPS",
              type: "r2_bucket",
              bucketName: args.backupsBucket,
              ...(args.jurisdiction === "eu" ? { jurisdiction: "eu" } : {}),
            },
            { name: "ALERT_URL", type: "secret_text", text: pulumi.secret(url) },
            { name: "ALERT_CHANNEL", type: "plain_text", text: alerts.channel },
            ...(alerts.email ? [{ name: "ALERT_EMAIL", type: "plain_text", text: alerts.email }] : []),
            { name: "STACK", type: "plain_text", text: args.prefix },
            { name: "BUCKET", type: "plain_text", text: args.backupsBucket },
            { name: "MAX_AGE_HOURS", type: "plain_text", text: String(alerts.backupMaxAgeHours) },
          ],
        },
        parent,
      );
      new cloudflare.WorkersCronTrigger(
        `${name}-dead-mans-switch-cron`,
        { accountId: args.accountId, scriptName: script.scriptName, schedules: [{ cron: DEAD_MANS_SWITCH_CRON }] },
        parent,
      );
      return script;
    }
  }
}
