/**
 * Deploys from a private registry on the real tools: Debian's docker-registry with htpasswd auth
 * and TLS from a test CA (tests/support/registry.ts), the Docker engine, and the deploy script as
 * the AppStack runs it, with the `.registries` file the program renders. The stack is the e2e
 * stack's, with every image in the registry as a multi-platform index (an amd64 entry this
 * machine runs, an arm64 entry as the server would pull), and nothing of it on the engine before.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderDotenv } from "../../compose/dotenv";
import { renderRegistryLogins } from "../../compose/registry-logins";
import { renderStackFiles } from "../../compose/stack-files";
import { resolveConfig, type StackConfig } from "../../config/resolve";
import { appDir } from "../../model/server";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { pushMultiPlatform, pushSinglePlatform, startRegistry, type TestRegistry } from "../support/registry";
import { configFileValues, DOCKER, run } from "../support/stack-configs";

const PROJECT = "registry";
let registry: TestRegistry;
let root: string;
let dataDir: string;
let dockerConfig: string;
let base: Record<string, unknown>;
const passwords = { postgres: randomBytes(18).toString("hex"), redis: randomBytes(18).toString("hex") };

function docker(...args: string[]): string {
  const result = run(DOCKER, args, { timeoutMs: 600_000 });
  if (result.status !== 0) throw new Error(`docker ${args.join(" ")} failed:\n${result.stderr}`);
  return result.stdout.trim();
}

const image = (name: string) => `${registry.server}/webstack/${name}`;

/** The e2e stack under another project name, its images from the registry, logged in with `password`. */
function stackWith(changes: { appImage?: string; webImage?: string; password?: string; registries?: boolean }) {
  const appImage = changes.appImage ?? image("app:1.0");
  const services = (base.services as { name: string; image: string }[]).map((s) => ({
    ...s,
    image: s.name === "web" ? (changes.webImage ?? appImage) : appImage,
  }));
  const config = resolveConfig(PROJECT, {
    ...base,
    appName: PROJECT,
    services,
    postgres: { image: image("postgis:17-3.5") },
    redis: { image: image("redis:7.4"), appendOnly: true },
    proxy: { caddyImage: image("caddy:2.10"), cloudflaredImage: image("cloudflared:2025.8.1") },
    registries:
      changes.registries === false
        ? []
        : [{ server: registry.server, username: registry.username, passwordSecret: "REGISTRY_TOKEN" }],
  });
  return { config, password: changes.password ?? registry.password };
}

let releases = 0;
/** Write a release directory as the AppStack ships it (the .registries file included). */
function writeRelease({ config, password }: { config: StackConfig; password: string }): string {
  const { files } = renderStackFiles(config, dataDir);
  const dir = join(appDir(dataDir), "releases", `r${++releases}`);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), text, { mode: file.endsWith(".sh") ? 0o755 : 0o644 });
  }
  const env = renderDotenv({
    POSTGRES_PASSWORD: passwords.postgres,
    REDIS_PASSWORD: passwords.redis,
    TUNNEL_TOKEN: "registry-stand-in-tunnel-token",
    JWT_SECRET: "registry-jwt-secret",
  });
  writeFileSync(join(dir, ".env"), env, { mode: 0o600 });
  writeFileSync(join(dir, ".registries"), renderRegistryLogins(config.registries, { REGISTRY_TOKEN: password }), {
    mode: 0o600,
  });
  return dir;
}

/** Run the deploy script as the deploy user would, with its own docker config (its logins). */
function deploy(release: string, env: Record<string, string> = {}) {
  return run("bash", [join(release, "scripts/deploy.sh"), appDir(dataDir), release], {
    env: { ...process.env, DOCKER, DOCKER_CONFIG: dockerConfig, ...env },
    timeoutMs: 900_000,
  });
}

/** The project's containers and when each started: unchanged when nothing running was touched. */
function running(): string {
  const ids = docker("ps", "-q", "--filter", `label=com.docker.compose.project=${PROJECT}`).split("\n").filter(Boolean);
  return ids
    .map((id) => docker("inspect", "--format", "{{.Name}} {{.Image}} {{.State.StartedAt}}", id))
    .sort()
    .join("\n");
}

const localImage = (ref: string) => run(DOCKER, ["image", "inspect", ref]).status === 0;
const authsOf = () => Object.keys(JSON.parse(readFileSync(join(dockerConfig, "config.json"), "utf8")).auths ?? {});

beforeAll(async () => {
  const setup = (script: string) => {
    const result = run("bash", [join(PROJECT_ROOT, script)], { timeoutMs: 1_200_000 });
    if (result.status !== 0) throw new Error(`${script} failed:\n${result.stdout}\n${result.stderr}`);
  };
  setup("scripts/start-dockerd.sh");
  setup("tests/stack/images/build.sh");
  registry = await startRegistry();
  const pushStarted = Date.now();
  pushMultiPlatform(registry, "local/app:standin", image("app:1.0"));
  pushMultiPlatform(registry, "local/postgis:17-3.5", image("postgis:17-3.5"));
  pushMultiPlatform(registry, "local/redis:standin", image("redis:7.4"));
  pushMultiPlatform(registry, "local/caddy:standin", image("caddy:2.10"));
  pushMultiPlatform(registry, "local/cloudflared:standin", image("cloudflared:2025.8.1"));
  // A new release of the app: the same image with one file more, so it has its own digest.
  const container = docker("create", "local/app:standin");
  docker("commit", "--change", "LABEL webstack.release=1.1", container, "local/app:release-1.1");
  docker("rm", container);
  pushMultiPlatform(registry, "local/app:release-1.1", image("app:1.1"));
  pushSinglePlatform(registry, "local/app:standin", image("app:amd64-only"));
  console.log(`registry: images pushed in ${((Date.now() - pushStarted) / 1000).toFixed(1)} s`);

  run(DOCKER, ["compose", "-p", PROJECT, "down", "--remove-orphans", "--timeout", "1"]);
  root = mkdtempSync(join(tmpdir(), "webstack-registry-stack-"));
  chmodSync(root, 0o755);
  dataDir = join(root, "data");
  for (const dir of ["postgres", "redis", "caddy/data", "caddy/config", "uploads", "app"]) {
    mkdirSync(join(dataDir, dir), { recursive: true });
  }
  dockerConfig = join(root, "deploy-user-docker");
  base = configFileValues(join(__dirname, "e2e-stack.yaml"));
}, 1_500_000);

afterAll(() => {
  run(DOCKER, ["compose", "-p", PROJECT, "down", "--remove-orphans", "--timeout", "5"]);
  for (const ref of ["app:1.0", "app:1.1", "postgis:17-3.5", "redis:7.4", "caddy:2.10", "cloudflared:2025.8.1"]) {
    run(DOCKER, ["image", "rm", image(ref)]);
  }
  registry?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("a deploy from a private registry", () => {
  it("logs in with the password on stdin, keeps the login 0600, and pulls every image it needs", () => {
    expect(localImage(image("app:1.0"))).toBe(false);
    // The server's platform: every image is judged by the registry's index, not by this engine.
    const result = deploy(writeRelease(stackWith({})), { PLATFORM: "linux/arm64" });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr + result.stdout).not.toContain(registry.password);
    expect(localImage(image("app:1.0"))).toBe(true);
    expect(authsOf()).toEqual([registry.server]);
    expect(statSync(join(dockerConfig, "config.json")).mode & 0o777).toBe(0o600);
    expect(docker("compose", "-p", PROJECT, "ps", "--format", "{{.Service}} {{.Health}}").split("\n")).toContain(
      "api healthy",
    );
  }, 900_000);

  it("fails on a wrong password naming the registry, before anything running is touched", () => {
    const before = running();
    const installed = readFileSync(join(appDir(dataDir), "compose.yaml"), "utf8");
    const result = deploy(writeRelease(stackWith({ appImage: image("app:1.1"), password: "not-the-password" })));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`cannot log in to the registry ${registry.server} as ${registry.username}`);
    expect(result.stderr).not.toContain("not-the-password");
    expect(running()).toBe(before);
    expect(readFileSync(join(appDir(dataDir), "compose.yaml"), "utf8")).toBe(installed);
    expect(localImage(image("app:1.1"))).toBe(false);
  }, 300_000);

  it("refuses an image without a linux/arm64 variant naming it, before anything running is touched", () => {
    const before = running();
    const result = deploy(writeRelease(stackWith({ webImage: image("app:amd64-only") })), { PLATFORM: "linux/arm64" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `the image ${image("app:amd64-only")} has no linux/arm64 variant (it has: linux/amd64); nothing was changed`,
    );
    expect(running()).toBe(before);
    expect(localImage(image("app:amd64-only"))).toBe(false);
  }, 300_000);

  it("pulls a new release of an image from the registry and runs it", () => {
    const result = deploy(writeRelease(stackWith({ appImage: image("app:1.1") })), { PLATFORM: "linux/arm64" });
    expect(result.status, result.stderr).toBe(0);
    const api = docker("compose", "-p", PROJECT, "ps", "-q", "api");
    expect(docker("inspect", "--format", '{{index .Config.Labels "webstack.release"}}', api)).toBe("1.1");
  }, 900_000);

  it("logs out of a registry the release no longer names", () => {
    expect(authsOf()).toContain(registry.server);
    const result = deploy(writeRelease(stackWith({ appImage: image("app:1.1"), registries: false })));
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain(`logging out of the registry ${registry.server}`);
    expect(authsOf()).not.toContain(registry.server);
    expect(existsSync(join(dockerConfig, "config.json"))).toBe(true);
  }, 900_000);
});
