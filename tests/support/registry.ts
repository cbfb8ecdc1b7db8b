/**
 * A private registry on this machine for the deploy's registry tests: Debian's docker-registry
 * (the CNCF distribution) with htpasswd auth and TLS from a test CA that the Docker engine trusts
 * (`/etc/docker/certs.d/<host:port>/ca.crt`). It listens on a non-loopback address: the engine
 * treats 127.0.0.0/8 as an insecure registry and would not check TLS there.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { DOCKER, run } from "./stack-configs";

export interface TestRegistry {
  /** `host:port`, as image references and `docker login` name it. */
  readonly server: string;
  readonly username: string;
  readonly password: string;
  /** A Docker CLI config directory logged in to the registry (for pushing). */
  readonly pusherConfig: string;
  stop(): void;
}

function must(file: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): string {
  const result = run(file, args, { input, env: env ?? process.env, timeoutMs: 600_000 });
  if (result.status !== 0) throw new Error(`${file} ${args.join(" ")} failed:\n${result.stderr}`);
  return result.stdout.trim();
}

/** This machine's first non-loopback IPv4 address that is not on one of Docker's bridges. */
function hostAddress(): string {
  for (const [name, list] of Object.entries(networkInterfaces())) {
    if (/^(docker|br-|veth)/.test(name)) continue;
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  throw new Error("no non-loopback IPv4 address for the test registry");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** Start the registry and wait until it answers; `stop()` ends it and removes the engine's trust in it. */
export async function startRegistry(): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "webstack-registry-"));
  const ip = hostAddress();
  const port = await freePort();
  const server = `${ip}:${port}`;
  const username = "deploy-bot";
  const password = randomBytes(18).toString("base64url");
  const openssl = (...args: string[]) => must("openssl", args);
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=webstack test CA",
    "-keyout",
    join(dir, "ca.key"),
    "-out",
    join(dir, "ca.crt"),
  );
  openssl(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    `/CN=${ip}`,
    "-keyout",
    join(dir, "registry.key"),
    "-out",
    join(dir, "registry.csr"),
  );
  writeFileSync(join(dir, "san.ext"), `subjectAltName=IP:${ip}\n`);
  openssl(
    "x509",
    "-req",
    "-days",
    "2",
    "-in",
    join(dir, "registry.csr"),
    "-CA",
    join(dir, "ca.crt"),
    "-CAkey",
    join(dir, "ca.key"),
    "-CAcreateserial",
    "-extfile",
    join(dir, "san.ext"),
    "-out",
    join(dir, "registry.crt"),
  );
  // The password on htpasswd's stdin (-i), bcrypt (-B) as the registry requires.
  writeFileSync(join(dir, "htpasswd"), `${must("htpasswd", ["-niB", username], password)}\n`);
  writeFileSync(
    join(dir, "config.yml"),
    stringify({
      version: 0.1,
      log: { level: "warn" },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      http: { addr: server, tls: { certificate: join(dir, "registry.crt"), key: join(dir, "registry.key") } },
      auth: { htpasswd: { realm: "webstack-test", path: join(dir, "htpasswd") } },
    }),
  );
  const trustDir = `/etc/docker/certs.d/${server}`;
  mkdirSync(trustDir, { recursive: true });
  writeFileSync(join(trustDir, "ca.crt"), readFileSync(join(dir, "ca.crt")));

  // Its log (each refused login is a warning) goes to a file, shown when it does not come up.
  const log = openSync(join(dir, "registry.log"), "a");
  const child: ChildProcess = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", log, log],
  });
  const pusherConfig = join(dir, "pusher");
  const env = { ...process.env, DOCKER_CONFIG: pusherConfig };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const login = run(DOCKER, ["login", "--username", username, "--password-stdin", server], { input: password, env });
    if (login.status === 0) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill();
      throw new Error(
        `the test registry did not come up: ${login.stderr}\n${readFileSync(join(dir, "registry.log"), "utf8")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    server,
    username,
    password,
    pusherConfig,
    stop() {
      child.kill();
      rmSync(trustDir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Push a local image as `ref`, a multi-platform index whose linux/amd64 entry is the image itself
 * (what this machine's engine runs) and whose linux/arm64 entry is the image with one marker file
 * more, annotated arm64: the registry then serves the index a published multi-arch image has.
 * The local tags of what was pushed are removed, so a deploy must pull `ref` from the registry.
 */
export function pushMultiPlatform(registry: TestRegistry, localImage: string, ref: string): void {
  const env = { ...process.env, DOCKER_CONFIG: registry.pusherConfig };
  const docker = (...args: string[]) => must(DOCKER, args, undefined, env);
  const amd64 = `${ref}-amd64`;
  const arm64 = `${ref}-arm64`;
  docker("tag", localImage, amd64);
  docker("push", "--quiet", amd64);
  const container = docker("create", localImage);
  writeFileSync(join(registry.pusherConfig, "arm64-stand-in"), "the arm64 entry of a test index\n");
  docker("cp", join(registry.pusherConfig, "arm64-stand-in"), `${container}:/arm64-stand-in`);
  docker("commit", container, arm64);
  docker("rm", container);
  docker("push", "--quiet", arm64);
  docker("manifest", "create", "--amend", ref, amd64, arm64);
  docker("manifest", "annotate", "--os", "linux", "--arch", "arm64", ref, arm64);
  docker("manifest", "push", "--purge", ref);
  docker("image", "rm", amd64, arm64);
}

/** Push a local image as `ref`, one linux/amd64 manifest and no index (an amd64-only image). */
export function pushSinglePlatform(registry: TestRegistry, localImage: string, ref: string): void {
  const env = { ...process.env, DOCKER_CONFIG: registry.pusherConfig };
  must(DOCKER, ["tag", localImage, ref], undefined, env);
  must(DOCKER, ["push", "--quiet", ref], undefined, env);
  must(DOCKER, ["image", "rm", ref], undefined, env);
}
