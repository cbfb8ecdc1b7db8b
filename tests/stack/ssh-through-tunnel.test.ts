/**
 * scripts/ssh-through-tunnel.sh, the way the deploy workflow runs it, between two network
 * namespaces: a "server" whose real OpenSSH sshd the Hetzner firewall (an iptables DROP) hides
 * from the "runner", and the runner, which must reach that sshd at the server's own address and
 * port 22, as every remote command of `pulumi up` connects.
 *
 * Cloudflare's part cannot run here: a stand-in `cloudflared` on PATH plays `cloudflared access
 * tcp`, admitting only the expected service token (read from its environment, as the real one
 * does) and carrying connections to a relay in the server namespace that plays the tunnel and
 * the cloudflared container. What is judged for real: the redirect of the server's address, the
 * sshd answering through it, the token never on a command line, and what a refusal leaves behind.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/mock-engine";

const id = `${process.pid % 10000}`;
const SERVER_NS = `sst-server-${id}`;
const RUNNER_NS = `sst-runner-${id}`;
const RUNNER_IP = "10.203.0.1";
const SERVER_IP = "10.203.0.2";
const TUNNEL_RELAY_PORT = 7844;
const SSH_NAME = "shop-prod-ssh.example.com";
const TOKEN = { id: "0123456789abcdef0123456789abcdef.access", secret: "f".repeat(32) + "e".repeat(32) };
const SCRIPT = join(PROJECT_ROOT, "scripts", "ssh-through-tunnel.sh");

let dir: string;
const daemons: ReturnType<typeof spawn>[] = [];

function sh(args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(args[0], args.slice(1), { encoding: "utf8", env: options.env ?? process.env, timeout: 120_000 });
  return { status: r.status ?? -1, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}
const inNs = (ns: string, args: string[]) => ["ip", "netns", "exec", ns, ...args];

/** The script in the runner namespace, with the stand-in cloudflared first on PATH. */
function script(args: string[], token = TOKEN) {
  const env = {
    ...process.env,
    PATH: `${join(dir, "bin")}:${process.env.PATH}`,
    TUNNEL_SERVICE_TOKEN_ID: token.id,
    TUNNEL_SERVICE_TOKEN_SECRET: token.secret,
    WEBSTACK_SSH_STATE_DIR: join(dir, "state"),
    WEBSTACK_SSH_WAIT_SECONDS: "8",
  };
  return sh(inNs(RUNNER_NS, ["bash", SCRIPT, ...args]), { env });
}

/** `ssh root@<server-ipv4> echo …` from the runner, as the deploy's commands connect. */
function sshFromRunner() {
  return sh(
    inNs(RUNNER_NS, [
      "ssh",
      ...["-i", join(dir, "client_key"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=4", "-o", "LogLevel=ERROR"],
      ...["-o", "StrictHostKeyChecking=no", "-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`],
      `root@${SERVER_IP}`,
      "echo through-the-tunnel",
    ]),
  );
}

const redirectRules = () => sh(inNs(RUNNER_NS, ["iptables", "-t", "nat", "-S", "OUTPUT"])).output;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ssh-through-tunnel-"));
  for (const ns of [SERVER_NS, RUNNER_NS]) execFileSync("ip", ["netns", "add", ns]);
  execFileSync("ip", [
    "link",
    "add",
    `sst-r${id}`,
    "netns",
    RUNNER_NS,
    "type",
    "veth",
    "peer",
    `sst-s${id}`,
    "netns",
    SERVER_NS,
  ]);
  for (const [ns, dev, ip] of [
    [RUNNER_NS, `sst-r${id}`, RUNNER_IP],
    [SERVER_NS, `sst-s${id}`, SERVER_IP],
  ]) {
    execFileSync("ip", ["-n", ns, "addr", "add", `${ip}/24`, "dev", dev]);
    execFileSync("ip", ["-n", ns, "link", "set", dev, "up"]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }

  // The server: OpenSSH's sshd with a key-only root login, behind "the Hetzner firewall".
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "client_key")]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "client_key.pub")));
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `HostKey ${join(dir, "host_key")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "",
    ].join("\n"),
  );
  mkdirRun();
  daemons.push(spawn("ip", inNs(SERVER_NS, ["/usr/sbin/sshd", "-D", "-e", "-f", join(dir, "sshd_config")]).slice(1)));
  execFileSync(
    "ip",
    inNs(SERVER_NS, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-s", RUNNER_IP, "-j", "DROP"]).slice(1),
  );
  // The tunnel's path: from the edge, through the connector, to sshd on the host.
  daemons.push(
    spawn(
      "ip",
      inNs(SERVER_NS, ["socat", `TCP-LISTEN:${TUNNEL_RELAY_PORT},fork,reuseaddr`, "TCP:127.0.0.1:22"]).slice(1),
    ),
  );

  // The stand-in `cloudflared access tcp --hostname H --url 127.0.0.1:P`: Access admits the
  // expected token (from the environment) to the tunnel; any other is refused (closed at once).
  const bin = join(dir, "bin");
  execFileSync("mkdir", ["-p", bin, join(dir, "state")]);
  writeFileSync(
    join(bin, "cloudflared"),
    [
      "#!/bin/sh",
      `printf '%s\\n' "$*" >> ${join(dir, "cloudflared-argv")}`,
      '[ "$1 $2" = "access tcp" ] || exit 2',
      'while [ $# -gt 0 ]; do case "$1" in --hostname) host=$2; shift;; --url) url=$2; shift;; esac; shift; done',
      `[ "$host" = "${SSH_NAME}" ] || exit 3`,
      `if [ "$TUNNEL_SERVICE_TOKEN_ID" = "${TOKEN.id}" ] && [ "$TUNNEL_SERVICE_TOKEN_SECRET" = "${TOKEN.secret}" ]; then`,
      `  upstream=TCP:${SERVER_IP}:${TUNNEL_RELAY_PORT}`,
      "else",
      '  echo "failed to connect to origin: 403 Forbidden: Access denied" >&2; upstream=SYSTEM:true',
      "fi",
      'port=$(printf %s "$url" | sed "s/.*://")',
      'exec socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "$upstream"',
      "",
    ].join("\n"),
  );
  chmodSync(join(bin, "cloudflared"), 0o755);
  waitFor(() => sh(inNs(SERVER_NS, ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/22"])).status === 0, "sshd");
});

afterAll(() => {
  for (const d of daemons) d.kill();
  sh(inNs(RUNNER_NS, ["bash", "-c", "pkill -f 'socat TCP-LISTEN:22022' || true"]));
  for (const ns of [SERVER_NS, RUNNER_NS]) sh(["ip", "netns", "del", ns]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function mkdirRun() {
  // sshd insists on its privilege separation directory.
  if (!existsSync("/run/sshd")) execFileSync("mkdir", ["-p", "-m", "0755", "/run/sshd"]);
}

function waitFor(ok: () => boolean, what: string) {
  for (let i = 0; i < 50; i++) {
    if (ok()) return;
    execFileSync("sleep", ["0.2"]);
  }
  throw new Error(`${what} did not come up`);
}

describe("SSH through the tunnel from a runner no firewall lists", () => {
  it("cannot reach the server's sshd without it: the firewall drops the runner", () => {
    const r = sshFromRunner();
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/timed out/i);
  });

  it("refuses a token Access does not admit, naming the hostname, printing no secret, leaving no redirect", () => {
    const wrong = { id: TOKEN.id, secret: "0".repeat(64) };
    const r = script(["start", SSH_NAME, SERVER_IP], wrong);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain(`no SSH server answered at ${SERVER_IP}:22 through ${SSH_NAME}`);
    expect(r.output).toContain("Access denied");
    expect(r.output).not.toContain(wrong.secret);
    expect(redirectRules()).not.toContain("webstack-ssh-through-tunnel");
  });

  it("with the deploy token, reaches sshd at the server's own address and port 22", () => {
    const r = script(["start", SSH_NAME, SERVER_IP]);
    expect(r.output).toContain(`${SERVER_IP}:22 now goes through ${SSH_NAME}`);
    expect(r.status).toBe(0);
    const ssh = sshFromRunner();
    expect(ssh.output.trim()).toBe("through-the-tunnel");
    expect(ssh.status).toBe(0);
  });

  it("never puts the token on a command line", () => {
    const argv = readFileSync(join(dir, "cloudflared-argv"), "utf8");
    expect(argv).toContain(`access tcp --hostname ${SSH_NAME} --url 127.0.0.1:22022`);
    expect(argv).not.toContain(TOKEN.secret);
    expect(argv).not.toContain(TOKEN.id);
  });

  it("stop takes the redirect away again", () => {
    const r = script(["stop", SERVER_IP]);
    expect(r.status).toBe(0);
    expect(redirectRules()).not.toContain("webstack-ssh-through-tunnel");
    expect(sshFromRunner().status).not.toBe(0);
  });

  it("refuses arguments that are not a hostname and an IPv4 address, before touching anything", () => {
    const r = script(["start", "not a host; rm -rf /", SERVER_IP]);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("is not a hostname (the stack output sshHostname)");
    expect(script(["start", SSH_NAME, "10.203.0.256"]).output).toContain("is not an IPv4 address");
  });
});
