/**
 * The cloud-init renderer: typed input in, `#cloud-config` text out. Pure: no Pulumi, no clock,
 * no randomness, so the same input always gives byte-identical text.
 *
 * cloud-init does only what a fresh server needs once: users, SSH, the host firewall, updates,
 * sysctl, Docker and the data volume. Everything that changes later is pushed over SSH. The
 * user data holds no secret: the server (and anything on it that can reach the metadata
 * service) can read it back at any time.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ini from "ini";
import * as ipaddr from "ipaddr.js";
import { stringify } from "yaml";
import { publicWebPorts, SSH_PORT } from "../model/ports";
import { ADMIN_USER, DEPLOY_USER } from "../model/server";

export interface CloudInitInput {
  /** Host name of the server, e.g. `shop-prod`. */
  readonly hostname: string;
  /** OpenSSH public keys of the admins; they log in as `admin` and may sudo. */
  readonly adminSshKeys: readonly string[];
  /** Public half of the program's deploy key; the deploy steps log in as `deploy`. */
  readonly deployPublicKey: string;
  /** `tunnel` opens only SSH in the host firewall; `direct` opens 80/443 too. */
  readonly exposure: "tunnel" | "direct";
  /** Size of the swap file on the local disk, in MiB. */
  readonly swapMb: number;
  /**
   * Stable device path of the data volume: the Hetzner Volume's `linuxDevice`
   * (`/dev/disk/by-id/scsi-0HC_Volume_<id>`) in production, the test VM's disk in tests.
   */
  readonly volumeDevice: string;
  /** HH:MM (UTC) at which unattended upgrades may reboot when a patch needs it. */
  readonly autoRebootTime: string;
  /** The admins' networks (the Hetzner firewall's SSH sources): fail2ban never bans them. */
  readonly sshAllowedCidrs: readonly string[];
  /**
   * SSH also comes through the tunnel: cloudflared's container connects to sshd, so its address
   * (in Docker's pools) must never be banned, or one bad login would cut CI off for everyone.
   */
  readonly sshThroughTunnel?: boolean;
}

const FILES_DIR = join(__dirname, "files");

/** A static file shipped with the renderer, by its name under `cloud-init/files/`. */
export function staticFile(name: string): string {
  return readFileSync(join(FILES_DIR, name), "utf8");
}

/** Docker's daemon settings: rotated logs, containers that survive a daemon restart. */
export function dockerDaemonConfig(): Record<string, unknown> {
  return {
    "log-driver": "local",
    "log-opts": { "max-size": "20m", "max-file": "5" },
    "live-restore": true,
    "userland-proxy": false,
    "no-new-privileges": true,
    "default-ulimits": { nofile: { Name: "nofile", Soft: 65536, Hard: 65536 } },
  };
}

/** Unattended upgrades: security updates daily, a reboot in the maintenance window when needed. */
export function unattendedUpgradesLocal(rebootTime: string): string {
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(rebootTime)) {
    throw new Error(`autoRebootTime must be HH:MM, got ${JSON.stringify(rebootTime)}`);
  }
  return [
    "// Installed by cloud-init as /etc/apt/apt.conf.d/52unattended-upgrades-local.",
    "// Debian's 50unattended-upgrades already limits upgrades to the security archive; this adds",
    "// the reboot window and the clean-up.",
    'Unattended-Upgrade::Automatic-Reboot "true";',
    'Unattended-Upgrade::Automatic-Reboot-WithUsers "true";',
    `Unattended-Upgrade::Automatic-Reboot-Time "${rebootTime}";`,
    'Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";',
    'Unattended-Upgrade::Remove-Unused-Dependencies "true";',
    'Unattended-Upgrade::SyslogEnable "true";',
    "",
  ].join("\n");
}

/** The ports the host firewall opens in each exposure mode: SSH, and the mode's web ports. */
export function hostFirewallPorts(exposure: CloudInitInput["exposure"]): string[] {
  return [`${SSH_PORT}/tcp`, ...publicContainerPorts(exposure)];
}

/** The ports on which containers may be reached from outside: the mode's public web ports, never SSH. */
export function publicContainerPorts(exposure: CloudInitInput["exposure"]): string[] {
  return publicWebPorts(exposure).map(({ port, protocol }) => `${port}/${protocol}`);
}

/**
 * The shell script that brings a running server's host firewall to an exposure mode (what first
 * boot's runcmd did for the mode it was built in): ufw allows the mode's ports and no longer the
 * other web ports, and Docker's DOCKER-USER chain is filled again from
 * /etc/default/docker-published-ports, which must be in place first. Safe to run again.
 */
export function hostFirewallScript(exposure: CloudInitInput["exposure"]): string {
  const open = hostFirewallPorts(exposure);
  const closed = hostFirewallPorts("direct").filter((port) => !open.includes(port));
  return [
    "set -eu",
    ...open.map((port) => `sudo ufw allow ${port} >/dev/null`),
    ...closed.map((port) => `sudo ufw delete allow ${port} >/dev/null`),
    "sudo sh -c '. /etc/default/docker-published-ports && exec /usr/local/sbin/docker-published-ports $PUBLIC_PORTS'",
    "",
  ].join("\n");
}

/**
 * /etc/default/docker-published-ports, read by Docker's unit. One shell-style assignment of
 * port/proto words taken from `hostFirewallPorts`, so no value needs quoting beyond the line's own.
 */
export function dockerPublishedPortsEnv(exposure: CloudInitInput["exposure"]): string {
  return [
    "# Installed by cloud-init: the only ports on which containers may be reached from outside.",
    `PUBLIC_PORTS="${publicContainerPorts(exposure).join(" ")}"`,
    "",
  ].join("\n");
}

/**
 * Packages installed at first boot, all from Debian 13's own archive, without their Recommends
 * (`apt-no-recommends`): what the server needs is listed here by name. That keeps first boot
 * short and the attack surface small (docker.io alone recommends git, criu, needrestart's Perl
 * and more). docker-cli and apparmor are only Recommends of docker.io, so they are named: the
 * `docker` command, and the profile Docker confines containers with on Debian's AppArmor kernel.
 */
export const PACKAGES = [
  "docker.io",
  "docker-cli",
  "docker-compose",
  "apparmor",
  "ufw",
  "nftables",
  "fail2ban",
  "python3-systemd",
  "unattended-upgrades",
  "apt-listchanges",
  // Per-user temporary directories for login sessions, password quality should an account ever
  // get a password, and process accounting for after an incident.
  "libpam-tmpdir",
  "libpam-passwdqc",
  "acct",
  "e2fsprogs",
  "ca-certificates",
  "curl",
  "jq",
] as const;

/**
 * Grow the data volume's file system to its device, online (the script is one of the host
 * files): what the host configuration runs after Hetzner grew the volume.
 */
export function dataVolumeGrowCommand(volumeDevice: string): string {
  return `sudo /usr/local/sbin/data-volume-grow ${volumeDevice}`;
}

/** Make the swap file `swapMb` big on a running server (a tier change); nothing if it is already. */
export function swapResizeCommand(swapMb: number): string {
  if (!Number.isInteger(swapMb) || swapMb <= 0)
    throw new Error(`swapResizeCommand: swapMb must be a positive whole number, got ${swapMb}`);
  return `sudo /usr/local/sbin/swap-resize ${swapMb}`;
}

/** What the host files are rendered from. */
export type HostFilesInput = Pick<
  CloudInitInput,
  "exposure" | "autoRebootTime" | "sshAllowedCidrs" | "sshThroughTunnel"
>;

/**
 * Docker's default address pools (172.17-31.x.x/16, then 192.168.x.x/20): where cloudflared's
 * container connects to sshd from. Only the tunnel, behind Access, comes from there.
 */
export const DOCKER_ADDRESS_POOLS = ["172.16.0.0/12", "192.168.0.0/16"] as const;

/**
 * fail2ban's `ignoreip`: localhost and the admins' networks, so that a colleague's mistyped key
 * cannot lock the whole office out of its own server. A network as wide as a /8 (IPv4) or a /32
 * (IPv6), or wider, is not an admin network but the Internet: it stays bannable, so SSH open to
 * the world (0.0.0.0/0) keeps its protection.
 */
export function fail2banIgnoreIp(sshAllowedCidrs: readonly string[], sshThroughTunnel = false): string {
  const adminNetworks = sshAllowedCidrs.filter((cidr) => {
    const [address, bits] = ipaddr.parseCIDR(cidr);
    return bits > (address.kind() === "ipv4" ? 8 : 32);
  });
  const header =
    "# Installed by cloud-init and kept in step by the host configuration: networks fail2ban never bans.\n";
  return (
    header +
    ini.stringify(
      {
        DEFAULT: {
          ignoreip: ["127.0.0.1/8", "::1", ...adminNetworks, ...(sshThroughTunnel ? DOCKER_ADDRESS_POOLS : [])].join(
            " ",
          ),
        },
      },
      { whitespace: true },
    )
  );
}

/** A file of the host's configuration, owned by root. */
export interface HostFile {
  readonly path: string;
  readonly permissions: "0644" | "0755";
  readonly content: string;
  /** The tool that must accept the file on a running server before it stays (see HostConfig). */
  readonly check?: string;
}

/**
 * The host's configuration files: cloud-init writes them at first boot, and the HostConfig
 * component pushes the same list to running servers, so a later fix reaches every server.
 */
export function hostFiles(input: HostFilesInput): HostFile[] {
  const file = (path: string, content: string, permissions: HostFile["permissions"] = "0644"): HostFile => ({
    path,
    permissions,
    content,
    ...(CHECKS[path] === undefined ? {} : { check: CHECKS[path] }),
  });
  return [
    file("/etc/ssh/sshd_config.d/10-hardening.conf", staticFile("sshd-hardening.conf")),
    file("/etc/sysctl.d/90-hardening.conf", staticFile("sysctl-hardening.conf")),
    file("/etc/fail2ban/jail.d/sshd.local", staticFile("fail2ban-sshd.local")),
    file("/etc/fail2ban/jail.local", fail2banIgnoreIp(input.sshAllowedCidrs, input.sshThroughTunnel)),
    file("/etc/ufw/sysctl.conf", staticFile("sysctl-hardening.conf")),
    file("/etc/modprobe.d/webstack-hardening.conf", staticFile("modprobe-hardening.conf")),
    file("/etc/systemd/coredump.conf.d/10-off.conf", staticFile("coredump.conf")),
    file("/etc/security/limits.d/10-no-core.conf", staticFile("limits-no-core.conf")),
    file("/etc/profile.d/webstack-hardening.sh", staticFile("profile-hardening.sh")),
    file("/etc/issue", staticFile("issue")),
    file("/etc/issue.net", staticFile("issue")),
    file("/etc/systemd/journald.conf.d/10-size.conf", staticFile("journald-size.conf")),
    file("/etc/apt/apt.conf.d/20auto-upgrades", staticFile("20auto-upgrades")),
    file("/etc/apt/apt.conf.d/60no-recommends", staticFile("apt-no-recommends")),
    file("/etc/apt/apt.conf.d/52unattended-upgrades-local", unattendedUpgradesLocal(input.autoRebootTime)),
    file("/etc/docker/daemon.json", `${JSON.stringify(dockerDaemonConfig(), null, 2)}\n`),
    file("/etc/systemd/system/docker.service.d/10-data-volume.conf", staticFile("docker-data-volume.conf")),
    file("/etc/systemd/system/docker.service.d/20-published-ports.conf", staticFile("docker-published-ports.conf")),
    file("/etc/default/docker-published-ports", dockerPublishedPortsEnv(input.exposure)),
    file("/usr/local/sbin/docker-published-ports", staticFile("docker-published-ports.sh"), "0755"),
    file("/etc/systemd/system/data-volume@.service", staticFile("data-volume@.service")),
    file("/usr/local/sbin/data-volume-mount", staticFile("data-volume-mount.sh"), "0755"),
    file("/usr/local/sbin/data-volume-enable", staticFile("data-volume-enable.sh"), "0755"),
    file("/usr/local/sbin/data-volume-grow", staticFile("data-volume-grow.sh"), "0755"),
    file("/usr/local/sbin/swap-resize", staticFile("swap-resize.sh"), "0755"),
  ];
}

/**
 * The tools that judge a host file on a running server: sshd reads its drop-in at its next start
 * (a drop-in it refuses would lock everyone out then), Docker its daemon.json (a file it refuses
 * would keep every container down after the next reboot).
 */
const CHECKS: Record<string, string> = {
  "/etc/ssh/sshd_config.d/10-hardening.conf": "sshd -t",
  "/etc/docker/daemon.json": "dockerd --validate --config-file /etc/docker/daemon.json",
};

/** The admin user's authorized_keys: one OpenSSH public key a line. */
export function adminAuthorizedKeys(keys: readonly string[]): string {
  return `${keys.map((k) => k.trim()).join("\n")}\n`;
}

/** Render the `#cloud-config` user data for one server. */
export function renderCloudInit(input: CloudInitInput): string {
  if (input.adminSshKeys.length === 0) throw new Error("renderCloudInit: at least one admin SSH key is needed");
  if (!input.volumeDevice.startsWith("/dev/")) {
    throw new Error(`renderCloudInit: volumeDevice must be a /dev path, got ${JSON.stringify(input.volumeDevice)}`);
  }

  const config = {
    hostname: input.hostname,
    manage_etc_hosts: true,
    timezone: "Etc/UTC",
    locale: "C.UTF-8",

    // Docker's group exists before the package does, so the deploy user can join it at creation.
    groups: ["docker"],
    users: [
      {
        name: ADMIN_USER,
        gecos: "Administrator",
        shell: "/bin/bash",
        groups: ["sudo", "adm", "systemd-journal"],
        // No password exists, so sudo cannot ask for one; SSH keys are the only way in.
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: true,
        ssh_authorized_keys: [...input.adminSshKeys],
      },
      {
        name: DEPLOY_USER,
        gecos: "Deploy steps run by Pulumi",
        shell: "/bin/bash",
        groups: ["docker", "systemd-journal"],
        // The docker group is root-equivalent already; sudo lets the deploy steps install
        // systemd units (backups) without a second account.
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: true,
        ssh_authorized_keys: [input.deployPublicKey],
      },
    ],
    disable_root: true,
    ssh_pwauth: false,
    ssh_deletekeys: true,
    ssh_genkeytypes: ["ed25519", "rsa"],

    swap: {
      filename: "/swapfile",
      size: input.swapMb * 1024 * 1024,
      maxsize: input.swapMb * 1024 * 1024,
    },

    package_update: true,
    package_upgrade: true,
    package_reboot_if_required: false,
    packages: [...PACKAGES],

    // write_files runs before packages are installed: sshd, Docker, fail2ban and apt find their
    // configuration in place when they first start.
    write_files: hostFiles(input).map((f) => ({
      path: f.path,
      owner: "root:root",
      permissions: f.permissions,
      content: f.content,
    })),

    // Commands as argument lists: cloud-init runs them without a shell, so no quoting matters.
    runcmd: [
      ["/usr/local/sbin/data-volume-enable", input.volumeDevice],
      ["sysctl", "--system"],
      ["systemctl", "restart", "systemd-journald"],
      ["ufw", "default", "deny", "incoming"],
      ["ufw", "default", "allow", "outgoing"],
      ...hostFirewallPorts(input.exposure).map((port) => ["ufw", "allow", port]),
      ["ufw", "--force", "enable"],
      ["systemctl", "enable", "--now", "fail2ban"],
      ["systemctl", "enable", "--now", "unattended-upgrades"],
      ["sshd", "-t"],
      ["systemctl", "restart", "ssh"],
    ],

    final_message: "cloud-init finished after $UPTIME s: server hardened, data volume enabled",
  };

  return `#cloud-config\n${stringify(config, { lineWidth: 0 })}`;
}
