import * as ini from "ini";
import { describe, expect, it } from "vitest";
import { hostFirewallPorts, renderCloudInit, unattendedUpgradesLocal } from "../../cloud-init/render";
import { parseCloudConfig, SAMPLE_INPUT, writtenFile } from "../support/cloud-init";

const render = (changes: Partial<typeof SAMPLE_INPUT> = {}) => renderCloudInit({ ...SAMPLE_INPUT, ...changes });
const config = (changes: Partial<typeof SAMPLE_INPUT> = {}) => parseCloudConfig(render(changes));

/** sshd settings from the drop-in, keyword → value (first value wins, as in sshd). */
function sshdSettings(): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of writtenFile(config(), "/etc/ssh/sshd_config.d/10-hardening.conf").split("\n")) {
    const m = line.match(/^(\w+)\s+(.+)$/);
    if (m && !settings.has(m[1].toLowerCase())) settings.set(m[1].toLowerCase(), m[2]);
  }
  return settings;
}

describe("the cloud-init renderer", () => {
  it("renders a #cloud-config document", () => {
    expect(render().startsWith("#cloud-config\n")).toBe(true);
  });

  it("renders byte-identical text for the same input", () => {
    expect(render()).toBe(render());
  });

  it("creates a key-only admin user with the admin keys and sudo", () => {
    const admin = config().users.find((u) => u.name === "admin");
    expect(admin).toMatchObject({ lock_passwd: true, ssh_authorized_keys: SAMPLE_INPUT.adminSshKeys });
    expect(admin?.groups).toContain("sudo");
  });

  it("creates a key-only deploy user in the docker group with the deploy key alone", () => {
    const deploy = config().users.find((u) => u.name === "deploy");
    expect(deploy).toMatchObject({ lock_passwd: true, ssh_authorized_keys: [SAMPLE_INPUT.deployPublicKey] });
    expect(deploy?.groups).toContain("docker");
    expect(config().groups).toEqual(["docker"]);
  });

  it("disables root and password logins in cloud-init itself", () => {
    expect(config()).toMatchObject({ disable_root: true, ssh_pwauth: false });
  });

  it("hardens sshd with a drop-in: no root, keys only, few tries, two users, no forwarding", () => {
    const sshd = sshdSettings();
    expect(Object.fromEntries(sshd)).toMatchObject({
      permitrootlogin: "no",
      passwordauthentication: "no",
      kbdinteractiveauthentication: "no",
      authenticationmethods: "publickey",
      maxauthtries: "3",
      allowusers: "admin deploy",
      allowtcpforwarding: "no",
      allowagentforwarding: "no",
      allowstreamlocalforwarding: "no",
      x11forwarding: "no",
      permittunnel: "no",
    });
  });

  it("checks the sshd configuration before restarting sshd", () => {
    const cmds = config().runcmd.map((c) => c.join(" "));
    expect(cmds.indexOf("sshd -t")).toBeGreaterThanOrEqual(0);
    expect(cmds.indexOf("sshd -t")).toBeLessThan(cmds.indexOf("systemctl restart ssh"));
  });

  it("denies inbound traffic in ufw except SSH in tunnel mode", () => {
    const cmds = config().runcmd.map((c) => c.join(" "));
    expect(cmds).toContain("ufw default deny incoming");
    expect(cmds.filter((c) => c.startsWith("ufw allow"))).toEqual(["ufw allow 22/tcp"]);
    expect(cmds).toContain("ufw --force enable");
  });

  it("allows 80 and 443 in ufw in direct mode", () => {
    const cmds = config({ exposure: "direct" }).runcmd.map((c) => c.join(" "));
    expect(cmds.filter((c) => c.startsWith("ufw allow"))).toEqual(
      hostFirewallPorts("direct").map((p) => `ufw allow ${p}`),
    );
    expect(hostFirewallPorts("direct")).toEqual(expect.arrayContaining(["80/tcp", "443/tcp"]));
  });

  it("runs fail2ban on sshd with the journal as its source", () => {
    const jail = writtenFile(config(), "/etc/fail2ban/jail.d/sshd.local");
    expect(jail).toMatch(/^\[sshd\]\nenabled = true/m);
    expect(jail).toMatch(/^backend = systemd$/m);
    expect(config().packages).toEqual(expect.arrayContaining(["fail2ban", "python3-systemd"]));
  });

  it("never lets fail2ban ban localhost or the admins' networks", () => {
    const jail = ini.parse(writtenFile(config(), "/etc/fail2ban/jail.local"));
    expect(jail.DEFAULT.ignoreip.split(" ")).toEqual(["127.0.0.1/8", "::1", "198.51.100.0/24", "2001:db8:42::/48"]);
  });

  it("keeps SSH open to the world bannable: networks of /8 (IPv4) or /32 (IPv6) and wider are not admin networks", () => {
    const wide = ["0.0.0.0/0", "10.0.0.0/8", "::/0", "2001:db8::/32", "10.1.0.0/16"];
    const jail = ini.parse(writtenFile(config({ sshAllowedCidrs: wide }), "/etc/fail2ban/jail.local"));
    expect(jail.DEFAULT.ignoreip).toBe("127.0.0.1/8 ::1 10.1.0.0/16");
  });

  it("gives ufw the hardening's sysctl values, so that its start at boot does not put its own back", () => {
    expect(writtenFile(config(), "/etc/ufw/sysctl.conf")).toBe(
      writtenFile(config(), "/etc/sysctl.d/90-hardening.conf"),
    );
  });

  it("refuses the kernel modules of unused file systems, USB storage and FireWire", () => {
    const installs = writtenFile(config(), "/etc/modprobe.d/webstack-hardening.conf")
      .split("\n")
      .filter((line) => line.startsWith("install "));
    expect(installs).toEqual(expect.arrayContaining(["install squashfs /bin/false", "install usb-storage /bin/false"]));
    expect(installs.every((line) => / \/bin\/false$/.test(line))).toBe(true);
  });

  it("installs unattended upgrades that reboot in the configured window", () => {
    const c = config({ autoRebootTime: "04:15" });
    expect(c.packages).toContain("unattended-upgrades");
    expect(writtenFile(c, "/etc/apt/apt.conf.d/20auto-upgrades")).toContain('APT::Periodic::Unattended-Upgrade "1";');
    const local = writtenFile(c, "/etc/apt/apt.conf.d/52unattended-upgrades-local");
    expect(local).toContain('Unattended-Upgrade::Automatic-Reboot "true";');
    expect(local).toContain('Unattended-Upgrade::Automatic-Reboot-Time "04:15";');
  });

  it("installs without Recommends, naming the docker CLI and AppArmor that docker.io only recommends", () => {
    const c = config();
    expect(writtenFile(c, "/etc/apt/apt.conf.d/60no-recommends")).toMatch(/^APT::Install-Recommends "false";$/m);
    expect(c.packages).toEqual(expect.arrayContaining(["docker.io", "docker-cli", "docker-compose", "apparmor"]));
  });

  it("refuses a reboot time that is not HH:MM", () => {
    expect(() => unattendedUpgradesLocal("4am")).toThrow(/HH:MM/);
  });

  it("hardens the kernel and network while keeping the IPv4 forwarding Docker needs", () => {
    const sysctl = writtenFile(config(), "/etc/sysctl.d/90-hardening.conf");
    for (const line of [
      "net.ipv4.ip_forward = 1",
      "net.ipv4.conf.all.accept_redirects = 0",
      "net.ipv4.conf.all.send_redirects = 0",
      "net.ipv4.conf.all.accept_source_route = 0",
      "net.ipv4.tcp_syncookies = 1",
      "kernel.kptr_restrict = 2",
      "kernel.dmesg_restrict = 1",
      "fs.suid_dumpable = 0",
      "dev.tty.ldisc_autoload = 0",
    ]) {
      expect(sysctl).toContain(line);
    }
  });

  it("caps the journal", () => {
    expect(writtenFile(config(), "/etc/systemd/journald.conf.d/10-size.conf")).toMatch(/^SystemMaxUse=500M$/m);
  });

  it("sizes the swap file from the input", () => {
    expect(config({ swapMb: 4096 }).swap).toEqual({
      filename: "/swapfile",
      size: 4096 * 1024 * 1024,
      maxsize: 4096 * 1024 * 1024,
    });
  });

  it("installs Docker and Compose v2 from Debian's archive with rotated logs and live restore", () => {
    const c = config();
    expect(c.packages).toEqual(expect.arrayContaining(["docker.io", "docker-compose"]));
    expect(c).not.toHaveProperty("apt");
    const daemon = JSON.parse(writtenFile(c, "/etc/docker/daemon.json"));
    expect(daemon).toMatchObject({ "live-restore": true, "log-driver": "local", "log-opts": { "max-size": "20m" } });
  });

  it("enables the data volume by its stable device path, before anything else runs", () => {
    const c = config();
    expect(c.runcmd[0]).toEqual(["/usr/local/sbin/data-volume-enable", SAMPLE_INPUT.volumeDevice]);
    expect(writtenFile(c, "/etc/systemd/system/data-volume@.service")).toMatch(/^WantedBy=%i\.device$/m);
  });

  it("keeps Docker down until the data volume is mounted", () => {
    expect(writtenFile(config(), "/etc/systemd/system/docker.service.d/10-data-volume.conf")).toMatch(
      /^ConditionPathIsMountPoint=\/srv\/data$/m,
    );
  });

  it("refuses a volume device that is not a /dev path", () => {
    expect(() => render({ volumeDevice: "HC_Volume_1" })).toThrow(/volumeDevice/);
  });

  it("writes the executable scripts with mode 0755 and config files with 0644", () => {
    for (const f of config().write_files) {
      expect(f.permissions).toBe(f.path.startsWith("/usr/local/sbin/") ? "0755" : "0644");
    }
  });

  it("lets containers be reached from outside only on the mode's public ports, never in tunnel mode", () => {
    const env = (exposure: "tunnel" | "direct") =>
      writtenFile(config({ exposure }), "/etc/default/docker-published-ports");
    expect(env("tunnel")).toMatch(/^PUBLIC_PORTS=""$/m);
    expect(env("direct")).toMatch(/^PUBLIC_PORTS="80\/tcp 443\/tcp 443\/udp"$/m);
    expect(writtenFile(config(), "/etc/systemd/system/docker.service.d/20-published-ports.conf")).toMatch(
      /^ExecStartPre=\/usr\/local\/sbin\/docker-published-ports \$PUBLIC_PORTS$/m,
    );
  });
});
