/**
 * The Hetzner server: one ARM64 (CAX) machine, hardened from its first boot by cloud-init, with
 * all state on a protected Hetzner Volume and primary IPs that outlive the server.
 *
 * Cost: the server type's monthly price, €0.50 for the IPv4 address, the volume per GB, and 20% of
 * the server price when Hetzner backups are on (see `model/pricing.ts`; the resolved config's
 * `monthlyCost`).
 */
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { renderCloudInit } from "../cloud-init/render";
import { type PublicPort, SSH_PORT } from "../model/ports";
import { ADMIN_USER, DATA_DIR } from "../model/server";
import type { Tier } from "../model/tiers";

export interface ServerArgs {
  /**
   * Prefix of every resource name and the server's host name, `<app>-<stack>`.
   * @example "shop-prod"
   */
  prefix: string;
  /** The resolved tier: server type, swap size. */
  tier: Tier;
  /**
   * Hetzner location; ARM64 exists in fsn1, nbg1 and hel1.
   * @default "fsn1"
   */
  location: string;
  /**
   * Hetzner image name.
   * @default "debian-13"
   */
  image: string;
  /** OpenSSH public keys of the admins. They log in as `admin`; root login is off. */
  adminSshKeys: readonly string[];
  /**
   * Networks allowed to reach SSH through the Hetzner firewall.
   * @example ["203.0.113.0/24", "2001:db8::/48"]
   */
  sshAllowedCidrs: readonly string[];
  /** SSH comes through the tunnel too (`sshThroughTunnel`): cloud-init's fail2ban knows it. */
  sshThroughTunnel: boolean;
  /**
   * Size of the data volume in GB.
   * @default 20
   */
  volumeSizeGb: number;
  /**
   * Hetzner's own daily backups of the server disk (the volume is backed up by the backup job).
   * @default false
   */
  hetznerBackups: boolean;
  /**
   * `tunnel`: the host firewall opens SSH only; `direct`: 80/443 too.
   * @default "tunnel"
   */
  exposure: "tunnel" | "direct";
  /** The web ports the Hetzner firewall opens (none in tunnel mode). */
  publicWebPorts: readonly PublicPort[];
  /** The networks the web ports are open to: Cloudflare's proxies (`cloudflareOriginRanges`); direct mode only. */
  webSourceIps?: pulumi.Input<string[]>;
  /**
   * When unattended upgrades may reboot (HH:MM UTC).
   * @default "03:30"
   */
  autoRebootTime: string;
  /** Labels on every Hetzner resource. */
  labels: Readonly<Record<string, string>>;
}

export class Server extends pulumi.ComponentResource {
  /** Primary IPv4 address of the server. */
  readonly ipv4: pulumi.Output<string>;
  /** Primary IPv6 address of the server (the first address of its /64). */
  readonly ipv6: pulumi.Output<string>;
  /** Hetzner's numeric server id. */
  readonly serverId: pulumi.Output<number>;
  /** The data volume's stable device path on the server. */
  readonly volumeDevice: pulumi.Output<string>;
  /** Where the data volume is mounted. */
  readonly volumeMountPoint: string;
  /** Command an admin runs to log in. */
  readonly sshCommand: pulumi.Output<string>;
  /** Private half of the deploy key (OpenSSH format), for the SSH-driven deploy steps. Secret. */
  readonly deployPrivateKey: pulumi.Output<string>;
  /** Public half of the deploy key. */
  readonly deployPublicKey: pulumi.Output<string>;
  /** The resources later components depend on (the deploy steps wait for both). */
  readonly server: hcloud.Server;
  readonly volume: hcloud.Volume;
  readonly volumeAttachment: hcloud.VolumeAttachment;

  constructor(name: string, args: ServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:server:Server", name, {}, opts);
    const parent = { parent: this };
    const labels = { ...args.labels };

    const deployKey = new tls.PrivateKey(`${name}-deploy-key`, { algorithm: "ED25519" }, parent);
    const hetznerKey = registerDeployKey();
    const firewall = createFirewall();
    const { ipv4, ipv6 } = createPrimaryIps();
    const volume = createVolume();
    const server = createServer();
    const attachment = new hcloud.VolumeAttachment(
      `${name}-volume-attachment`,
      { serverId: toNumber(server.id), volumeId: toNumber(volume.id), automount: false },
      { ...parent, protect: false },
    );

    this.server = server;
    this.volume = volume;
    this.volumeAttachment = attachment;
    this.serverId = toNumber(server.id);
    this.ipv4 = ipv4.ipAddress;
    this.ipv6 = server.ipv6Address;
    this.volumeDevice = volume.linuxDevice;
    this.volumeMountPoint = DATA_DIR;
    this.sshCommand = pulumi.interpolate`ssh ${ADMIN_USER}@${ipv4.ipAddress}`;
    this.deployPrivateKey = pulumi.secret(deployKey.privateKeyOpenssh);
    this.deployPublicKey = deployKey.publicKeyOpenssh;

    this.registerOutputs({
      ipv4: this.ipv4,
      ipv6: this.ipv6,
      serverId: this.serverId,
      volumeDevice: this.volumeDevice,
      volumeMountPoint: this.volumeMountPoint,
      sshCommand: this.sshCommand,
      deployPublicKey: this.deployPublicKey,
      deployPrivateKey: this.deployPrivateKey,
    });

    /**
     * The one key registered with Hetzner: this stack's own deploy key. A server created without
     * an SSH key gets a root password mailed in plaintext; Hetzner puts the key on root, whose
     * login sshd refuses. Not the admins' keys: a Hetzner project refuses a second key with the
     * same fingerprint, so prod and staging sharing admins (or a project where an admin uploaded
     * their key already) could not both register them. The admins' keys reach `admin` through
     * cloud-init and HostConfig instead.
     */
    function registerDeployKey(): hcloud.SshKey {
      return new hcloud.SshKey(
        `${name}-deploy-ssh-key`,
        { name: `${args.prefix}-deploy`, publicKey: deployKey.publicKeyOpenssh.apply((k) => k.trim()), labels },
        parent,
      );
    }

    function createFirewall(): hcloud.Firewall {
      return new hcloud.Firewall(
        `${name}-firewall`,
        {
          name: args.prefix,
          labels,
          rules: pulumi
            .output(args.webSourceIps ?? [])
            .apply((ips) => firewallRules(args.publicWebPorts, args.sshAllowedCidrs, ips)),
        },
        parent,
      );
    }

    function createPrimaryIps() {
      // Primary IPs are separate resources with autoDelete off, so a replaced server keeps its
      // addresses (and the DNS records and allow-lists that name them stay right).
      const primaryIp = (type: "ipv4" | "ipv6") =>
        new hcloud.PrimaryIp(
          `${name}-${type}`,
          {
            name: `${args.prefix}-${type}`,
            type,
            location: args.location,
            assigneeType: "server",
            autoDelete: false,
            labels,
          },
          parent,
        );
      return { ipv4: primaryIp("ipv4"), ipv6: primaryIp("ipv6") };
    }

    function createVolume(): hcloud.Volume {
      return new hcloud.Volume(
        `${name}-data`,
        {
          name: `${args.prefix}-data`,
          size: args.volumeSizeGb,
          location: args.location,
          format: "ext4",
          automount: false,
          deleteProtection: true,
          labels,
        },
        // The volume holds every byte of state: Pulumi refuses to delete or replace it.
        { ...parent, protect: true },
      );
    }

    function createServer(): hcloud.Server {
      const userData = pulumi
        .all([deployKey.publicKeyOpenssh, volume.linuxDevice])
        .apply(([deployPublicKey, volumeDevice]) =>
          renderCloudInit({
            hostname: args.prefix,
            adminSshKeys: args.adminSshKeys,
            deployPublicKey: deployPublicKey.trim(),
            exposure: args.exposure,
            swapMb: args.tier.swapMb,
            volumeDevice,
            autoRebootTime: args.autoRebootTime,
            sshAllowedCidrs: args.sshAllowedCidrs,
            sshThroughTunnel: args.sshThroughTunnel,
          }),
        );
      return new hcloud.Server(
        `${name}-server`,
        {
          name: args.prefix,
          serverType: args.tier.serverType,
          image: args.image,
          location: args.location,
          sshKeys: [hetznerKey.id],
          firewallIds: [toNumber(firewall.id)],
          userData,
          publicNets: [{ ipv4Enabled: true, ipv4: toNumber(ipv4.id), ipv6Enabled: true, ipv6: toNumber(ipv6.id) }],
          labels,
          backups: args.hetznerBackups,
          // keepDisk: a tier change resizes CPU and RAM but keeps the disk, so the change can be
          // undone (Hetzner cannot shrink a grown disk).
          keepDisk: true,
          shutdownBeforeDeletion: true,
          deleteProtection: true,
          rebuildProtection: true,
        },
        {
          ...parent,
          protect: true,
          // Editing cloud-init, the image or the admin keys must never replace a running server:
          // later changes are pushed over SSH.
          ignoreChanges: ["userData", "image", "sshKeys"],
        },
      );
    }
  }
}

export interface FirewallRuleSpec {
  direction: "in";
  protocol: "tcp" | "udp" | "icmp";
  port?: string;
  sourceIps: string[];
  description: string;
}

const ANYWHERE = ["0.0.0.0/0", "::/0"];

/**
 * The Hetzner firewall rules: SSH from the admin networks, ICMP, and the public web ports (direct
 * mode's) from `webSourceIps`, Cloudflare's proxies.
 */
export function firewallRules(
  publicWebPorts: readonly PublicPort[],
  sshAllowedCidrs: readonly string[],
  webSourceIps: readonly string[],
): FirewallRuleSpec[] {
  if (publicWebPorts.length > 0 && webSourceIps.length === 0) {
    throw new Error("firewallRules: the web ports need the networks they are open to (Cloudflare's ranges)");
  }
  // No admin network (sshThroughTunnel): no SSH rule at all, port 22 closed to the Internet.
  const ssh: FirewallRuleSpec[] =
    sshAllowedCidrs.length === 0
      ? []
      : [
          {
            direction: "in",
            protocol: "tcp",
            port: String(SSH_PORT),
            sourceIps: [...sshAllowedCidrs],
            description: "SSH from admin networks",
          },
        ];
  const rules: FirewallRuleSpec[] = [
    ...ssh,
    { direction: "in", protocol: "icmp", sourceIps: ANYWHERE, description: "ICMP (ping, path MTU discovery)" },
  ];
  for (const { port, protocol, description } of publicWebPorts) {
    rules.push({
      direction: "in",
      protocol,
      port: String(port),
      sourceIps: [...webSourceIps],
      description: `${description} from Cloudflare`,
    });
  }
  return rules;
}

function toNumber(id: pulumi.Input<string>): pulumi.Output<number> {
  return pulumi.output(id).apply((v) => Number.parseInt(v, 10));
}
