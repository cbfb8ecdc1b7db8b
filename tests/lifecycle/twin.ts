/**
 * The server twin: a container of tests/lifecycle/twin/build.sh's image with systemd as PID 1,
 * sshd and its own Docker engine, provisioned from the rendered cloud-init the way first boot
 * leaves the server: its groups, users, sudo rules, SSH keys and written files, and the data
 * volume as a filesystem of its own at /srv/data (data-volume.ts: a loop device that outlives the
 * twin, as a Hetzner Volume outlives its server). Remote commands reach it over real SSH.
 *
 * What it does not do (the VM suite does): the packages cloud-init installs (they are in the
 * image), sysctl, swap, the kernel. The host firewall (ufw) and fail2ban are set as runcmd sets
 * them. `cloud-init status` is answered by a stand-in (twin/cloud-init-status) whose state a
 * scenario can set.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { DATA_DIR } from "../../model/server";
import { STAND_IN_DEPLOY_PUBLIC_KEY } from "../../scripts/mock-engine";
import { DOCKER, run } from "../support/stack-configs";
import type { DataVolume } from "./data-volume";

const BUILD = join(__dirname, "twin", "build.sh");

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** A key pair the lifecycle runner logs in with, in place of the program's stand-in deploy key. */
export interface LoginKey {
  readonly privateKeyFile: string;
  readonly publicKey: string;
}

export function makeLoginKey(): LoginKey {
  const dir = mkdtempSync(join(tmpdir(), "twin-key-"));
  const file = join(dir, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "lifecycle", "-f", file]);
  chmodSync(file, 0o600);
  return { privateKeyFile: file, publicKey: readFileSync(`${file}.pub`, "utf8").trim() };
}

/** The twin's image tag, built (about a minute) and cached on first use. */
export function twinImage(): string {
  const r = run("bash", [BUILD], { timeoutMs: 900_000 });
  if (r.status !== 0) throw new Error(`twin image build failed:\n${r.stderr}`);
  return r.stdout.trim().split("\n").pop()!;
}

interface CloudConfigUser {
  name: string;
  shell?: string;
  groups?: string[];
  sudo?: string;
  ssh_authorized_keys?: string[];
}

interface CloudConfig {
  groups?: string[];
  users?: CloudConfigUser[];
  write_files?: { path: string; permissions?: string; content: string }[];
  runcmd?: string[][];
}

export class Twin {
  /** The data volume's device path in the user data (the program's `linuxDevice`). */
  private volumeDevice: string | undefined;

  private constructor(
    readonly name: string,
    readonly dataVolume: DataVolume,
    readonly image: string,
  ) {}

  /** Start a twin on `dataVolume` and apply `userData` to it. */
  static start(name: string, dataVolume: DataVolume, userData: string, login: LoginKey): Twin {
    const image = twinImage();
    const twin = new Twin(name, dataVolume, image);
    twin.boot();
    twin.provision(userData, login);
    return twin;
  }

  /** The twin's address on the host's Docker bridge. */
  get address(): string {
    return docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", this.name);
  }

  private boot(): void {
    spawnSync(DOCKER, ["rm", "-f", "-v", this.name]);
    docker(
      "run",
      "-d",
      "--name",
      this.name,
      "--hostname",
      this.name,
      "--cap-add",
      "SYS_ADMIN",
      "--cap-add",
      "NET_ADMIN",
      // Without it the twin's engine cannot `docker exec` (setns fails), so no health check runs.
      "--cap-add",
      "SYS_PTRACE",
      "--security-opt",
      "seccomp=unconfined",
      "--security-opt",
      "apparmor=unconfined",
      // A writable /proc/sys: dockerd sets route_localnet (daemon.json has no userland proxy).
      "--security-opt",
      "systempaths=unconfined",
      "--tmpfs",
      "/run",
      "--tmpfs",
      "/run/lock",
      "-v",
      "/sys/fs/cgroup:/sys/fs/cgroup:rw",
      // The engine's images and containers live on the root disk, as on the server; an anonymous
      // volume, so overlay2 has a real filesystem under it, gone with the twin (`rm -v`).
      "-v",
      "/var/lib/docker",
      "-v",
      `${this.dataVolume.mountPoint}:${DATA_DIR}`,
      "--device",
      this.dataVolume.device,
      this.image,
    );
    this.waitForSystemd();
  }

  private waitForSystemd(): void {
    for (let i = 0; i < 120; i++) {
      const state = this.exec(["systemctl", "is-system-running"]).stdout.trim();
      if (state === "running" || state === "degraded") return;
      execFileSync("sleep", ["0.25"]);
    }
    throw new Error(`twin ${this.name}: systemd did not finish starting`);
  }

  /** What first boot leaves on the server, from the rendered user data. */
  private provision(userData: string, login: LoginKey): void {
    const config = parse(userData) as CloudConfig;
    const script: string[] = ["set -eu"];
    for (const group of config.groups ?? []) script.push(`getent group ${group} >/dev/null || groupadd ${group}`);
    const sudoers: string[] = [];
    for (const user of config.users ?? []) {
      const groups = (user.groups ?? []).join(",");
      script.push(
        `id -u ${user.name} >/dev/null 2>&1 || useradd -m -s ${user.shell ?? "/bin/bash"} ${groups ? `-G ${groups}` : ""} ${user.name}`,
      );
      // The program's deploy key is a stand-in under mocks: the runner logs in with a real one.
      const keys = (user.ssh_authorized_keys ?? []).map((k) =>
        k === STAND_IN_DEPLOY_PUBLIC_KEY ? login.publicKey : k,
      );
      script.push(
        `install -d -m 0700 -o ${user.name} -g ${user.name} /home/${user.name}/.ssh`,
        `printf '%s\\n' ${keys.map((k) => `'${k}'`).join(" ")} > /home/${user.name}/.ssh/authorized_keys`,
        `chown ${user.name}: /home/${user.name}/.ssh/authorized_keys && chmod 0600 /home/${user.name}/.ssh/authorized_keys`,
      );
      if (user.sudo) sudoers.push(`${user.name} ${user.sudo}`);
    }
    this.exec(["sh", "-c", script.join("\n")], { check: true });
    this.volumeDevice = (config.runcmd ?? []).find((c) => c[0].endsWith("/data-volume-enable"))?.[1];
    this.linkVolumeDevice();
    this.writeFile("/etc/sudoers.d/90-cloud-init-users", `${sudoers.join("\n")}\n`, "0440");
    for (const file of config.write_files ?? []) {
      const content = file.path === "/etc/docker/daemon.json" ? withinHostLimits(file.content) : file.content;
      this.writeFile(file.path, content, file.permissions ?? "0644");
    }
    this.exec(
      [
        "sh",
        "-c",
        // cloud-init's ssh module makes the host keys; Docker reads its drop-ins and daemon.json.
        "ssh-keygen -A >/dev/null && install -d -m 0755 /run/sshd && sshd -t && systemctl daemon-reload && systemctl reset-failed && systemctl restart ssh docker",
      ],
      { check: true },
    );
    // The host firewall and fail2ban, as runcmd sets them (in the twin's own network namespace;
    // the rest of runcmd is the volume, the kernel and services the twin does not have).
    const firewall = (config.runcmd ?? []).filter((c) => c[0] === "ufw" || c.join(" ").endsWith("--now fail2ban"));
    for (const argv of firewall) this.exec(argv, { check: true });
  }

  /** Hetzner's udev rule names the volume by its id: the device path the program was given. */
  private linkVolumeDevice(): void {
    if (!this.volumeDevice) return;
    const dir = this.volumeDevice.slice(0, this.volumeDevice.lastIndexOf("/"));
    this.sh(`mkdir -p '${dir}' && ln -sfn '${this.dataVolume.device}' '${this.volumeDevice}'`, { check: true });
  }

  /** Write a file as root with a mode (the provisioner's own channel, not a remote command). */
  writeFile(path: string, content: string, mode: string): void {
    const dir = path.slice(0, path.lastIndexOf("/"));
    this.exec(["sh", "-c", `mkdir -p '${dir}' && cat > '${path}' && chmod ${mode} '${path}'`], {
      input: content,
      check: true,
    });
  }

  /** Run a program inside the twin as root (the test's own view, not the deploy user's). */
  exec(argv: string[], options: { input?: string; check?: boolean; timeoutMs?: number } = {}): CommandResult {
    const r = run(DOCKER, ["exec", "-i", this.name, ...argv], { input: options.input, timeoutMs: options.timeoutMs });
    if (options.check && r.status !== 0) {
      throw new Error(`twin ${this.name}: ${argv.join(" ")} exited ${r.status}:\n${r.stderr}${r.stdout}`);
    }
    return r;
  }

  /** A shell command inside the twin as root. */
  sh(script: string, options: { input?: string; check?: boolean; timeoutMs?: number } = {}): CommandResult {
    return this.exec(["sh", "-c", script], options);
  }

  /** Run `command` over real SSH as `user`, with `stdin`: what @pulumi/command's remote.Command does. */
  ssh(user: string, key: LoginKey, command: string, stdin?: string, timeoutMs = 900_000): CommandResult {
    return run(
      "ssh",
      [
        "-i",
        key.privateKeyFile,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes",
        `${user}@${this.address}`,
        command,
      ],
      { input: stdin ?? "", timeoutMs },
    );
  }

  /**
   * What the hcloud provider does to change a server's type: power off hard, then on, and return
   * while the server boots (as the provider does once Hetzner says "running"). The root disk and
   * the volume keep their contents; every process starts again from boot.
   */
  powerCycle(): void {
    docker("kill", this.name);
    docker("start", this.name);
    // A container's /dev is made anew at each start; on the server udev names the volume again.
    this.linkVolumeDevice();
  }

  /** Write what a scenario wants `cloud-init status` to answer, and a line of its output log. */
  setFirstBoot(state: "done" | "error" | "running", logLine = ""): void {
    this.exec(
      ["sh", "-c", 'echo "$0" > /run/twin-cloud-init && echo "$1" >> /var/log/cloud-init-output.log', state, logLine],
      {
        check: true,
      },
    );
  }

  /** Load images from a `docker save` tarball into the twin's engine. */
  loadImages(tarball: string): void {
    const r = spawnSync("sh", ["-c", `${DOCKER} exec -i ${this.name} docker load -q < '${tarball}'`], {
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`twin ${this.name}: docker load failed: ${r.stderr}`);
  }

  /** Remove the twin (its root disk and engine with it); the data volume stays. */
  remove(): void {
    spawnSync(DOCKER, ["rm", "-f", "-v", this.name]);
  }
}

/**
 * daemon.json with its containers' open-file limit lowered to this host's hard limit: the sandbox
 * the tests run in allows 20000, the server's 65536 would make every container fail to start.
 */
export function withinHostLimits(daemonJson: string): string {
  const hard = Number(execFileSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).trim());
  const settings = JSON.parse(daemonJson) as { "default-ulimits"?: Record<string, { Soft: number; Hard: number }> };
  const nofile = settings["default-ulimits"]?.nofile;
  if (nofile && Number.isFinite(hard)) {
    nofile.Soft = Math.min(nofile.Soft, hard);
    nofile.Hard = Math.min(nofile.Hard, hard);
  }
  return `${JSON.stringify(settings, null, 2)}\n`;
}

function docker(...args: string[]): string {
  const r = run(DOCKER, args, { timeoutMs: 300_000 });
  if (r.status !== 0) throw new Error(`docker ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout.trim();
}
