/**
 * The two VMs the hardening audit compares: the server booted from the rendered cloud-init, and
 * stock Debian 13 (the same image with a minimal cloud-config) for the lynis baseline. Shared by
 * the VM test and `bench/vm.ts`.
 */
import { execFile } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { type CloudInitInput, renderCloudInit } from "../../cloud-init/render";
import { type BootPhases, bootPhases } from "./boot-phases";
import { IMAGES_SERIAL } from "./stack";
import { CACHE_DIR, type CommandResult, ensureImage, makeKeyPair, NETWORKS, run, Vm } from "./vm";

/** The data volume disk's virtio serial; the guest sees it as /dev/disk/by-id/virtio-<serial>. */
export const VOLUME_SERIAL = "HC_Volume_4242";
export const VOLUME_DEVICE = `/dev/disk/by-id/virtio-${VOLUME_SERIAL}`;

/** Ports something listens on inside the server that must not answer from outside in tunnel mode. */
export const PRIVATE_PORTS = {
  caddyHttp: 80,
  caddyHttps: 443,
  app: 3000,
  postgres: 5432,
  redis: 6379,
  /** A plain host process (not Docker): only the host firewall stands in its way. */
  hostProcess: 8080,
} as const;

const execFileAsync = promisify(execFile);

/**
 * Power-on to the first login, and power-on to cloud-init's final status. Generous: TCG on two
 * shared cores. Seen before the apt proxy: SSH at 2 to 6 minutes, cloud-init done at 15 to 21
 * minutes with one other VM beside it and at 41 with two.
 */
export const LOGIN_TIMEOUT_MS = 12 * 60_000;
export const CLOUD_INIT_TIMEOUT_MS = 45 * 60_000;

/**
 * What a run of the VM suite covers, from `WEBSTACK_VM_SCOPE`:
 *   - `full` (`npm run test:vm`, the default): the whole audit, with the app stack deployed into
 *     the server, a reboot with the stack, and lynis on a twin. Run it before a change to
 *     cloud-init or the host lands.
 *   - `host` (`npm run test:vm:host`, what CI runs): one VM, the server as cloud-init leaves it:
 *     first boot, the volume and Docker, ports from outside, SSH, the rest of the hardening,
 *     fail2ban. It fits CI's time on a slow day; the full audit does not reliably.
 */
export type VmScope = "host" | "full";

export function vmScope(value = process.env.WEBSTACK_VM_SCOPE): VmScope {
  if (value === undefined || value === "" || value === "full") return "full";
  if (value === "host") return "host";
  throw new Error(`WEBSTACK_VM_SCOPE must be "full" or "host", got ${JSON.stringify(value)}`);
}

export interface Keys {
  dir: string;
  admin: { path: string; publicKey: string };
  deploy: { path: string; publicKey: string };
  /** A key the server has never seen: the attacker's. */
  stranger: { path: string; publicKey: string };
}

export async function makeKeys(): Promise<Keys> {
  const dir = mkdtempSync(join(tmpdir(), "webstack-vm-keys-"));
  return {
    dir,
    admin: await makeKeyPair(dir, "admin"),
    deploy: await makeKeyPair(dir, "deploy"),
    stranger: await makeKeyPair(dir, "stranger"),
  };
}

export function removeKeys(keys: Keys | undefined): void {
  if (keys) rmSync(keys.dir, { recursive: true, force: true });
}

/** The renderer's input for the test stack: tunnel mode, the VM's volume disk. */
export function testStackInput(keys: Keys): CloudInitInput {
  return {
    hostname: "webstack-vm",
    adminSshKeys: [keys.admin.publicKey],
    deployPublicKey: keys.deploy.publicKey,
    exposure: "tunnel",
    swapMb: 1024,
    volumeDevice: VOLUME_DEVICE,
    autoRebootTime: "03:30",
    // The admins' network: the one the test's SSH comes from.
    sshAllowedCidrs: [NETWORKS.admin.net],
  };
}

export interface BootFigures {
  /** Power-on to the first successful SSH login. */
  sshMs: number;
  /** Power-on to `cloud-init status --wait` returning. */
  cloudInitMs: number;
  cloudInit: CommandResult;
  /** Where first boot's time went (cloud-init's modules, apt and dpkg), read from the guest's logs. */
  phases?: BootPhases;
  /** When cloud-init did not reach a final status in time: what it was doing then. */
  stalled?: string;
}

const FINAL_STATUS = /^status: (done|error|disabled)$/m;

/**
 * Boot a VM and wait until cloud-init is done (whatever its result; the caller asserts it).
 * Past CLOUD_INIT_TIMEOUT_MS, `stalled` says what cloud-init was doing: its long status, the
 * processes under it, the end of its output log.
 */
export async function bootAndWait(vm: Vm, keyPath: string): Promise<BootFigures> {
  const sshMs = await vm.waitForLogin("admin", keyPath, LOGIN_TIMEOUT_MS);
  // `status --wait` can end early without a verdict: cloud-init restarts sshd and installs
  // libpam-systemd, which may drop the session. Ask again until the status is final.
  let cloudInit: CommandResult = { code: 1, stdout: "", stderr: "cloud-init status was never read" };
  const deadline = vm.poweredOnAt + CLOUD_INIT_TIMEOUT_MS;
  while (Date.now() < deadline) {
    cloudInit = await vm.ssh("admin", "admin", keyPath, "cloud-init status --wait --long", {
      timeoutMs: Math.max(60_000, deadline - Date.now()),
    });
    if (FINAL_STATUS.test(cloudInit.stdout)) break;
    await new Promise((r) => setTimeout(r, 5000));
  }
  const cloudInitMs = Date.now() - vm.poweredOnAt;
  if (!FINAL_STATUS.test(cloudInit.stdout)) {
    return { sshMs, cloudInitMs, cloudInit, stalled: await whatCloudInitIsDoing(vm, keyPath) };
  }
  return { sshMs, cloudInitMs, cloudInit, phases: await readBootPhases(vm, keyPath) };
}

/** cloud-init's long status, the apt/dpkg processes running, the last lines of its output log. */
async function whatCloudInitIsDoing(vm: Vm, keyPath: string): Promise<string> {
  const r = await vm.ssh(
    "admin",
    "admin",
    keyPath,
    [
      "cloud-init status --long",
      "echo '--- processes (elapsed s, command):'",
      "ps -eo etimes=,args= | grep -E 'apt|dpkg|cloud-init|postinst|trigger' | grep -v grep",
      "echo '--- /var/log/cloud-init-output.log:'",
      "sudo tail -n 40 /var/log/cloud-init-output.log",
    ].join("; "),
    { timeoutMs: 5 * 60_000 },
  );
  return `cloud-init had no final status ${Math.round(CLOUD_INIT_TIMEOUT_MS / 60_000)} minutes after power-on:\n${r.stdout}${r.stderr}`;
}

/** The logs `bootPhases` reads, fetched from the guest in one SSH session. */
export async function readBootPhases(vm: Vm, keyPath: string): Promise<BootPhases | undefined> {
  // Plain characters only: the line is part of a shell command.
  const separator = "----webstack-boot-phases----";
  const r = await vm.ssh(
    "admin",
    "admin",
    keyPath,
    `sudo sh -c 'systemd-analyze blame --no-pager; echo ${separator}; cloud-init analyze blame -i /var/log/cloud-init.log; echo ${separator}; cat /var/log/apt/history.log; echo ${separator}; cat /var/log/dpkg.log; echo ${separator}; date -u -d "$(uptime -s)" +%s'`,
    { timeoutMs: 5 * 60_000 },
  );
  const [unitBlame, blame, aptHistory, dpkgLog, bootSeconds] = r.stdout.split(`${separator}\n`);
  if (bootSeconds === undefined) return undefined;
  return bootPhases({ unitBlame, blame, aptHistory, dpkgLog }, Number(bootSeconds.trim()) * 1000);
}

/**
 * Boot the server from the user data `renderCloudInit` gives for the test stack, with the memory
 * of the smallest tier (cax11, 4 GB) and, when given, the stand-in images' tarball on a
 * read-only disk.
 */
export async function startHardenedServer(keys: Keys, imageDir: string, imagesTarball?: string): Promise<Vm> {
  return Vm.start({
    imageDir,
    userData: renderCloudInit(testStackInput(keys)),
    // Hetzner hands the server's SSH keys to cloud-init too, which puts them on root.
    metadataPublicKeys: [keys.admin.publicKey],
    hostname: "webstack-vm",
    outsidePorts: Object.values(PRIVATE_PORTS),
    volume: { serial: VOLUME_SERIAL, sizeGb: 4 },
    readOnlyDisks: imagesTarball ? [{ serial: IMAGES_SERIAL, path: imagesTarball }] : [],
    memoryMb: 4096,
  });
}

/** Plug the blank volume in and wait until it is mounted and Docker (which waits for it) runs. */
export async function plugVolumeAndWaitForDocker(vm: Vm, adminKeyPath: string): Promise<void> {
  await vm.attachVolume();
  const ready = await vm.ssh(
    "admin",
    "admin",
    adminKeyPath,
    "until mountpoint -q /srv/data && systemctl is-active -q docker; do sleep 2; done",
    { timeoutMs: 15 * 60_000 },
  );
  if (ready.code !== 0) throw new Error(`volume or Docker did not come up: ${ready.stderr}`);
}

/** What the audit twin measured. */
export interface TwinAudit {
  index: number;
  /** Power-on to cloud-init done, on the twin. */
  cloudInitMs: number;
  /** The lynis audit itself. */
  auditMs: number;
}

/**
 * The lynis audit of this server, on a twin: a second VM booted from the same user data, with
 * its own volume plugged in after first boot, audited once the volume is mounted and Docker runs.
 * Lynis takes about half an hour under TCG; on a twin it runs on the machine's other core while
 * the first VM deploys the stack, is probed and rebooted. The twin runs no app stack: it is the
 * server as cloud-init leaves it.
 */
export async function auditTwin(keys: Keys, imageDir: string): Promise<TwinAudit> {
  const twin = await startHardenedServer(keys, imageDir);
  try {
    const boot = await bootAndWait(twin, keys.admin.path);
    if (!/^status: done$/m.test(boot.cloudInit.stdout) || boot.cloudInit.code !== 0) {
      throw new Error(`the audit twin: cloud-init did not finish cleanly:\n${boot.cloudInit.stdout}`);
    }
    await plugVolumeAndWaitForDocker(twin, keys.admin.path);
    const started = Date.now();
    const { index } = await lynisIndex(twin, keys.admin.path);
    return { index, cloudInitMs: boot.cloudInitMs, auditMs: Date.now() - started };
  } finally {
    await twin.stop();
  }
}

/**
 * The image of the listeners the port probes publish the careless way: this machine's static
 * busybox (Debian's busybox-static) serving one page on port 8000. A few hundred kilobytes over
 * SSH, where the stand-in app images take minutes to load under TCG.
 */
export const LISTENER_IMAGE = "local/listener:test";
export const LISTENER_PAGE = "stand-in";

/** Import LISTENER_IMAGE into the VM's engine (as admin, with sudo). */
export async function importListenerImage(vm: Vm, adminKeyPath: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "webstack-listener-"));
  try {
    mkdirSync(join(dir, "bin"));
    mkdirSync(join(dir, "www"));
    copyFileSync("/bin/busybox", join(dir, "bin/busybox"));
    writeFileSync(join(dir, "www/index.html"), `${LISTENER_PAGE}\n`);
    const { stdout: tarball } = await execFileAsync("tar", ["-C", dir, "-c", "."], {
      encoding: "buffer",
      maxBuffer: 64 * 1024 * 1024,
    });
    const cmd = JSON.stringify(["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]);
    const imported = await vm.ssh(
      "admin",
      "admin",
      adminKeyPath,
      `sudo docker import --change 'CMD ${cmd}' - ${LISTENER_IMAGE} >/dev/null`,
      { stdin: tarball, timeoutMs: 10 * 60_000 },
    );
    if (imported.code !== 0) throw new Error(`importing the listener image failed: ${imported.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Stock Debian: an admin user with a key, nothing else. */
export function stockUserData(keys: Keys): string {
  const config = {
    users: [
      {
        name: "admin",
        shell: "/bin/bash",
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: true,
        ssh_authorized_keys: [keys.admin.publicKey],
      },
    ],
    manage_etc_hosts: true,
  };
  return `#cloud-config\n${stringify(config)}`;
}

/**
 * Debian 13's lynis package, fetched once on the host (in the trixie chroot that
 * scripts/install-test-tools.sh keeps) and cached. The VMs install it with dpkg: apt under TCG
 * spends minutes only reading the package lists.
 */
async function lynisDeb(): Promise<string> {
  const cached = join(CACHE_DIR, "vm", "lynis.deb");
  if (existsSync(cached)) return cached;
  const chroot = join(CACHE_DIR, "cloud-init-trixie");
  const fetched = await run(
    "chroot",
    [
      chroot,
      "sh",
      "-c",
      "cd /tmp && apt-get -qq update && rm -f lynis_*.deb && apt-get -qq download lynis && ls lynis_*.deb",
    ],
    { timeoutMs: 10 * 60_000 },
  );
  if (fetched.code !== 0) throw new Error(`downloading lynis failed: ${fetched.stderr}`);
  copyFileSync(join(chroot, "tmp", fetched.stdout.trim().split("\n").pop()!), cached);
  return cached;
}

/**
 * Lynis tests the audits skip: the slowest under TCG among those that award no hardening points
 * and set nothing a later test reads, so the index is the one a full audit gives. A full audit
 * scored this server 76 in 37 minutes; with the skips it scored 77 in 21 minutes, one more
 * hardening sysctl (dev.tty.ldisc_autoload) having landed in between. Measured on this server,
 * with every test: CRYP-7902 (certificate expiry, `dpkg -S` for every CA certificate) 360 s,
 * NETW-2600 (two awk runs for each IPv6 sysctl of every Docker veth) 317 s, FILE-7524 (file
 * permissions) 33 s.
 */
export const LYNIS_SKIPPED_TESTS = ["CRYP-7902", "NETW-2600", "FILE-7524"] as const;

/** Throw unless every skipped test's code, in this lynis package, awards no hardening points. */
export async function assertSkippedTestsAwardNoPoints(deb: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "webstack-lynis-"));
  try {
    const unpacked = await run("dpkg-deb", ["-x", deb, dir]);
    if (unpacked.code !== 0) throw new Error(`dpkg-deb -x ${deb}: ${unpacked.stderr}`);
    const include = join(dir, "usr/share/lynis/include");
    const sources = readdirSync(include)
      .filter((f) => f.startsWith("tests_"))
      .map((f) => readFileSync(join(include, f), "latin1"));
    for (const id of LYNIS_SKIPPED_TESTS) {
      // A test runs from its `Register --test-no ID` line to the next row of #####.
      const source = sources.find((text) => text.includes(`Register --test-no ${id} `));
      if (!source) throw new Error(`lynis has no test ${id}: review LYNIS_SKIPPED_TESTS`);
      const start = source.indexOf(`Register --test-no ${id} `);
      const end = source.indexOf("\n#####", start);
      if (source.slice(start, end < 0 ? undefined : end).includes("AddHP")) {
        throw new Error(`lynis test ${id} awards hardening points now: it must not be skipped`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Install Debian 13's lynis inside the VM, run a full audit and return the hardening index. */
export async function lynisIndex(vm: Vm, keyPath: string): Promise<{ index: number; report: string }> {
  const deb = await lynisDeb();
  await assertSkippedTestsAwardNoPoints(deb);
  const skips = LYNIS_SKIPPED_TESTS.map((id) => `skip-test=${id}`).join("\\n");
  const install = await vm.ssh(
    "admin",
    "admin",
    keyPath,
    `cat >/tmp/lynis.deb && sudo dpkg -i /tmp/lynis.deb >/dev/null && printf '${skips}\\n' | sudo tee /etc/lynis/custom.prf >/dev/null`,
    { stdin: readFileSync(deb), timeoutMs: 15 * 60_000 },
  );
  if (install.code !== 0) throw new Error(`installing lynis failed: ${install.stderr}`);
  const audit = await vm.ssh(
    "admin",
    "admin",
    keyPath,
    "sudo lynis audit system --quick --no-colors >/dev/null 2>&1; sudo cat /var/log/lynis-report.dat",
    // Lynis forks thousands of short processes: about 30 minutes under TCG with every test.
    { timeoutMs: 60 * 60_000 },
  );
  const match = /^hardening_index=(\d+)$/m.exec(audit.stdout);
  if (!match) throw new Error(`no hardening index in the lynis report: ${audit.stdout.slice(-2000)} ${audit.stderr}`);
  return { index: Number(match[1]), report: audit.stdout };
}

/**
 * The stock Debian lynis index for this image, measured once per image (it depends on nothing
 * else) and cached next to it.
 */
export async function stockLynisIndex(imageDir: string): Promise<{ index: number; cached: boolean }> {
  const cacheFile = join(imageDir, "stock-lynis.json");
  if (existsSync(cacheFile)) {
    return { index: (JSON.parse(readFileSync(cacheFile, "utf8")) as { index: number }).index, cached: true };
  }
  const keys = await makeKeys();
  const vm = await Vm.start({
    imageDir,
    userData: stockUserData(keys),
    metadataPublicKeys: [keys.admin.publicKey],
    hostname: "stock-debian",
    outsidePorts: [],
  });
  try {
    const boot = await bootAndWait(vm, keys.admin.path);
    if (boot.cloudInit.code !== 0) throw new Error(`stock Debian: cloud-init failed: ${boot.cloudInit.stdout}`);
    const { index } = await lynisIndex(vm, keys.admin.path);
    writeFileSync(cacheFile, `${JSON.stringify({ index, measuredAt: new Date().toISOString() })}\n`);
    return { index, cached: false };
  } finally {
    await vm.stop();
    removeKeys(keys);
  }
}

export { ensureImage };
