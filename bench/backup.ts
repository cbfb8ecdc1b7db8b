/**
 * Backup and restore of a ~1 GB PostGIS database: this stack's job against the plain approach.
 *
 *   npx tsx bench/backup.ts [--gb 1]
 *
 * Builds a database of points and polygons with B-tree and GiST indexes in a private PostgreSQL 15
 * cluster, then in one run times
 *   - plain: pg_dump --format=custom to a file, then a single-threaded pg_restore into a new database;
 *   - this job: backup/backup.sh (pg_dump --format=directory --jobs, tar, age, upload to a
 *     local S3 server, read-back verification) and restore.sh (download, sha256, decrypt,
 *     pg_restore --jobs) into a new database;
 * and prints both, the ratios and the artifact sizes. Needs the tools of scripts/install-test-tools.sh.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { ageKey, bucketEnv, rclone, runScript, startPostgres, startS3 } from "../tests/backup/harness";

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function main(): Promise<void> {
  const gbArg = process.argv.indexOf("--gb");
  const gb = gbArg > 0 ? Number(process.argv[gbArg + 1]) : 1;
  const points = Math.round(3_600_000 * gb);
  const polygons = Math.round(360_000 * gb);
  const work = mkdtempSync(join(tmpdir(), "webstack-bench-"));
  // Same server settings for both approaches; modest memory, as on the small tier.
  const pg = await startPostgres({ shared_buffers: "256MB", max_wal_size: "4GB", checkpoint_timeout: "30min" });
  const s3 = await startS3(["backups"]);
  try {
    const env = { ...process.env, ...pg.env };
    const run = (cmd: string, args: string[]) =>
      execFileSync(cmd, args, { env, stdio: ["ignore", "ignore", "inherit"] });

    console.log(`Generating ${points} points and ${polygons} polygons with indexes (PostgreSQL 15, PostGIS)…`);
    let t = process.hrtime.bigint();
    pg.psql("CREATE DATABASE geo");
    pg.psql(
      `CREATE EXTENSION postgis;
       CREATE TABLE points (id bigint PRIMARY KEY, category int NOT NULL, name text NOT NULL,
         observed timestamptz NOT NULL, geom geometry(Point, 4326) NOT NULL);
       CREATE TABLE polygons (id bigint PRIMARY KEY, kind text NOT NULL, area_m2 double precision NOT NULL,
         geom geometry(Polygon, 4326) NOT NULL);
       INSERT INTO points SELECT i, i % 97, 'point ' || md5(i::text),
         timestamptz '2024-01-01' + (i % 525600) * interval '1 minute',
         ST_SetSRID(ST_MakePoint(random() * 360 - 180, random() * 170 - 85), 4326)
         FROM generate_series(1, ${points}) i;
       INSERT INTO polygons SELECT i, (ARRAY['park', 'lake', 'building', 'field'])[1 + i % 4], random() * 1e5,
         ST_Buffer(ST_SetSRID(ST_MakePoint(random() * 360 - 180, random() * 170 - 85), 4326), 0.001 + random() * 0.05, 6)
         FROM generate_series(1, ${polygons}) i;
       CREATE INDEX points_geom ON points USING gist (geom);
       CREATE INDEX points_category ON points (category, observed);
       CREATE INDEX polygons_geom ON polygons USING gist (geom);
       CREATE INDEX polygons_kind ON polygons (kind);`,
      "geo",
    );
    pg.psql("VACUUM ANALYZE", "geo");
    const dbSize = Number(pg.psql("SELECT pg_database_size('geo')"));
    console.log(`  database: ${mb(dbSize)} in ${seconds(t).toFixed(0)} s`);

    // Plain approach: custom format to a file, single-threaded restore.
    const plainFile = join(work, "geo.dump");
    t = process.hrtime.bigint();
    run("pg_dump", ["--format=custom", "--file", plainFile, "geo"]);
    const plainBackup = seconds(t);
    pg.psql("CREATE DATABASE plain_restore");
    t = process.hrtime.bigint();
    run("pg_restore", ["--exit-on-error", "--dbname", "plain_restore", plainFile]);
    const plainRestore = seconds(t);
    const plainSize = statSync(plainFile).size;
    pg.psql("DROP DATABASE plain_restore");

    // This job.
    const key = ageKey(work, "operator");
    writeFileSync(join(work, "recipients.txt"), `${key.recipient}\n`);
    const jobEnv = {
      ...pg.env,
      ...bucketEnv(s3),
      PGDATABASE: "geo",
      BACKUP_RECIPIENTS_FILE: join(work, "recipients.txt"),
    };
    t = process.hrtime.bigint();
    const backup = await runScript("backup.sh", [], jobEnv);
    const jobBackup = seconds(t);
    if (backup.code !== 0) throw new Error(backup.stderr);
    const manifest = JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"])) as { sizeBytes: number };
    t = process.hrtime.bigint();
    const restore = await runScript(
      "restore.sh",
      ["restore", "--identity", key.identityFile, "--database", "job_restore"],
      jobEnv,
    );
    const jobRestore = seconds(t);
    if (restore.code !== 0) throw new Error(restore.stderr);
    const same =
      pg.psql(
        "SELECT count(*) || '/' || md5(string_agg(ST_AsEWKB(geom)::text, '' ORDER BY id)) FROM polygons",
        "job_restore",
      ) ===
      pg.psql("SELECT count(*) || '/' || md5(string_agg(ST_AsEWKB(geom)::text, '' ORDER BY id)) FROM polygons", "geo");

    const jobs = process.env.BACKUP_JOBS ?? String(cpus().length);
    console.log(`\nBackup and restore of a ${mb(dbSize)} PostGIS database (${cpus().length} CPUs, ${jobs} jobs)\n`);
    const rows = [
      ["", "backup", "restore", "artifact"],
      ["plain (pg_dump -Fc, pg_restore)", `${plainBackup.toFixed(1)} s`, `${plainRestore.toFixed(1)} s`, mb(plainSize)],
      [
        "this job (backup.sh, restore.sh)",
        `${jobBackup.toFixed(1)} s`,
        `${jobRestore.toFixed(1)} s`,
        `${mb(manifest.sizeBytes)} (encrypted)`,
      ],
    ];
    for (const r of rows) console.log(`  ${r[0].padEnd(34)}${r[1].padStart(10)}${r[2].padStart(10)}  ${r[3]}`);
    console.log(`\n  restore speed-up: ${(plainRestore / jobRestore).toFixed(2)}x  (plain ÷ this job)`);
    console.log(
      `  backup time ratio: ${(jobBackup / plainBackup).toFixed(2)}x  (this job ÷ plain; includes encryption, upload and read-back)`,
    );
    console.log(`  artifact size ratio: ${(manifest.sizeBytes / plainSize).toFixed(4)}  (this job ÷ plain)`);
    console.log(`  restored data identical to the source: ${same ? "yes" : "NO"}`);
    console.log(`\n  ${backup.stdout.trim()}\n  ${restore.stdout.trim()}`);
  } finally {
    pg.destroy();
    await s3.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
