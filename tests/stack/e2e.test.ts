/**
 * The rendered stack on a real Docker engine: Debian's docker.io started by scripts/start-dockerd.sh,
 * stand-in images built from Debian 13 (PostgreSQL 17 + PostGIS 3.5, Redis, Caddy, a small Python
 * app) by tests/stack/images/build.sh and cached under $WEBSTACK_CACHE/stack-images. The test
 * deploys with the real deploy script, exactly as the AppStack runs it over SSH, then talks to
 * Caddy by its address on the stack's network (tunnel mode publishes nothing).
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderDotenv } from "../../compose/dotenv";
import { deployEnvironment, renderStackFiles } from "../../compose/stack-files";
import { resolveConfig, type StackConfig } from "../../config/resolve";
import { BACKUP_SPOOL_HOST_DIR, PRE_MIGRATION_DUMP_DIR } from "../../model/backups";
import { appDir, UPLOADS_GID } from "../../model/server";
import { PROJECT_ROOT } from "../../scripts/mock-engine";
import { configFileValues, DOCKER, run } from "../support/stack-configs";

const PROJECT = "e2e";
const started = Date.now();
let root: string;
let dataDir: string;
let caddyIp: string;
let passwords: { postgres: string; redis: string };
let config: StackConfig;

function docker(...args: string[]): string {
  const result = run(DOCKER, args, { timeoutMs: 600_000 });
  if (result.status !== 0) throw new Error(`docker ${args.join(" ")} failed:\n${result.stderr}`);
  return result.stdout.trim();
}

/** Write a release directory (compose.yaml, Caddyfile, scripts, .env) and return its path. */
function writeRelease(stack: StackConfig, name: string): string {
  const { files } = renderStackFiles(stack, dataDir);
  const dir = join(appDir(dataDir), "releases", name);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), text, { mode: file.endsWith(".sh") ? 0o755 : 0o644 });
  }
  const env = renderDotenv({
    POSTGRES_PASSWORD: passwords.postgres,
    REDIS_PASSWORD: passwords.redis,
    TUNNEL_TOKEN: "e2e-stand-in-tunnel-token",
    JWT_SECRET: "e2e-jwt-secret",
  });
  writeFileSync(join(dir, ".env"), env, { mode: 0o600 });
  return dir;
}

function deploy(release: string, env: Record<string, string> = {}) {
  return run("bash", [join(release, "scripts/deploy.sh"), appDir(dataDir), release], {
    env: { ...process.env, DOCKER, ...deployEnvironment(config, dataDir), ...env },
    timeoutMs: 600_000,
  });
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(host: string, path: string, options: { method?: string; body?: Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: caddyIp, port: 80, path, method: options.method ?? "GET", headers: { Host: host } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on("error", (err) => (options.body ? resolve({ status: 0, headers: {}, body: String(err) }) : reject(err)));
    req.end(options.body);
  });
}

/** Open a WebSocket through Caddy, send one text frame and return the status and the echo. */
function websocketEcho(host: string, path: string, message: string): Promise<{ status: number; echo: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: caddyIp,
      port: 80,
      path,
      headers: {
        Host: host,
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
      },
    });
    req.on("upgrade", (res, socket) => {
      const payload = Buffer.from(message);
      const mask = randomBytes(4);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
      socket.once("data", (frame: Buffer) => {
        resolve({ status: res.statusCode ?? 0, echo: frame.subarray(2, 2 + frame[1]).toString() });
        socket.destroy();
      });
    });
    req.on("response", (res) => resolve({ status: res.statusCode ?? 0, echo: "" }));
    req.on("error", reject);
    req.end();
  });
}

/** Containers of the project: service → {id, startedAt, restarts}. */
function containers(): Map<string, { id: string; startedAt: string; restarts: number }[]> {
  const ids = docker("ps", "-q", "--filter", `label=com.docker.compose.project=${PROJECT}`).split("\n").filter(Boolean);
  const map = new Map<string, { id: string; startedAt: string; restarts: number }[]>();
  for (const id of ids) {
    const [service, startedAt, restarts] = docker(
      "inspect",
      "--format",
      '{{index .Config.Labels "com.docker.compose.service"}} {{.State.StartedAt}} {{.RestartCount}}',
      id,
    ).split(" ");
    map.set(service, [...(map.get(service) ?? []), { id, startedAt, restarts: Number(restarts) }]);
  }
  return map;
}

function health(id: string): string {
  return docker("inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", id);
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1500 });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("error", () => resolve(false));
  });
}

beforeAll(() => {
  const setup = (script: string) => {
    const result = run("bash", [join(PROJECT_ROOT, script)], { timeoutMs: 1_200_000 });
    if (result.status !== 0) throw new Error(`${script} failed:\n${result.stdout}\n${result.stderr}`);
  };
  setup("scripts/start-dockerd.sh");
  const imagesStart = Date.now();
  setup("tests/stack/images/build.sh");
  console.log(`stack e2e: stand-in images ready in ${((Date.now() - imagesStart) / 1000).toFixed(1)} s`);

  // A stack left by an interrupted run goes first.
  run(DOCKER, ["compose", "-p", PROJECT, "down", "--remove-orphans", "--timeout", "1"]);
  root = mkdtempSync(join(tmpdir(), "webstack-e2e-"));
  dataDir = join(root, "data");
  for (const dir of ["postgres", "redis", "caddy/data", "caddy/config", "uploads", "app"]) {
    mkdirSync(join(dataDir, dir), { recursive: true });
  }
  chmodSync(root, 0o755);
  writeFileSync(join(dataDir, "uploads/hello.txt"), "uploaded file\n", { mode: 0o644 });
  // What an attacker would upload: active content that runs as the site if shown inline.
  writeFileSync(
    join(dataDir, "uploads/avatar.svg"),
    '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>',
    { mode: 0o644 },
  );
  writeFileSync(join(dataDir, "uploads/page.HTML"), "<script>fetch('/api/me')</script>", { mode: 0o644 });
  passwords = { postgres: randomBytes(18).toString("hex"), redis: randomBytes(18).toString("hex") };
  config = resolveConfig("e2e", configFileValues(join(__dirname, "e2e-stack.yaml")));

  const first = deploy(writeRelease(config, "first"));
  if (first.status !== 0) throw new Error(`first deploy failed:\n${first.stdout}\n${first.stderr}`);
  findCaddy();
}, 1_500_000);

/** Caddy's address on the edge network (a recreated container may get another). */
function findCaddy() {
  const caddy = containers().get("caddy")?.[0];
  if (!caddy) throw new Error("no caddy container");
  caddyIp = docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", caddy.id);
}

afterAll(() => {
  if (process.env.WEBSTACK_KEEP_E2E) return;
  run(DOCKER, ["compose", "-p", PROJECT, "down", "--remove-orphans", "--timeout", "5"]);
  if (root) rmSync(root, { recursive: true, force: true });
  console.log(`stack e2e: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
});

describe("the rendered stack on a real Docker engine", () => {
  it("routes a hostname to its service", async () => {
    expect((await http("app.e2e.example", "/dashboard")).body).toBe("web /dashboard");
    expect((await http("api.e2e.example", "/v1/users")).body).toBe("api /v1/users");
  });

  it("routes a path prefix to its service and the rest of the host elsewhere", async () => {
    expect((await http("app.e2e.example", "/api/users")).body).toBe("api /api/users");
    expect((await http("app.e2e.example", "/apiary")).body).toBe("web /apiary");
  });

  it("passes a WebSocket upgrade through to the service", async () => {
    const { status, echo } = await websocketEcho("app.e2e.example", "/socket.io/?EIO=4&transport=websocket", "ping");
    expect(status).toBe(101);
    expect(echo).toBe("ping");
  });

  it("accepts a body under the route's limit and refuses one over it", async () => {
    const small = await http("app.e2e.example", "/api/echo", { method: "POST", body: Buffer.alloc(512 * 1024) });
    expect(small.status).toBe(200);
    expect(JSON.parse(small.body).bytes).toBe(512 * 1024);
    const big = await http("app.e2e.example", "/api/echo", { method: "POST", body: Buffer.alloc(3 * 1024 * 1024) });
    expect(big.status).toBe(413);
  });

  it("serves uploads straight from the volume", async () => {
    const reply = await http("app.e2e.example", "/uploads/hello.txt");
    expect(reply.status).toBe(200);
    expect(reply.body).toBe("uploaded file\n");
  });

  it("lets every writer service write the uploads, each as its own user, also into what another wrote", async () => {
    const write = (service: string, code: string) =>
      docker("exec", containers().get(service)?.[0]?.id ?? service, "python3", "-c", code);
    // The api runs as the image's user 1000, the worker as 1001; the directory was root's (the
    // test made it as Docker would have, with a file in it) until the deploy gave it to the group.
    write(
      "api",
      "import os; os.makedirs('/data/uploads/avatars'); open('/data/uploads/avatars/a.txt', 'w').write('api\\n')",
    );
    write(
      "worker",
      "open('/data/uploads/avatars/a.txt', 'a').write('worker\\n'); open('/data/uploads/avatars/b.txt', 'w').write('b')",
    );
    write("worker", "open('/data/uploads/hello.txt', 'a').write('and the worker\\n')");
    expect((await http("app.e2e.example", "/uploads/avatars/a.txt")).body).toBe("api\nworker\n");
    expect((await http("app.e2e.example", "/uploads/hello.txt")).body).toBe("uploaded file\nand the worker\n");
    const owner = (path: string) => {
      const { uid, gid } = statSync(join(dataDir, "uploads", path));
      return `${uid}:${gid}`;
    };
    expect([owner("avatars"), owner("avatars/a.txt"), owner("avatars/b.txt")]).toEqual([
      `1000:${UPLOADS_GID}`,
      `1000:${UPLOADS_GID}`,
      `1001:${UPLOADS_GID}`,
    ]);
  });

  it("serves every upload in a sandbox, so an uploaded page or SVG cannot run as the site", async () => {
    for (const file of ["hello.txt", "avatar.svg", "page.HTML"]) {
      const { status, headers } = await http("app.e2e.example", `/uploads/${file}`);
      expect(status, file).toBe(200);
      expect(headers["content-security-policy"], file).toMatch(/(^|; )sandbox(;|$)/);
      expect(headers["content-security-policy"], file).toContain("default-src 'none'");
      expect(headers["x-content-type-options"], file).toBe("nosniff");
    }
  });

  it("downloads uploads of the types a browser would run, and shows the others inline", async () => {
    for (const file of ["avatar.svg", "page.HTML"]) {
      expect((await http("app.e2e.example", `/uploads/${file}`)).headers["content-disposition"], file).toBe(
        "attachment",
      );
    }
    expect((await http("app.e2e.example", "/uploads/hello.txt")).headers["content-disposition"]).toBeUndefined();
  });

  it("sends the security headers", async () => {
    const { headers } = await http("app.e2e.example", "/");
    // The zone's own HSTS policy, not a stricter one: six months, no includeSubDomains.
    expect(headers["strict-transport-security"]).toBe("max-age=15552000");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["x-frame-options"]).toBe("SAMEORIGIN");
    expect(headers["referrer-policy"]).toBe("strict-origin-when-cross-origin");
  });

  it("lets the API reach Postgres with PostGIS using the generated password", async () => {
    const reply = await http("api.e2e.example", "/api/db");
    expect(reply.status).toBe(200);
    const { postgis, postgres } = JSON.parse(reply.body);
    expect(postgis).toMatch(/^3\.5\./);
    expect(postgres).toMatch(/^17\./);
  });

  it("lets the API reach Redis using the generated password", async () => {
    const first = JSON.parse((await http("api.e2e.example", "/api/redis")).body).hits;
    const second = JSON.parse((await http("api.e2e.example", "/api/redis")).body).hits;
    expect(second).toBe(first + 1);
  });

  it("ran the migration once before the app started", async () => {
    expect(JSON.parse((await http("api.e2e.example", "/api/migrations")).body).migrations).toBe(1);
  });

  it("runs the worker replicas and cloudflared healthy", () => {
    const all = containers();
    expect(all.get("worker")).toHaveLength(2);
    for (const c of [...(all.get("worker") ?? []), ...(all.get("cloudflared") ?? [])]) {
      expect(health(c.id)).toBe("running healthy");
    }
  });

  it("publishes no port at all in tunnel mode", () => {
    for (const [service, list] of containers()) {
      for (const c of list) {
        expect(docker("port", c.id), service).toBe("");
      }
    }
  });

  it("keeps Postgres and Redis unreachable from the host and from the edge network", async () => {
    const all = containers();
    for (const [service, port] of [
      ["postgres", 5432],
      ["redis", 6379],
    ] as const) {
      const id = all.get(service)![0].id;
      const networks = docker("inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", id);
      expect(networks.trim()).toBe(`${PROJECT}_data`);
      expect(await tcpOpen("127.0.0.1", port)).toBe(false);
      const fromEdge = run(DOCKER, [
        "exec",
        all.get("cloudflared")![0].id,
        "python3",
        "-c",
        `import socket; socket.create_connection(("${service}", ${port}), timeout=2)`,
      ]);
      expect(fromEdge.status).not.toBe(0);
    }
    expect(docker("network", "inspect", "--format", "{{.Internal}}", `${PROJECT}_data`)).toBe("true");
  });

  it("brings a killed app container back", async () => {
    const api = containers().get("api")![0];
    const pid = docker("inspect", "--format", "{{.State.Pid}}", api.id);
    process.kill(Number(pid), "SIGKILL");
    await until(
      "the api to restart and be healthy",
      () => {
        const now = containers().get("api")?.[0];
        return now !== undefined && now.restarts > api.restarts && health(now.id) === "running healthy";
      },
      90_000,
    );
    expect((await http("api.e2e.example", "/x")).body).toBe("api /x");
  }, 120_000);

  it("restarts nothing when the deploy script runs again with no change", () => {
    const before = containers();
    const again = deploy(join(appDir(dataDir), "releases", "first"));
    expect(again.status, again.stderr).toBe(0);
    expect(containers()).toEqual(before);
  }, 300_000);

  it("takes rotated Postgres and Redis passwords on the next deploy", async () => {
    passwords = { postgres: randomBytes(18).toString("hex"), redis: randomBytes(18).toString("hex") };
    const result = deploy(writeRelease(config, "rotated"));
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain("setting up the database roles");
    findCaddy();
    expect((await http("api.e2e.example", "/api/db")).status).toBe(200);
    expect((await http("api.e2e.example", "/api/redis")).status).toBe(200);
  }, 300_000);

  it("rolls back to the previous release with the unhealthy service's logs when a deploy fails", async () => {
    const before = containers();
    const previousCompose = readFileSync(join(appDir(dataDir), "compose.yaml"), "utf8");
    const broken: StackConfig = {
      ...config,
      services: config.services.map((s) =>
        s.name === "web" ? { ...s, healthCheck: { command: ["python3", "-c", "print('web is broken'); exit(1)"] } } : s,
      ),
    };
    const result = deploy(writeRelease(broken, "broken"), { WAIT_TIMEOUT: "40" });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/service web is (unhealthy|starting)/);
    expect(result.stderr).toContain("rolling back to the previous release");
    expect(readFileSync(join(appDir(dataDir), "compose.yaml"), "utf8")).toBe(previousCompose);
    const web = containers().get("web")![0];
    expect(health(web.id)).toBe("running healthy");
    expect(web.id).not.toBe(before.get("web")![0].id);
    findCaddy();
    expect((await http("app.e2e.example", "/")).body).toBe("web /");
  }, 300_000);

  it("dumps the running database before a release with a new migration, and not before the same one again", async () => {
    const dumpDir = join(dataDir, BACKUP_SPOOL_HOST_DIR, "pre-migration");
    const dumps = () => (existsSync(dumpDir) ? readdirSync(dumpDir).sort() : []);
    const postgresId = () => containers().get("postgres")![0].id;
    const inDb = (sql: string) =>
      docker("exec", postgresId(), "psql", "-X", "-Atq", "-U", "app", "-d", "app", "-c", sql);
    const before = dumps();
    expect(deploy(writeRelease(config, "same-migration")).status).toBe(0);
    expect(dumps(), "a release whose migration is the running one's").toEqual(before);
    // (The migration command runs on every deploy; the stand-in counts each run.)
    const migrationsBefore = Number(inDb("SELECT count(*) FROM schema_migrations"));

    // A new image for the api, so a new migration: the running database is dumped first.
    docker("tag", "local/app:standin", "local/app:with-a-new-migration");
    const newMigration: StackConfig = {
      ...config,
      services: config.services.map((s) => (s.name === "api" ? { ...s, image: "local/app:with-a-new-migration" } : s)),
    };
    const result = deploy(writeRelease(newMigration, "new-migration"));
    expect(result.status, result.stderr).toBe(0);
    const added = dumps().filter((f) => !before.includes(f));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^app-\d{8}T\d{6}Z\.dump$/);
    expect(result.stderr).toContain(`dumped the database before the migration: ${PRE_MIGRATION_DUMP_DIR}/${added[0]}`);
    // The dump holds the database as it was before this migration ran: one migration fewer.
    expect(Number(inDb("SELECT count(*) FROM schema_migrations"))).toBe(migrationsBefore + 1);
    const rows = docker(
      "exec",
      postgresId(),
      "pg_restore",
      "--data-only",
      "--table=schema_migrations",
      "-f",
      "-",
      `${PRE_MIGRATION_DUMP_DIR}/${added[0]}`,
    );
    const copied = rows.split("\n");
    const start = copied.findIndex((l) => l.startsWith("COPY public.schema_migrations"));
    expect(copied.indexOf("\\.", start) - start - 1).toBe(migrationsBefore);

    expect(deploy(writeRelease(config, "back-to-standin")).status).toBe(0);
  }, 300_000);

  it("stops a new migration before anything running is touched when the volume has no room for the dump", async () => {
    // The spool's dump directory on a 64 KiB tmpfs stands for a full data volume; the running
    // postgres container is restarted to see it (its bind mount takes the submount).
    const dumpDir = join(dataDir, BACKUP_SPOOL_HOST_DIR, "pre-migration");
    mkdirSync(dumpDir, { recursive: true });
    const restartPostgres = async () => {
      const id = containers().get("postgres")![0].id;
      docker("restart", id);
      await until("postgres healthy", () => health(id) === "running healthy", 60_000);
    };
    expect(run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dumpDir]).status).toBe(0);
    try {
      await restartPostgres();
      const running = readFileSync(join(appDir(dataDir), "compose.yaml"), "utf8");
      docker("tag", "local/app:standin", "local/app:no-room-for-the-dump");
      const newMigration: StackConfig = {
        ...config,
        services: config.services.map((s) =>
          s.name === "api" ? { ...s, image: "local/app:no-room-for-the-dump" } : s,
        ),
      };
      const result = deploy(writeRelease(newMigration, "no-room"));
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(
        /the dump before the migration failed; nothing was changed: not enough free space on the data volume for the dump before the migration: the database takes \d+ MiB .*Grow the data volume \(webstack:volumeSizeGb\)/,
      );
      expect(readFileSync(join(appDir(dataDir), "compose.yaml"), "utf8")).toBe(running);
      expect(readdirSync(dumpDir), "a partial dump left").toEqual([]);
    } finally {
      run("umount", [dumpDir]);
      await restartPostgres();
    }
  }, 300_000);
});

describe("a new PostgreSQL major version on the running stack", () => {
  const on = (image: string, major: number): StackConfig => ({
    ...config,
    postgres: { ...config.postgres, image, major },
  });
  const on17 = () => on("local/postgis:17-3.5", 17);
  const on18 = () => on("local/postgis:18-3.6", 18);
  // A deploy prunes the images the release before it ran (on a server, the registry has them
  // again for the next pull); here a second tag of each keeps it, and each deploy finds it again.
  const images = ["local/postgis:17-3.5", "local/postgis:18-3.6"];
  const kept = (image: string) => `${image}-kept-by-e2e`;
  const retag = () => {
    for (const image of images) docker("tag", kept(image), image);
  };
  const deployOn = (stack: StackConfig, name: string, env: Record<string, string> = {}) => {
    retag();
    return deploy(writeRelease(stack, name), { ...deployEnvironment(stack, dataDir), ...env });
  };
  const postgresId = () => containers().get("postgres")![0].id;
  const psqlAs = (role: string, sql: string) =>
    docker("exec", postgresId(), "psql", "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-U", role, "-d", "app", "-c", sql);
  const major = () => Math.floor(Number(psqlAs("postgres", "SHOW server_version_num")) / 10000);
  /** What must survive an upgrade: roles, owners and grants of the app's objects, and the data. */
  const state = () => ({
    roles: psqlAs("postgres", "SELECT rolname, rolsuper, rolcanlogin FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"),
    objects: psqlAs(
      "postgres",
      `SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S') ORDER BY 1`,
    ),
    owner: psqlAs("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"),
    data: psqlAs("postgres", "SELECT count(*), sum(n) FROM kept"),
    geometry: psqlAs("postgres", "SELECT ST_AsText(place) FROM kept WHERE n = 1"),
  });
  const clusterVersion = (dir: string) => readFileSync(join(dataDir, dir, "PG_VERSION"), "utf8").trim();
  let before: ReturnType<typeof state>;

  beforeAll(() => {
    for (const image of images) docker("tag", image, kept(image));
    psqlAs("postgres", "CREATE ROLE reporting");
    psqlAs(
      "app",
      `CREATE TABLE kept (n int PRIMARY KEY, place geometry(Point, 4326));
       INSERT INTO kept SELECT i, ST_SetSRID(ST_MakePoint(i, i), 4326) FROM generate_series(1, 500) AS i;
       CREATE VIEW kept_view AS SELECT n FROM kept; GRANT SELECT ON kept_view TO reporting`,
    );
    before = state();
  });

  it("upgrades 17 to 18 through a dump, with its roles, owners, grants and data, and keeps the 17 cluster", async () => {
    const result = deployOn(on18(), "postgres-18");
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain("PostgreSQL 17 to 18: stopping the apps and dumping the database for the upgrade");
    expect(result.stderr).toContain("upgraded PostgreSQL 17 to 18");
    expect(major()).toBe(18);
    expect(clusterVersion("postgresql/18/docker")).toBe("18");
    expect(clusterVersion("postgres"), "the 17 cluster, kept").toBe("17");
    expect(state()).toEqual(before);
    expect(existsSync(join(dataDir, BACKUP_SPOOL_HOST_DIR, "major-upgrade")), "the upgrade's dump").toBe(false);
    findCaddy();
    expect((await http("api.e2e.example", "/api/db")).body).toContain("postgis");
  }, 300_000);

  it("redeploys on 18 without upgrading again, and says the 17 cluster is still there", () => {
    const id = postgresId();
    const result = deployOn(on18(), "postgres-18-again");
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).not.toContain("dumping the database for the upgrade");
    expect(result.stderr).toContain("note: the PostgreSQL 17 cluster from before the upgrade is still in");
    expect(postgresId()).toBe(id);
  }, 300_000);

  it("refuses a release back on 17 before anything running is touched", () => {
    const id = postgresId();
    const result = deployOn(on17(), "back-to-17");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /the database on the data volume is PostgreSQL 18 \(\S+\/postgresql\/18\/docker\), newer than this release's image local\/postgis:17-3\.5 \(PostgreSQL 17\), and PostgreSQL cannot go back a major version; nothing was changed/,
    );
    expect(postgresId()).toBe(id);
    expect(major()).toBe(18);
  }, 300_000);

  it("rolls a failed upgrade back to 17 with its data and sets the new cluster aside; the next deploy upgrades again", async () => {
    // Back to 17 the way an operator would undo the upgrade: the 18 cluster moved out of the way.
    const undone = join(dataDir, "postgresql-18-undone");
    docker("stop", postgresId());
    renameSync(join(dataDir, "postgresql", "18"), undone);
    expect(deployOn(on17(), "undo-to-17").status).toBe(0);
    expect(major()).toBe(17);
    const broken: StackConfig = {
      ...on18(),
      services: config.services.map((s) => (s.name === "web" ? { ...s, healthCheck: { command: ["false"] } } : s)),
    };
    const failed = deployOn(broken, "postgres-18-broken", { WAIT_TIMEOUT: "40" });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain("rolling back to the previous release");
    expect(failed.stderr).toMatch(/the failed upgrade's cluster is kept as \S+\/postgresql-18-failed-\d{8}T\d{6}Z/);
    expect(major()).toBe(17);
    expect(state()).toEqual(before);
    expect(existsSync(join(dataDir, "postgresql", "18"))).toBe(false);

    const again = deployOn(on18(), "postgres-18-at-last");
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain("upgraded PostgreSQL 17 to 18");
    expect(major()).toBe(18);
    expect(state()).toEqual(before);
    rmSync(undone, { recursive: true, force: true });
  }, 600_000);

  afterAll(() => {
    retag();
    for (const image of images) docker("image", "rm", kept(image));
  });
});
