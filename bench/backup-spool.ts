/**
 * The backup of a database several times the Postgres container's memory limit, in the container
 * the small tier runs (its memory limit, settings, read-only root, tmpfs /tmp and the spool mount,
 * all taken from the compose file prod renders), on a real Docker engine:
 *
 *   npx tsx bench/backup-spool.ts [--times 3]     (part of `npm run bench:backup`)
 *
 * It fills the database to `--times` × the container's memory limit, then runs backup/backup.sh
 * twice against a local S3 server: with the dump spooled in the container's /tmp (where it was
 * before: a tmpfs whose pages count against the memory limit) and on the spool mount (the data
 * volume). It prints, for each, the outcome, the time, and whether Postgres was killed for memory.
 * Needs Docker and the tools of scripts/install-test-tools.sh; builds the stand-in PostGIS image
 * (Debian 13's PostgreSQL 17 + PostGIS) with tests/stack/images/build.sh.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { renderStackFiles } from "../compose/stack-files";
import { resolveConfig } from "../config/resolve";
import { BACKUP_SPOOL_DIR } from "../model/backups";
import { POSTGRES_SERVICE } from "../model/services";
import { ageKey, bucketEnv, runScript, startS3 } from "../tests/backup/harness";
import { stackFileValues } from "../tests/support/stack-configs";

const DOCKER = "/usr/bin/docker";
const CONTAINER = `bench-backup-spool-${process.pid}`;

interface ComposePostgres {
  image: string;
  command: string[];
  mem_limit: string;
  shm_size: string;
  environment: Record<string, string>;
}

const docker = (args: string[]) => execFileSync(DOCKER, args, { encoding: "utf8" }).trim();
const psql = (sql: string) =>
  docker(["exec", "-i", CONTAINER, "psql", "-X", "-q", "-t", "-A", "-U", "app", "-d", "app", "-c", sql]);
const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;
const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)} GiB`;

function megabytes(size: string): number {
  const m = /^(\d+)m$/.exec(size);
  if (!m) throw new Error(`unexpected size ${size}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const timesArg = process.argv.indexOf("--times");
  const times = timesArg > 0 ? Number(process.argv[timesArg + 1]) : 3;
  const config = resolveConfig("prod", stackFileValues("prod"));
  const compose = parse(renderStackFiles(config, "/srv/data").files["compose.yaml"]) as {
    services: Record<string, ComposePostgres>;
  };
  const service = compose.services[POSTGRES_SERVICE];
  const limitMb = megabytes(service.mem_limit);
  // No registry is reachable here: the stand-in (the same PostgreSQL 17 + PostGIS 3.5, from
  // Debian 13) takes the place of the default image.
  execFileSync("bash", ["tests/stack/images/build.sh"], { stdio: ["ignore", "ignore", "inherit"] });
  const image = "local/postgis:17-3.5";

  const work = mkdtempSync(join(tmpdir(), "webstack-bench-spool-"));
  const s3 = await startS3(["backups"]);
  try {
    docker([
      "run",
      ...["--detach", "--name", CONTAINER, "--read-only", "--memory", service.mem_limit],
      ...["--shm-size", service.shm_size, "--tmpfs", "/tmp", "--tmpfs", "/var/run/postgresql"],
      ...["--volume", `${work}/postgres:/var/lib/postgresql/data`, "--volume", `${work}/spool:${BACKUP_SPOOL_DIR}`],
      ...["--env", "POSTGRES_USER=app", "--env", "POSTGRES_DB=app", "--env", "POSTGRES_PASSWORD=bench-only"],
      image,
      ...service.command,
    ]);
    for (let i = 0; !ready(); i++) {
      if (i > 120) throw new Error(`the bench PostgreSQL did not start: ${docker(["logs", "--tail", "5", CONTAINER])}`);
      execFileSync("sleep", ["1"]);
    }

    const targetBytes = times * limitMb * 1024 ** 2;
    console.log(`Small tier: Postgres limited to ${limitMb} MiB (${service.command.slice(1).join(" ")})`);
    console.log(`Filling the database to ${gib(targetBytes)} (${times}× the limit)…`);
    let t = process.hrtime.bigint();
    psql("CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL)");
    // md5 text compresses about 2:1, as application data does: the upload is not trivially small.
    const rowsPerBatch = 1_000_000;
    let next = 1;
    while (Number(psql("SELECT pg_database_size(current_database())")) < targetBytes) {
      psql(
        `INSERT INTO events SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) || md5((g * 31)::text)
           FROM generate_series(${next}, ${next + rowsPerBatch - 1}) g`,
      );
      next += rowsPerBatch;
    }
    const dbBytes = Number(psql("SELECT pg_database_size(current_database())"));
    console.log(`  ${gib(dbBytes)}, ${next - 1} rows, in ${seconds(t).toFixed(0)} s\n`);

    const key = ageKey(work, "operator");
    writeFileSync(join(work, "recipients.txt"), `${key.recipient}\n`);
    const env = {
      ...bucketEnv(s3),
      PG_EXEC: `${DOCKER} exec -i ${CONTAINER}`,
      PGUSER: "app",
      PGDATABASE: "app",
      BACKUP_RECIPIENTS_FILE: join(work, "recipients.txt"),
      BACKUP_VERIFY: "size",
    };
    const rows: string[][] = [];
    for (const [label, dir] of [
      ["container /tmp (tmpfs, before)", "/tmp/webstack-backup"],
      ["data volume (now)", BACKUP_SPOOL_DIR],
    ]) {
      const killsBefore = oomKills();
      t = process.hrtime.bigint();
      const result = await runScript("backup.sh", [], { ...env, BACKUP_WORK_DIR: dir });
      const took = seconds(t);
      const failedAt = /FAILED at (\w+)/.exec(result.stderr)?.[1];
      const lost = /server closed the connection|terminating connection|crash of another server process/.test(
        result.stderr,
      )
        ? ": its PostgreSQL process went away"
        : "";
      const space = /No space left on device|not enough free space/.test(result.stderr) ? ": no space left" : "";
      const outcome = result.code === 0 ? "ok" : `FAILED at ${failedAt ?? "?"}${lost}${space}`;
      rows.push([label, `${took.toFixed(0)} s`, String(oomKills() - killsBefore), outcome]);
      for (let i = 0; !ready(); i++) {
        if (i === 0) spawnSync(DOCKER, ["start", CONTAINER]);
        if (i > 120) throw new Error("the bench PostgreSQL did not come back");
        execFileSync("sleep", ["1"]);
      }
    }
    console.log(`Backup of a ${gib(dbBytes)} database, Postgres limited to ${limitMb} MiB:\n`);
    console.log(`  ${"spool".padEnd(32)}${"time".padStart(6)}  ${"OOM kills".padEnd(10)}outcome`);
    for (const r of rows) console.log(`  ${r[0].padEnd(32)}${r[1].padStart(6)}  ${r[2].padEnd(10)}${r[3]}`);
  } finally {
    spawnSync(DOCKER, ["rm", "-f", "-v", CONTAINER]);
    await s3.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The entrypoint's final server answers (its init server has come and gone). */
function ready(): boolean {
  const logs = spawnSync(DOCKER, ["logs", CONTAINER], { encoding: "utf8" });
  if (!`${logs.stdout}${logs.stderr}`.includes("init process complete")) return false;
  return spawnSync(DOCKER, ["exec", CONTAINER, "pg_isready", "-U", "app", "-d", "app"]).status === 0;
}

/** Processes of the container the kernel killed for memory (its memory cgroup's count, v1 or v2). */
function oomKills(): number {
  const id = docker(["inspect", "-f", "{{.Id}}", CONTAINER]);
  for (const [file, key] of [
    [`/sys/fs/cgroup/memory/docker/${id}/memory.oom_control`, "oom_kill"],
    [`/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.events`, "oom_kill"],
  ]) {
    const r = spawnSync("cat", [file], { encoding: "utf8" });
    const line = r.status === 0 ? r.stdout.split("\n").find((l) => l.startsWith(`${key} `)) : undefined;
    if (line) return Number(line.split(" ")[1]);
  }
  return Number.NaN;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
