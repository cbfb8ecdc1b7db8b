/**
 * Day two on the server twin: one stack's life, a `pulumi up` at a time, each change applied in
 * the order Pulumi applies it (engine.ts) to a twin with systemd, sshd and Docker (twin.ts).
 * After each change: the stack is what a fresh deploy of the new config gives (the files it
 * ships, healthy services, the timers it enables), the data written on day one is still there,
 * and a backup started by hand succeeds and its restore drill passes.
 *
 * The tests run in order and share the stack, as a team's updates do.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostFiles } from "../../cloud-init/render";
import { serverReadyCommand } from "../../components/app-stack";
import { writeFileCommand } from "../../components/ship-file";
import { BACKUP_SPOOL_DIR, BACKUP_SPOOL_HOST_DIR } from "../../model/backups";
import { DATA_DIR, UPLOADS_GID, uploadsDir } from "../../model/server";
import { type ProgramRun, type RecordedResource, readConfigFile } from "../../scripts/mock-engine";
import { shippedFiles } from "../../scripts/plan";
import { bucketEnv, rclone, type S3, startS3 } from "../backup/harness";
import { run } from "../support/stack-configs";
import { WebhookReceiver } from "../support/webhook-receiver";
import { describeSteps, StepFailed } from "./engine";
import { Life, type Update } from "./life";
import { makeLoginKey, type Twin, withinHostLimits } from "./twin";

const STACK_FILE = `${__dirname}/../stack/e2e-stack.yaml`;
const COMPOSE = "docker compose -f /srv/data/app/compose.yaml";
const BACKUP_TIMER = "webstack-backup.timer";
const DRILL_TIMER = "webstack-restore-drill.timer";
const SECOND_RECIPIENT = "age13gyny226jneg7wwwz7wll98654j55zyg6c9j4g4akcdfrnv9ec6qw6axck";
const MINUTE = 60_000;
/** The resources' name prefix: `<appName>-<stack>`. */
const PREFIX = "e2e-lifecycle";

let s3: S3;
/** The alerts channel: the twin's alerts.env points at it. */
let alerts: WebhookReceiver;
let life: Life;
let images: string;
/** The first deploy's evaluation of the program. */
let lastRun: ProgramRun;
/** What the next server's first boot ends with (a scenario sets a failure). */
let nextFirstBoot: { state: "done" | "error"; log: string } = { state: "done", log: "" };

function imagesTarball(): string {
  const r = run("bash", [`${__dirname}/../stack/images/build.sh`, "--tarball"], { timeoutMs: 1_800_000 });
  if (r.status !== 0) throw new Error(`stand-in images: ${r.stderr}`);
  return r.stdout.trim().split("\n").pop()!;
}

/** backup.env as the program ships it, pointed at the test's S3 server instead of R2. */
function towardsTestS3(text: string): string {
  const values = bucketEnv(s3);
  return text
    .split("\n")
    .map((line) => {
      const key = line.split("=")[0];
      return key in values ? `${key}="${values[key]}"` : line;
    })
    .join("\n");
}

/** alerts.env as the program ships it, pointed at the test's webhook receiver instead of ntfy. */
function towardsTestReceiver(text: string): string {
  return text.replace(/^ALERT_URL=.*$/m, `ALERT_URL="${alerts.url}/e2e-alerts"`);
}

/** The alert titles the receiver got (ntfy's Title header), oldest first. */
function alertTitles(): string[] {
  return alerts.requests.map((r) => String(r.headers.title));
}

async function alertArrives(what: RegExp, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (alertTitles().some((t) => what.test(t))) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  const journal = life.twin.sh("journalctl -t webstack-health -t webstack-alert --no-pager -n 60").stdout;
  throw new Error(
    `no alert matching ${what} arrived; the receiver got: ${JSON.stringify(alertTitles())}\nthe server's journal:\n${journal}`,
  );
}

/**
 * The backups' install commands as the release before this one recorded them in the state: each
 * file removed by its delete, the timers disabled by theirs, and no server id in the triggers.
 */
function asThePreviousReleaseLeftIt(run: ProgramRun) {
  const paths = new Map(shippedFiles(run).map((f) => [f.command.name, f.path]));
  return (r: RecordedResource): RecordedResource => {
    if (!r.parent?.startsWith("vps:backups:Backups::") || r.type !== "command:remote:Command") return r;
    const triggers = (r.rawInputs.triggers as unknown[] | undefined)?.slice(0, 1);
    const path = paths.get(r.name);
    if (path) {
      const fileTriggers = r.name.endsWith("-env") ? undefined : triggers;
      return { ...r, rawInputs: { ...r.rawInputs, delete: `sudo rm -f ${path}`, triggers: fileTriggers } };
    }
    if (r.name.endsWith("-timers")) {
      const disable = `sudo systemctl disable --now ${BACKUP_TIMER} ${DRILL_TIMER} 2>/dev/null; sudo systemctl daemon-reload; true`;
      return { ...r, rawInputs: { ...r.rawInputs, delete: disable, triggers } };
    }
    return r;
  };
}

/** The app role's superuser flag and the database's owner, as psql prints them. */
const APP_ROLE_STATE =
  "SELECT rolsuper, pg_get_userbyid(datdba) FROM pg_roles, pg_database WHERE rolname = 'app' AND datname = current_database()";

/**
 * Replace the stack's database with one initialised as releases before the administrator role
 * did it (POSTGRES_USER the apps' role, so its bootstrap superuser), holding day one's row and a
 * table of its own: the running stack is stopped for it.
 */
function initialiseAsTheReleaseBefore(twin: Twin): void {
  const image = (life.value("postgres") as { image?: string } | undefined)?.image ?? "local/postgis:17-3.5";
  twin.sh(
    [
      `${COMPOSE} stop`,
      `rm -rf ${DATA_DIR}/postgres && mkdir ${DATA_DIR}/postgres`,
      // The .env's password (single-quoted there), for the apps of the release before.
      "pw=$(sed -n 's/^POSTGRES_PASSWORD=//p' /srv/data/app/.env | tr -d \"'\")",
      `docker run -d --name release-before-db -v ${DATA_DIR}/postgres:/var/lib/postgresql/data -e POSTGRES_USER=app -e POSTGRES_DB=app -e POSTGRES_PASSWORD="$pw" ${image} >/dev/null`,
      "for i in $(seq 120); do docker logs release-before-db 2>&1 | grep -q 'init process complete' && docker exec release-before-db psql -qAt -U app -d app -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done",
      `docker exec -i release-before-db psql -q -v ON_ERROR_STOP=1 -U app -d app`,
    ].join(" && "),
    {
      check: true,
      input:
        "CREATE TABLE day_one (note text); INSERT INTO day_one VALUES ('written on day one');\n" +
        "CREATE TABLE orders (id serial PRIMARY KEY, total numeric); INSERT INTO orders (total) VALUES (12.5), (3);\n",
    },
  );
  twin.sh("docker rm -f release-before-db", { check: true });
}

function sql(twin: Twin, statement: string): string {
  const r = twin.sh(
    `${COMPOSE} exec -T postgres sh -c 'psql -qtA -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'`,
    {
      input: statement,
    },
  );
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout.trim();
}

/** Services that are neither healthy nor (without a health check) running. */
function unhealthy(twin: Twin): string[] {
  const r = twin.sh(`${COMPOSE} ps -a --format '{{.Service}} {{.State}} {{.Health}}'`, { check: true });
  return r.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .filter((line) => {
      const [, state, health] = line.split(" ");
      return !(health === "healthy" || (!health && state === "running"));
    });
}

interface Service {
  name: string;
  image: string;
  healthCheck?: unknown;
}

/** A request through Caddy, from inside the stack's network; the body of the answer. */
function throughCaddy(twin: Twin, host: string, path: string): string {
  return twin.sh(`${COMPOSE} exec -T caddy curl -fsS -H 'Host: ${host}' http://localhost${path}`).stdout;
}

/**
 * The API through Caddy: it reads PostGIS with .env's password. In direct mode Caddy serves only
 * HTTPS with a certificate from ACME, which cannot be reached here: the API is asked from Caddy's
 * container instead, over the stack's network.
 */
function apiReadsDatabase(twin: Twin): string {
  if (life.value("exposure") === "direct") {
    return twin.sh(`${COMPOSE} exec -T caddy curl -fsS http://api:3001/api/db`).stdout;
  }
  return throughCaddy(twin, "api.e2e.example", "/api/db");
}

/** service → the image its running container was created from. */
function serviceImages(twin: Twin): Map<string, string> {
  const r = twin.sh(`${COMPOSE} ps --format '{{.Service}} {{.Image}}'`, { check: true });
  return new Map(
    r.stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" ") as [string, string]),
  );
}

/**
 * Write a file into the uploads as one of the stack's services (in its first container, as the
 * user it runs as); the exit status of the write.
 */
function writeUpload(twin: Twin, service: string, file: string): number {
  const id = twin.sh(`docker ps -q --filter label=com.docker.compose.service=${service} | head -n 1`, { check: true });
  const code = `open('/data/uploads/${file}', 'a').write('${service}\\n')`;
  return twin.sh(`docker exec ${id.stdout.trim()} python3 -c "${code}"`).status;
}

/** An HTTP request to the server's address from the test's host: the status, "000" when nothing answers. */
function httpStatusFromOutside(twin: Twin, port: number): string {
  return run("curl", [
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "--max-time",
    "5",
    `http://${twin.address}:${port}/`,
  ]).stdout;
}

function timerState(twin: Twin, timer: string): string {
  return twin
    .sh(`systemctl is-enabled ${timer} 2>/dev/null; systemctl is-active ${timer} 2>/dev/null; true`)
    .stdout.trim();
}

/** What a fresh deploy of the current config passes, and day one's data. */
function expectConverged(update: Update, twin: Twin): void {
  const context = describeSteps(update.steps);
  // Every file the components ship is on the server with the content and mode they ship.
  for (const file of shippedFiles(update.run)) {
    const stdin = String(file.command.rawInputs.stdin);
    const expected = life.target.rewriteStdin?.(file.command, stdin) ?? stdin;
    const onServer = twin.exec(["cat", file.path]).stdout;
    expect(onServer, `${file.path} (shipped by ${file.command.name}) after:\n${context}`).toBe(expected);
    expect(twin.exec(["stat", "-c", "%a", file.path]).stdout.trim(), file.path).toBe(file.mode.replace(/^0/, ""));
  }
  expect(unhealthy(twin), context).toEqual([]);
  expect(apiReadsDatabase(twin)).toContain("postgis");
  expect(sql(twin, "SELECT note FROM day_one"), "day one's row").toBe("written on day one");
  // The apps' role owns the database and is no superuser, whatever the change.
  expect(sql(twin, APP_ROLE_STATE), context).toBe("f|app");
  expect(timerState(twin, BACKUP_TIMER), context).toBe("enabled\nactive");
  const drill = life.value("backupDrill") !== false;
  // With the drill off, its timer is gone: systemd knows no such unit.
  expect(timerState(twin, DRILL_TIMER), context).toBe(drill ? "enabled\nactive" : "not-found\ninactive");
}

/** A backup started by hand succeeds, and (with the drill on) so does restoring it. */
function expectBackupRestores(twin: Twin): void {
  const backup = twin.sh("systemctl start webstack-backup.service", { timeoutMs: 5 * MINUTE });
  expect(backup.status, twin.sh("journalctl -u webstack-backup --no-pager -n 40").stdout).toBe(0);
  // The dump is spooled on the data volume, not in the container's memory-backed /tmp, and is gone.
  const mounts = twin.sh(
    "docker inspect --format '{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}' $(docker ps -q --filter label=com.docker.compose.service=postgres)",
    { check: true },
  );
  expect(mounts.stdout).toContain(`${DATA_DIR}/${BACKUP_SPOOL_HOST_DIR}:${BACKUP_SPOOL_DIR} `);
  expect(twin.sh("cat /etc/webstack/backup/backup.env", { check: true }).stdout).toMatch(
    new RegExp(`^BACKUP_WORK_DIR="${BACKUP_SPOOL_DIR}"$`, "m"),
  );
  // No dump is left: the backup's own, and the deploy's dumps before migrations it supersedes.
  const spool = twin.sh(`find ${DATA_DIR}/${BACKUP_SPOOL_HOST_DIR} -type f`, { check: true });
  expect(spool.stdout.trim(), "the dump spool after a backup").toBe("");
  if (life.value("backupDrill") === false) return;
  const drill = twin.sh("systemctl start webstack-restore-drill.service", { timeoutMs: 5 * MINUTE });
  expect(drill.status, twin.sh("journalctl -u webstack-restore-drill --no-pager -n 40").stdout).toBe(0);
  expectDrillLeftNothing(twin);
}

/**
 * The drill's throwaway PostgreSQL is gone with its data: no container, and no volume (its image
 * declares one) holding an unencrypted copy of the database. The stack binds its own data, so
 * any unused volume is one the drill left.
 */
function expectDrillLeftNothing(twin: Twin): void {
  const containers = twin.sh("docker ps -aq --filter label=webstack.role=restore-drill", { check: true });
  expect(containers.stdout.trim(), "drill containers left").toBe("");
  const volumes = twin.sh("docker volume ls -q --filter dangling=true", { check: true });
  expect(volumes.stdout.trim(), "volumes left behind").toBe("");
}

beforeAll(async () => {
  images = imagesTarball();
  // The twin reaches the host on the Docker bridge's gateway.
  s3 = await startS3(["backups", "uploads"], "172.17.0.1");
  alerts = await new WebhookReceiver().start("172.17.0.1");
  life = new Life("lifecycle", readConfigFile(STACK_FILE), `lifecycle-twin-${process.pid}`, {
    afterBoot: (twin) => {
      // The stand-in images take the place of a registry pull on a new server; v2 is a new tag.
      twin.loadImages(images);
      twin.sh("docker tag local/app:standin local/app:v2", { check: true });
      twin.setFirstBoot(nextFirstBoot.state, nextFirstBoot.log);
      nextFirstBoot = { state: "done", log: "" };
    },
    // The backups go to the test's S3 server; Docker's settings fit this sandbox's open-file limit.
    rewriteStdin: (resource, stdin) => {
      if (resource.name.endsWith("-backups-env")) return towardsTestS3(stdin);
      if (resource.name.endsWith("-alerts-env")) return towardsTestReceiver(stdin);
      if (resource.name.endsWith("-host-file-etc-docker-daemon-json")) return withinHostLimits(stdin);
      return stdin;
    },
  });
}, 30 * MINUTE);

afterAll(async () => {
  life?.end();
  await s3?.close();
  await alerts?.close();
});

describe("a stack's life on the server twin", () => {
  it(
    "a first deploy serves, enables the backup timers, and its backup restores",
    async () => {
      const update = await life.up();
      lastRun = update.run;
      sql(life.twin, "CREATE TABLE day_one (note text); INSERT INTO day_one VALUES ('written on day one')");
      expectConverged(update, life.twin);
      expectBackupRestores(life.twin);
    },
    15 * MINUTE,
  );

  it(
    "a database whose apps were its superuser is handed to an app role that is not one, its data kept",
    async () => {
      initialiseAsTheReleaseBefore(life.twin);
      // Any change runs the deploy again; its role setup finds the database of the release before.
      const update = await life.up({ set: { deployWaitSeconds: 299 } });
      expectConverged(update, life.twin);
      expect(sql(life.twin, "SELECT rolname FROM pg_roles WHERE oid = 10")).toBe("postgres");
      expect(sql(life.twin, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'orders'")).toBe("app");
      expect(sql(life.twin, "SELECT sum(total) FROM orders")).toBe("15.5");
      expectBackupRestores(life.twin);
    },
    10 * MINUTE,
  );

  it(
    "upgrading a stack that the release before deployed keeps its backups installed and enabled",
    async () => {
      life.rewriteState(asThePreviousReleaseLeftIt(lastRun));
      const update = await life.up();
      expect(update.steps.some((s) => s.op === "replace" && s.resource.name.endsWith("-backups-timers"))).toBe(true);
      expectConverged(update, life.twin);
      expectBackupRestores(life.twin);
    },
    10 * MINUTE,
  );

  it(
    "an uploads directory an earlier release left to root is the writers' at the next deploy, and the backup keeps it",
    async () => {
      const uploads = uploadsDir();
      // As Docker created it for the bind mount before the deploy prepared it: root's, 0755.
      life.twin.sh(
        `setfacl -R -b ${uploads} && chown -R root:root ${uploads} && chmod -R 0755 ${uploads} && echo root > ${uploads}/earlier.txt`,
        { check: true },
      );
      expect(writeUpload(life.twin, "api", "refused.txt"), "a write into a root-owned directory").not.toBe(0);

      const update = await life.up({ set: { deployWaitSeconds: 301 } });
      expectConverged(update, life.twin);
      expect(life.twin.sh(`stat -c '%g %a' ${uploads}`, { check: true }).stdout.trim()).toBe(`${UPLOADS_GID} 2775`);
      // The api runs as the image's user 1000, the worker as 1001: each writes, also into the other's files.
      for (const service of ["api", "worker", "api"]) {
        expect(writeUpload(life.twin, service, "shared.txt"), service).toBe(0);
        expect(writeUpload(life.twin, service, "earlier.txt"), service).toBe(0);
      }
      expect(life.twin.sh(`cat ${uploads}/shared.txt`, { check: true }).stdout).toBe("api\nworker\napi\n");

      expectBackupRestores(life.twin);
      const { uploads: archived } = JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"]));
      expect(archived.dirs).toEqual([uploads]);
      expect(archived.files).toBe(2);
    },
    10 * MINUTE,
  );

  it(
    "a new image tag for a service redeploys it on that image after a dump of the database, and the data stays",
    async () => {
      const services = (life.value("services") as Service[]).map((s) =>
        s.name === "api" ? { ...s, image: "local/app:v2" } : s,
      );
      const update = await life.up({ set: { services } });
      expect(serviceImages(life.twin).get("api")).toBe("local/app:v2");
      expectConverged(update, life.twin);
      // The api's new image is the migration's: the deploy dumped the database before running it,
      // and the next backup, which supersedes the dump, removes it.
      const dumps = life.twin.sh(`ls ${DATA_DIR}/${BACKUP_SPOOL_HOST_DIR}/pre-migration`, { check: true });
      expect(dumps.stdout.trim()).toMatch(/^app-\d{8}T\d{6}Z\.dump$/);
      expectBackupRestores(life.twin);
    },
    10 * MINUTE,
  );

  it(
    "a service added is started, and removed again its container is gone",
    async () => {
      const services = life.value("services") as Service[];
      const extra = {
        name: "extra",
        image: "local/app:standin",
        command: ["web"],
        port: 3002,
        healthCheck: { path: "/health" },
      };
      expectConverged(await life.up({ set: { services: [...services, extra] } }), life.twin);
      expect([...serviceImages(life.twin).keys()]).toContain("extra");
      expectConverged(await life.up({ set: { services } }), life.twin);
      expect([...serviceImages(life.twin).keys()]).not.toContain("extra");
    },
    10 * MINUTE,
  );

  it(
    "a route added is served through Caddy",
    async () => {
      const routes = [...(life.value("routes") as unknown[]), { hostname: "www.e2e.example", service: "web" }];
      expectConverged(await life.up({ set: { routes } }), life.twin);
      expect(throughCaddy(life.twin, "www.e2e.example", "/hello")).toBe("web /hello");
    },
    10 * MINUTE,
  );

  it(
    "switching to direct exposure opens the web ports on the running server, and back to the tunnel closes them",
    async () => {
      expectConverged(await life.up({ set: { exposure: "direct" } }), life.twin);
      expect([...serviceImages(life.twin).keys()]).not.toContain("cloudflared");
      // From outside the server: Caddy answers on 80 only if ufw and Docker's filter let it.
      expect(httpStatusFromOutside(life.twin, 80)).toBe("308");
      expect(life.twin.sh("ufw status").stdout).toMatch(/^80\/tcp +ALLOW /m);

      // The deploy pruned cloudflared's image, which the direct release no longer names; back in
      // tunnel mode it is pulled again, and with no registry here the test hands it over.
      life.twin.loadImages(images);
      expectConverged(await life.up({ set: { exposure: "tunnel" } }), life.twin);
      expect([...serviceImages(life.twin).keys()]).toContain("cloudflared");
      expect(httpStatusFromOutside(life.twin, 80)).toBe("000");
      expect(life.twin.sh("ufw status").stdout).not.toMatch(/^(80|443)\/(tcp|udp)/m);
      expect(life.twin.sh("iptables -S DOCKER-USER").stdout).not.toContain("--ctorigdstport");
    },
    10 * MINUTE,
  );

  it(
    "rotating the Redis password redeploys with it and the API still reaches Redis",
    async () => {
      expectConverged(await life.up({ replace: [`${PREFIX}-app-redis-password`] }), life.twin);
      expect(throughCaddy(life.twin, "api.e2e.example", "/api/redis")).toContain("hits");
    },
    10 * MINUTE,
  );

  it(
    "an admin key and a reboot window changed in config reach the running server",
    async () => {
      const newAdmin = makeLoginKey();
      const adminSshKeys = [...(life.value("adminSshKeys") as string[]), newAdmin.publicKey];
      const update = await life.up({ set: { adminSshKeys, autoRebootTime: "04:45" } });
      expectConverged(update, life.twin);
      expect(life.twin.sh("cat /etc/apt/apt.conf.d/52unattended-upgrades-local").stdout).toContain('"04:45"');
      // sshd itself judges: the admin logs in with the new key and may sudo.
      const login = life.twin.ssh("admin", newAdmin, "sudo -n true && echo admin-ok");
      expect(login.stdout + login.stderr).toContain("admin-ok");
    },
    10 * MINUTE,
  );

  it(
    "a fix to the host's hardening reaches a server built before it, and a new admin network reaches fail2ban",
    async () => {
      // The server as an earlier release left it: no host configuration in the state, and that
      // release's sshd drop-in and fail2ban settings on disk, running.
      life.rewriteState((r) => (r.urn.includes("vps:host:HostConfig") ? undefined : r));
      life.twin.sh(
        [
          "sed -i 's/^MaxAuthTries 3$/MaxAuthTries 6/' /etc/ssh/sshd_config.d/10-hardening.conf",
          "rm /etc/fail2ban/jail.local",
          "systemctl reload ssh && systemctl restart fail2ban",
        ].join(" && "),
        { check: true },
      );
      const sshAllowedCidrs = [...(life.value("sshAllowedCidrs") as string[]), "192.0.2.0/24"];
      const update = await life.up({ set: { sshAllowedCidrs } });
      expectConverged(update, life.twin);
      // sshd and fail2ban judge: the settings they read now.
      expect(life.twin.sh("sshd -T | grep '^maxauthtries'").stdout.trim()).toBe("maxauthtries 3");
      expect(life.twin.sh("fail2ban-client get sshd ignoreip").stdout).toContain("192.0.2.0/24");
    },
    10 * MINUTE,
  );

  it(
    "a host file the server's own tool refuses is not left in place: sshd keeps its drop-in",
    () => {
      const path = "/etc/ssh/sshd_config.d/10-hardening.conf";
      const [file] = hostFiles({ exposure: "tunnel", autoRebootTime: "03:30", sshAllowedCidrs: [] }).filter(
        (f) => f.path === path,
      );
      const before = life.twin.exec(["cat", path]).stdout;
      const r = life.twin.ssh(
        "deploy",
        life.key,
        writeFileCommand(path, "0644", "root", undefined, file.check),
        "NoSuchOption yes\n",
      );
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("refused by sshd -t; the previous file is back");
      expect(life.twin.exec(["cat", path]).stdout).toBe(before);
      expect(life.twin.sh("sshd -t").status).toBe(0);
    },
    MINUTE,
  );

  it(
    "moving the backup schedule keeps the backups installed and enabled",
    async () => {
      const update = await life.up({ set: { backupSchedule: "*-*-* 04:15:00" } });
      expect(life.twin.sh(`systemctl cat ${BACKUP_TIMER}`).stdout).toContain("OnCalendar=*-*-* 04:15:00");
      expectConverged(update, life.twin);
      expectBackupRestores(life.twin);
    },
    10 * MINUTE,
  );

  it(
    "adding a backup recipient encrypts the next backups to it too",
    async () => {
      const recipients = [...(life.value("backupRecipients") as string[]), SECOND_RECIPIENT];
      const update = await life.up({ set: { backupRecipients: recipients } });
      expect(life.twin.sh("cat /etc/webstack/backup/recipients.txt").stdout).toContain(SECOND_RECIPIENT);
      expectConverged(update, life.twin);
      expectBackupRestores(life.twin);
    },
    10 * MINUTE,
  );

  it(
    "rotating the backup job's R2 token ships its new keys, and the backups keep running",
    async () => {
      const update = await life.up({ replace: [`${PREFIX}-backups-token`] });
      // The credentials file is shipped again with the new keys (an update re-runs its write).
      const env = update.steps.find((s) => s.resource.name.endsWith("-backups-env") && s.op !== "delete");
      expect(env?.changed).toContain("stdin");
      expectConverged(update, life.twin);
      expectBackupRestores(life.twin);
    },
    10 * MINUTE,
  );

  it(
    "turning the restore drill off disables its timer, and on again enables it",
    async () => {
      expectConverged(await life.up({ set: { backupDrill: false } }), life.twin);
      const update = await life.up({ set: { backupDrill: true } });
      expectConverged(update, life.twin);
      expectBackupRestores(life.twin);
    },
    10 * MINUTE,
  );

  it(
    "a failed backup alerts through OnFailure= with the failing step, and the health timer alerts on a reboot left pending",
    async () => {
      const twin = life.twin;
      expect(timerState(twin, "webstack-health.timer")).toBe("enabled\nactive");
      // A bucket that does not exist: the upload fails, the unit fails, systemd starts the alert.
      twin.sh(
        "mkdir -p /etc/systemd/system/webstack-backup.service.d && " +
          "printf 'BACKUP_S3_BUCKET=\"no-such-bucket\"\\n' > /run/broken-backup.env && " +
          "printf '[Service]\\nEnvironmentFile=/run/broken-backup.env\\n' > /etc/systemd/system/webstack-backup.service.d/broken.conf && " +
          "systemctl daemon-reload",
        { check: true },
      );
      try {
        alerts.clear();
        expect(twin.sh("systemctl start webstack-backup.service", { timeoutMs: 5 * MINUTE }).status).not.toBe(0);
        await alertArrives(/^\[e2e-lifecycle\] webstack-backup\.service failed: \S+/);
        const failure = alerts.requests.find((r) => String(r.headers.title).includes("webstack-backup.service failed"));
        expect(failure?.headers.priority).toBe("high");
        expect(failure?.body).toContain("FAILED at");
      } finally {
        twin.sh(
          "rm -rf /etc/systemd/system/webstack-backup.service.d /run/broken-backup.env && systemctl daemon-reload && systemctl reset-failed",
          { check: true },
        );
      }
      // The health check, as its timer runs it: a reboot the nightly window did not take.
      twin.sh("touch -d '-30 hours' /var/run/reboot-required && systemctl start webstack-health.service", {
        check: true,
      });
      await alertArrives(/^\[e2e-lifecycle\] a reboot has been pending for 30 hours/);
      twin.sh("rm -f /var/run/reboot-required && systemctl start webstack-health.service", { check: true });
      await alertArrives(/^\[e2e-lifecycle\] resolved: a reboot has been pending/);
      expectBackupRestores(twin);
    },
    10 * MINUTE,
  );

  it(
    "rotating the Postgres password redeploys with it; a release that fails with a new password rolls back to one that can log in",
    async () => {
      expectConverged(await life.up({ replace: [`${PREFIX}-app-postgres-password`] }), life.twin);
      // The next rotation comes with a release that never gets healthy: the rollback brings back
      // the previous .env, whose password the database role must have again.
      const services = life.value("services") as Service[];
      const broken = services.map((s) => (s.name === "web" ? { ...s, healthCheck: { command: ["false"] } } : s));
      const failing = life.up({
        replace: [`${PREFIX}-app-postgres-password`],
        set: { services: broken, deployWaitSeconds: 30 },
      });
      await expect(failing).rejects.toBeInstanceOf(StepFailed);
      expect(unhealthy(life.twin)).toEqual([]);
      // Whoever watches the channel hears of it, whether or not they watch pulumi up.
      await alertArrives(/^\[e2e-lifecycle\] deploy of release \S+ failed and was rolled back$/, 10_000);
      expect(apiReadsDatabase(life.twin)).toContain("postgis");
      // Fixed, the release deploys with the password rotated above.
      expectConverged(await life.up({ set: { services, deployWaitSeconds: undefined } }), life.twin);
    },
    15 * MINUTE,
  );

  it(
    "changing the tier powers the server off and on, and the stack comes back with its data",
    async () => {
      const update = await life.up({ set: { tier: "medium" } });
      expect(update.applied.map((s) => s.ran)).toContain("power off, change type, power on");
      expectConverged(update, life.twin);
    },
    10 * MINUTE,
  );

  it(
    "a new server whose first boot failed stops the update with cloud-init's status and log",
    async () => {
      const lost = [`${PREFIX}-server`, `${PREFIX}-volume-attachment`];
      nextFirstBoot = { state: "error", log: "E: Unable to locate package docker.io" };
      const failed = await life.up({ lost }).catch((err: unknown) => err);
      expect(failed).toBeInstanceOf(StepFailed);
      expect((failed as StepFailed).step.resource.name).toBe(`${PREFIX}-app-server-ready`);
      expect((failed as StepFailed).stderr).toContain("first boot failed");
      expect((failed as StepFailed).stderr).toContain("E: Unable to locate package docker.io");
    },
    10 * MINUTE,
  );

  it(
    "a lost server rebuilt on the same volume gets everything installed again, backups included",
    async () => {
      // The operator fixed the first boot (the failed update above already made the new server).
      life.twin.setFirstBoot("done");
      const update = await life.up();
      expectConverged(update, life.twin);
      expectBackupRestores(life.twin);
    },
    15 * MINUTE,
  );

  it(
    "a first boot that never finishes fails the server check within its timeout",
    () => {
      life.twin.setFirstBoot("running");
      const started = Date.now();
      const r = life.twin.ssh("deploy", life.key, serverReadyCommand("/srv/data/app", 5));
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("did not finish within 5 s");
      expect(Date.now() - started).toBeLessThan(30_000);
      life.twin.setFirstBoot("done");
    },
    MINUTE,
  );
});
