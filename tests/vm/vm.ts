/**
 * A local stand-in for the Hetzner server: a Debian 13 VM under qemu (TCG, KVM does not work on
 * this machine) booted straight into its kernel, with cloud-init reading a NoCloud seed.
 *
 * The VM has three user-mode network cards, each its own little network, so the checks can tell
 * sources apart (qemu's user-mode network makes every connection from the host come from the
 * network's `.2` address):
 *   - `admin`   eth0, 10.0.2.15 (DHCP, the way out to Debian's mirror): the admin and deploy
 *               logins, every command run inside the VM. Only successful logins come from here.
 *   - `outside` eth1, 10.0.3.15: the internet as the server sees it. SSH and every port the
 *               stack could listen on are forwarded to this address, so probes arrive on an
 *               external interface from a foreign address, exactly like traffic from outside.
 *   - `attacker` eth2, 10.0.4.15: the source that fail2ban must ban; banning it does not lock
 *               the test out.
 * Every forward listens on 127.0.0.1 only.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { freePort } from "../support/ports";

const execFileAsync = promisify(execFile);

export const VM_DIR = __dirname;
export const CACHE_DIR = process.env.WEBSTACK_CACHE ?? "/var/cache/webstack";

/** The networks of the three cards: guest address and the address the host's traffic comes from. */
export const NETWORKS = {
  admin: { net: "10.0.2.0/24", guest: "10.0.2.15", source: "10.0.2.2" },
  outside: { net: "10.0.3.0/24", guest: "10.0.3.15", source: "10.0.3.2" },
  attacker: { net: "10.0.4.0/24", guest: "10.0.4.15", source: "10.0.4.2" },
} as const;
export type NetworkName = keyof typeof NETWORKS;

/** Build (or reuse) the cached Debian 13 image; returns the directory of base.raw, vmlinuz, initrd.img. */
export async function ensureImage(): Promise<string> {
  const { stdout } = await execFileAsync("bash", [join(VM_DIR, "build-image.sh")], {
    env: { ...process.env, WEBSTACK_CACHE: CACHE_DIR },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 30 * 60_000,
  });
  return stdout.trim().split("\n").pop()!;
}

/** A fresh ed25519 key pair in `dir`; returns the private key's path and the public key line. */
export async function makeKeyPair(dir: string, name: string): Promise<{ path: string; publicKey: string }> {
  const path = join(dir, name);
  await execFileAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@vm-test`, "-f", path]);
  const { stdout } = await execFileAsync("cat", [`${path}.pub`]);
  return { path, publicKey: stdout.trim() };
}

export interface VmOptions {
  /** Cached image directory from `ensureImage`. */
  imageDir: string;
  /** `#cloud-config` user data for the NoCloud seed. */
  userData: string;
  /** Public keys in the meta-data, as Hetzner passes the server's SSH keys (cloud-init puts them on root). */
  metadataPublicKeys: readonly string[];
  /** Host name in the meta-data. */
  hostname: string;
  /** Guest ports forwarded from 127.0.0.1 to the `outside` address (SSH is always forwarded on all three). */
  outsidePorts: readonly number[];
  /** The blank disk that plays the Hetzner Volume: its virtio serial names /dev/disk/by-id/virtio-<serial>. */
  volume?: { serial: string; sizeGb: number };
  /** Read-only raw disks present from power-on, each seen as /dev/disk/by-id/virtio-<serial>. */
  readOnlyDisks?: readonly { serial: string; path: string }[];
  memoryMb?: number;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for every SSH client run: no host key memory (keys change on each boot), no agent. */
export const SSH_CLIENT_OPTIONS = [
  "-o",
  "BatchMode=yes",
  "-o",
  "IdentitiesOnly=yes",
  "-o",
  "IdentityAgent=none",
  "-o",
  "StrictHostKeyChecking=no",
  "-o",
  "UserKnownHostsFile=/dev/null",
  "-o",
  "GlobalKnownHostsFile=/dev/null",
  "-o",
  "LogLevel=ERROR",
  "-o",
  "ConnectTimeout=30",
  "-o",
  "ServerAliveInterval=15",
  "-o",
  "ServerAliveCountMax=8",
];

/** Run a program, collecting its output; never rejects on a non-zero exit. */
export function run(
  program: string,
  args: readonly string[],
  opts: { stdin?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8") + (signal ? `\n[killed by ${signal}]` : ""),
      });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.stdin ?? "");
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One running VM. */
export class Vm {
  /** Host ports: `ssh[network]` for SSH on each card, `outside[guestPort]` for the probed ports. */
  readonly sshPorts: Record<NetworkName, number>;
  readonly outsidePorts: Record<number, number>;
  readonly workDir: string;
  /** Date.now() when qemu was started (power-on). */
  poweredOnAt = 0;
  private qemu?: ReturnType<typeof spawn>;
  private qmpSocket?: Socket;
  private qmpBuffer = "";
  private qmpWaiters: ((msg: Record<string, unknown>) => void)[] = [];
  private exited = false;

  private constructor(
    private readonly opts: VmOptions,
    workDir: string,
    sshPorts: Record<NetworkName, number>,
    outsidePorts: Record<number, number>,
  ) {
    this.workDir = workDir;
    this.sshPorts = sshPorts;
    this.outsidePorts = outsidePorts;
  }

  /** Create the disks and seed, and power the VM on. */
  static async start(opts: VmOptions): Promise<Vm> {
    const workDir = mkdtempSync(join(tmpdir(), "webstack-vm-"));
    const sshPorts = { admin: await freePort(), outside: await freePort(), attacker: await freePort() };
    const outsidePorts: Record<number, number> = {};
    for (const port of opts.outsidePorts) outsidePorts[port] = await freePort();
    const vm = new Vm(opts, workDir, sshPorts, outsidePorts);
    await vm.prepareDisks();
    vm.launch();
    await vm.connectQmp();
    return vm;
  }

  private async prepareDisks(): Promise<void> {
    const { imageDir, volume } = this.opts;
    const w = this.workDir;
    const qemuImg = async (...args: string[]) => {
      const r = await run("qemu-img", args);
      if (r.code !== 0) throw new Error(`qemu-img ${args.join(" ")}: ${r.stderr}`);
    };
    await qemuImg("create", "-q", "-f", "qcow2", "-F", "raw", "-b", join(imageDir, "base.raw"), join(w, "root.qcow2"));
    if (volume) await qemuImg("create", "-q", "-f", "qcow2", join(w, "volume.qcow2"), `${volume.sizeGb}G`);

    writeFileSync(join(w, "user-data"), this.opts.userData);
    writeFileSync(
      join(w, "meta-data"),
      stringify({
        "instance-id": `vm-${Date.now()}`,
        "local-hostname": this.opts.hostname,
        "public-keys": [...this.opts.metadataPublicKeys],
      }),
    );
    // Without a network config cloud-init waits minutes for DHCPv6. The admin card takes its
    // address (and the default route out to the mirror) by DHCP; the other two are static and
    // have no gateway: replies to their `.2` source leave through the card they came in on.
    writeFileSync(
      join(w, "network-config"),
      stringify({
        version: 2,
        ethernets: {
          eth0: { dhcp4: true, dhcp6: false },
          eth1: { dhcp4: false, dhcp6: false, addresses: [`${NETWORKS.outside.guest}/24`] },
          eth2: { dhcp4: false, dhcp6: false, addresses: [`${NETWORKS.attacker.guest}/24`] },
        },
      }),
    );
    const seed = await run("cloud-localds", [
      `--network-config=${join(w, "network-config")}`,
      join(w, "seed.img"),
      join(w, "user-data"),
      join(w, "meta-data"),
    ]);
    if (seed.code !== 0) throw new Error(`cloud-localds: ${seed.stderr}`);
  }

  private launch(): void {
    const { imageDir, memoryMb = 2048 } = this.opts;
    const w = this.workDir;
    const netdev = (name: NetworkName, index: number) => {
      const n = NETWORKS[name];
      const forwards = [`hostfwd=tcp:127.0.0.1:${this.sshPorts[name]}-${n.guest}:22`];
      if (name === "outside") {
        for (const [guest, host] of Object.entries(this.outsidePorts)) {
          forwards.push(`hostfwd=tcp:127.0.0.1:${host}-${n.guest}:${guest}`);
        }
      }
      return [
        "-netdev",
        [`user,id=${name}`, `net=${n.net}`, ...(name === "admin" ? [] : ["restrict=on"]), ...forwards].join(","),
        "-device",
        `virtio-net-pci,netdev=${name},mac=52:54:00:00:00:1${index}`,
      ];
    };
    const args = [
      // One TCG thread and one vCPU. Multi-threaded TCG lets a guest kernel crash at boot now and
      // then on a busy host (seen here: "Oops: int3" in hrtimer_start_range_ns while static keys
      // are patched, a cross-modifying-code race), and a crashed boot would cost a CI run its
      // 30-minute time-out. One thread per VM also lets the stock and the hardened VM share two
      // host cores without stealing from each other.
      "-accel",
      "tcg,thread=single",
      "-cpu",
      "max",
      "-M",
      "q35",
      "-smp",
      "1",
      "-m",
      String(memoryMb),
      "-kernel",
      join(imageDir, "vmlinuz"),
      "-initrd",
      join(imageDir, "initrd.img"),
      "-append",
      "root=/dev/vda rw console=ttyS0 net.ifnames=0",
      // cache=unsafe: the guest's flushes stop at qemu instead of reaching this machine's disk.
      // What the guest does is unchanged (dpkg still fsyncs every file it unpacks); a test VM
      // needs no durability across a host crash, and under this sandbox every host flush is slow.
      "-drive",
      `file=${join(w, "root.qcow2")},if=virtio,format=qcow2,cache=unsafe`,
      "-drive",
      `file=${join(w, "seed.img")},if=virtio,format=raw,readonly=on`,
      // In PCI slots after everything else: the kernel names virtio disks in slot order, and
      // the root disk must stay /dev/vda (root=/dev/vda, and the image's fstab).
      ...(this.opts.readOnlyDisks ?? []).flatMap((disk, i) => [
        "-blockdev",
        `driver=raw,node-name=ro${i},read-only=on,file.driver=file,file.filename=${disk.path}`,
        "-device",
        `virtio-blk-pci,drive=ro${i},serial=${disk.serial},bus=pcie.0,addr=${(0x18 + i).toString(16)}`,
      ]),
      ...netdev("admin", 0),
      ...netdev("outside", 1),
      ...netdev("attacker", 2),
      // An empty PCIe slot: the data volume is plugged in here while the VM runs.
      "-device",
      "pcie-root-port,id=hotplug0,chassis=1,slot=1",
      "-qmp",
      `unix:${join(w, "qmp.sock")},server=on,wait=off`,
      "-serial",
      `file:${join(w, "console.log")}`,
      "-display",
      "none",
    ];
    this.poweredOnAt = Date.now();
    this.qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.qemu.stderr?.on("data", (d: Buffer) => process.stderr.write(`[qemu] ${d}`));
    // A test process that dies (a failed hook, a time-out) must not leave the VM running.
    const killQemu = () => this.qemu?.kill("SIGKILL");
    process.once("exit", killQemu);
    this.qemu.on("exit", () => {
      this.exited = true;
      process.removeListener("exit", killQemu);
    });
  }

  private async connectQmp(): Promise<void> {
    const path = join(this.workDir, "qmp.sock");
    for (let i = 0; i < 100; i++) {
      if (this.exited) throw new Error("qemu exited at start");
      try {
        this.qmpSocket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once("error", reject);
        });
        break;
      } catch {
        await sleep(100);
      }
    }
    if (!this.qmpSocket) throw new Error("QMP socket did not come up");
    this.qmpSocket.on("data", (d: Buffer) => {
      this.qmpBuffer += d.toString("utf8");
      let nl = this.qmpBuffer.indexOf("\n");
      while (nl >= 0) {
        const line = this.qmpBuffer.slice(0, nl).trim();
        this.qmpBuffer = this.qmpBuffer.slice(nl + 1);
        if (line) {
          const msg = JSON.parse(line) as Record<string, unknown>;
          if (!("event" in msg)) this.qmpWaiters.shift()?.(msg);
        }
        nl = this.qmpBuffer.indexOf("\n");
      }
    });
    await new Promise<void>((resolve) => this.qmpWaiters.push(() => resolve())); // the greeting
    await this.qmp("qmp_capabilities");
  }

  /** One QMP command; throws on an error reply. */
  async qmp(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = await new Promise<Record<string, unknown>>((resolve) => {
      this.qmpWaiters.push(resolve);
      this.qmpSocket!.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    });
    if ("error" in reply) throw new Error(`QMP ${execute}: ${JSON.stringify(reply.error)}`);
    return reply.return;
  }

  /** Plug the blank volume disk into the running VM, as attaching a Hetzner Volume does. */
  async attachVolume(): Promise<void> {
    const volume = this.opts.volume;
    if (!volume) throw new Error("this VM has no volume");
    await this.qmp("blockdev-add", {
      "node-name": "volume",
      driver: "qcow2",
      file: { driver: "file", filename: join(this.workDir, "volume.qcow2") },
      // As the root disk: flushes stop at qemu.
      cache: { "no-flush": true },
    });
    await this.qmp("device_add", {
      driver: "virtio-blk-pci",
      id: "volume-disk",
      drive: "volume",
      serial: volume.serial,
      bus: "hotplug0",
    });
  }

  /** Run a command over SSH through one of the cards. */
  ssh(
    network: NetworkName,
    user: string,
    keyPath: string,
    command: string,
    opts: { stdin?: string | Buffer; timeoutMs?: number; extraOptions?: string[] } = {},
  ): Promise<CommandResult> {
    return run(
      "ssh",
      [
        ...SSH_CLIENT_OPTIONS,
        ...(opts.extraOptions ?? []),
        "-i",
        keyPath,
        "-p",
        String(this.sshPorts[network]),
        `${user}@127.0.0.1`,
        command,
      ],
      { stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? 300_000 },
    );
  }

  /** Throw if qemu has exited or the guest kernel has panicked (the console says so). */
  private assertAlive(): void {
    if (this.exited) throw new Error(`qemu exited; console log in ${this.workDir}`);
    let log = "";
    try {
      log = readFileSync(join(this.workDir, "console.log"), "latin1");
    } catch {
      return;
    }
    const panic = log.indexOf("Kernel panic");
    if (panic >= 0) throw new Error(`the guest kernel panicked:\n${log.slice(Math.max(0, panic - 3000), panic + 200)}`);
  }

  /** Retry a login until it succeeds; returns the milliseconds since power-on. */
  async waitForLogin(user: string, keyPath: string, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last: CommandResult | undefined;
    while (Date.now() < deadline) {
      this.assertAlive();
      last = await this.ssh("admin", user, keyPath, "true", { timeoutMs: 60_000 });
      if (last.code === 0) return Date.now() - this.poweredOnAt;
      await sleep(3000);
    }
    throw new Error(`no SSH login as ${user} within ${timeoutMs} ms: ${last?.stderr}`);
  }

  /** Reboot the guest from inside and wait until `user` can log in again; returns the milliseconds it took. */
  async reboot(user: string, keyPath: string, timeoutMs: number): Promise<number> {
    const started = Date.now();
    const bootId = (await this.ssh("admin", user, keyPath, "cat /proc/sys/kernel/random/boot_id")).stdout.trim();
    await this.ssh("admin", user, keyPath, "sudo systemctl reboot", { timeoutMs: 30_000 });
    const deadline = started + timeoutMs;
    while (Date.now() < deadline) {
      await sleep(5000);
      this.assertAlive();
      const r = await this.ssh("admin", user, keyPath, "cat /proc/sys/kernel/random/boot_id", { timeoutMs: 60_000 });
      if (r.code === 0 && r.stdout.trim() !== bootId) return Date.now() - started;
    }
    throw new Error(`the VM did not come back within ${timeoutMs} ms`);
  }

  /** Power off and delete the disks. */
  async stop(): Promise<void> {
    this.qmpSocket?.destroy();
    if (this.qemu && !this.exited) {
      this.qemu.kill("SIGTERM");
      await new Promise((r) => this.qemu!.once("exit", r));
    }
    if (!process.env.WEBSTACK_VM_KEEP) rmSync(this.workDir, { recursive: true, force: true });
  }
}

/**
 * Connect to a forwarded port, send `payload`, and collect what comes back within `waitMs`.
 * qemu accepts every connection on the host side and only then connects to the guest, so
 * "connected" means nothing: a port answers only if bytes come back.
 */
export function probe(port: number, payload: string, waitMs = 8000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, "127.0.0.1");
    const done = () => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString("latin1"));
    };
    const timer = setTimeout(done, waitMs);
    socket.on("connect", () => {
      if (payload) socket.write(payload);
    });
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      done();
    });
  });
}
