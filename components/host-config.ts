/**
 * The host's configuration after first boot: cloud-init writes the hardening and system files
 * once (the server ignores changes to its user data, so editing them never replaces it); this
 * component pushes the same files (`hostFiles`) and the admins' SSH keys to the running server
 * over SSH, each re-shipped when its content changes or the server is new, then reloads what
 * reads them. A fix to the sshd drop-in, sysctl, fail2ban, journald or the admin keys reaches
 * every server, not only those built after it. A switch of exposure mode also brings the host
 * firewall (ufw) and Docker's published-port filter to the new mode, and a bigger `volumeSizeGb`
 * grows the data volume's file system once Hetzner has grown the device; a tier change resizes
 * the swap file to the new tier's. Files that sshd or Docker would refuse are put back (`check`).
 *
 * Docker's own settings (daemon.json, its drop-ins) are written too but take effect at Docker's
 * next start (a reboot, an upgrade of docker.io): restarting the engine under a running stack is
 * not a deploy step.
 *
 * Cost: nothing; a few seconds of SSH when a file changes.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { sha256 } from "../backup/render";
import {
  adminAuthorizedKeys,
  dataVolumeGrowCommand,
  type HostFilesInput,
  hostFiles,
  hostFirewallScript,
  swapResizeCommand,
} from "../cloud-init/render";
import { ADMIN_USER, DEPLOY_USER } from "../model/server";
import { filesHash, pathSlug, type ShippedFile, shipFile, shippedFile } from "./ship-file";

export interface HostConfigArgs {
  /** SSH connection of the deploy user (passwordless sudo). The private key is a secret. */
  connection: { host: pulumi.Input<string>; privateKey: pulumi.Input<string> };
  /** The exposure, reboot window and admin networks the host files are rendered for (as cloud-init's). */
  exposure: HostFilesInput["exposure"];
  autoRebootTime: string;
  sshAllowedCidrs: readonly string[];
  /** SSH comes through the tunnel too (fail2ban never bans cloudflared's container). */
  sshThroughTunnel: boolean;
  /** OpenSSH public keys of the admins (`admin`'s authorized_keys). */
  adminSshKeys: readonly string[];
  /**
   * The data volume: its device path on the server, its size in config, and the hcloud Volume
   * (whose size update grows the device; the file system is grown after it).
   */
  dataVolume: { device: pulumi.Input<string>; sizeGb: number; resource: pulumi.Resource };
  /** The tier's swap size in MiB (a tier change resizes the swap file). */
  swapMb: number;
  /** Values that change when the server is new: everything is pushed again to a rebuilt server. */
  serverIdentity: pulumi.Input<string>[];
  /** What must be done first: the server's first boot (AppStack's `serverReady`). */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

export class HostConfig extends pulumi.ComponentResource {
  /** Every file it keeps in step on the server, with the command that ships it. */
  readonly shipped: readonly ShippedFile[];

  constructor(name: string, args: HostConfigArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:host:HostConfig", name, {}, opts);
    const parent = { parent: this };
    const connection = {
      host: args.connection.host,
      user: DEPLOY_USER,
      privateKey: pulumi.secret(args.connection.privateKey),
    };
    const keysFile = {
      path: `/home/${ADMIN_USER}/.ssh/authorized_keys`,
      mode: "0600" as const,
      content: adminAuthorizedKeys(args.adminSshKeys),
      owner: ADMIN_USER,
    };
    const rendered = hostFiles({
      exposure: args.exposure,
      autoRebootTime: args.autoRebootTime,
      sshAllowedCidrs: args.sshAllowedCidrs,
      sshThroughTunnel: args.sshThroughTunnel,
    });
    const files = [
      ...rendered.map((f) => ({ path: f.path, mode: f.permissions, content: f.content, check: f.check })),
      keysFile,
    ];

    const report: ShippedFile[] = [];
    const shipped = files.map((file) => {
      const commandName = `${name}-file-${pathSlug(file.path)}`;
      report.push(shippedFile(commandName, file));
      return shipFile(
        commandName,
        file,
        { connection, writer: "root", triggers: [sha256(file.content), ...args.serverIdentity] },
        { ...parent, dependsOn: args.dependsOn },
      );
    });
    const reload = reloadServices(shipped);
    const firewall = applyFirewall(shipped);
    const grow = growDataVolume(shipped);
    const swap = resizeSwap(shipped);

    this.shipped = report;
    this.registerOutputs({ shipped: report, reload: reload.id, firewall: firewall.id, grow: grow.id, swap: swap.id });

    /** Re-read what the files configure; re-run when any file changes or the server is new. */
    function reloadServices(after: command.remote.Command[]): command.remote.Command {
      return new command.remote.Command(
        `${name}-reload`,
        {
          connection,
          create: RELOAD_COMMAND,
          triggers: [filesHash(files), ...args.serverIdentity],
        },
        { ...parent, dependsOn: after },
      );
    }

    /**
     * The host firewall and Docker's published-port filter for the exposure mode: cloud-init set
     * them for the mode the server was built in; this follows a switch between tunnel and direct.
     */
    function applyFirewall(after: command.remote.Command[]): command.remote.Command {
      const script = hostFirewallScript(args.exposure);
      return new command.remote.Command(
        `${name}-firewall`,
        { connection, create: script, triggers: [sha256(script), ...args.serverIdentity] },
        { ...parent, dependsOn: after },
      );
    }

    /**
     * The volume's file system grown to the device, online, after Hetzner resized the device
     * (re-run when `volumeSizeGb` changes or the server is new). Shrinking is refused by Hetzner.
     */
    function growDataVolume(after: command.remote.Command[]): command.remote.Command {
      const { device, sizeGb, resource } = args.dataVolume;
      return new command.remote.Command(
        `${name}-grow-data-volume`,
        {
          connection,
          create: pulumi.output(device).apply(dataVolumeGrowCommand),
          triggers: [sizeGb, ...args.serverIdentity],
        },
        { ...parent, dependsOn: [...after, resource] },
      );
    }

    /** The swap file made as big as the tier's (first boot made it for the tier of then). */
    function resizeSwap(after: command.remote.Command[]): command.remote.Command {
      return new command.remote.Command(
        `${name}-swap`,
        { connection, create: swapResizeCommand(args.swapMb), triggers: [args.swapMb, ...args.serverIdentity] },
        { ...parent, dependsOn: after },
      );
    }
  }
}

/**
 * sshd checks its configuration before it reloads (a broken drop-in fails the update and the
 * running sshd keeps its old settings); the kernel settings, journald and fail2ban (when it is
 * installed and enabled) read theirs again; systemd re-reads changed units and drop-ins.
 */
export const RELOAD_COMMAND = [
  "set -eu",
  "sudo sshd -t",
  "sudo systemctl daemon-reload",
  "sudo systemctl reload ssh",
  "sudo sysctl --system >/dev/null",
  "sudo systemctl restart systemd-journald",
  "if systemctl is-enabled --quiet fail2ban 2>/dev/null; then sudo systemctl reload-or-restart fail2ban; fi",
].join("\n");
