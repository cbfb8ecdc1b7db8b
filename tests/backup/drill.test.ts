/**
 * The restore drill restores the latest backup into a throwaway PostgreSQL with the drill-only
 * key, runs sanity queries and pings; a damaged object is caught by the drill and by restore.sh.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type AgeKey,
  ageKey,
  bucketEnv,
  type Postgres,
  rclone,
  runScript,
  type S3,
  S3_ACCESS_KEY,
  S3_SECRET_KEY,
  s3ObjectPath,
  startPingListener,
  startPostgres,
  startS3,
} from "./harness";

let source: Postgres;
let throwaway: Postgres;
let s3: S3;
let ping: Awaited<ReturnType<typeof startPingListener>>;
let operator: AgeKey;
let drillKey: AgeKey;
let backupEnv: Record<string, string>;
let drillEnv: Record<string, string>;
let latestKey: string;
const dir = mkdtempSync(join(tmpdir(), "webstack-drill-"));

beforeAll(async () => {
  [source, throwaway, s3, ping] = await Promise.all([
    startPostgres({ fsync: "off" }),
    startPostgres({ fsync: "off" }),
    startS3(),
    startPingListener(),
  ]);
  operator = ageKey(dir, "operator");
  drillKey = ageKey(dir, "drill");
  writeFileSync(join(dir, "recipients.txt"), `${operator.recipient}\n`);
  source.psql("CREATE DATABASE shop");
  source.psql(
    `CREATE EXTENSION postgis;
     CREATE TABLE places AS SELECT i AS id, ST_SetSRID(ST_MakePoint(i % 180, i % 90), 4326) AS geom FROM generate_series(1, 3000) i;
     CREATE TABLE orders AS SELECT i AS id, i * 3 AS total FROM generate_series(1, 1200) i;
     CREATE TABLE empty_table (id int);`,
    "shop",
  );
  backupEnv = {
    ...source.env,
    ...bucketEnv(s3),
    PGDATABASE: "shop",
    BACKUP_RECIPIENTS_FILE: join(dir, "recipients.txt"),
    BACKUP_DRILL_IDENTITY_FILE: drillKey.identityFile,
  };
  // The drill reaches only the throwaway cluster; it never sees the operators' key.
  drillEnv = {
    ...throwaway.env,
    ...bucketEnv(s3),
    PGDATABASE: "shop",
    BACKUP_DRILL_IDENTITY_FILE: drillKey.identityFile,
    BACKUP_PING_URL: ping.url,
  };
  const backup = await runScript("backup.sh", [], backupEnv);
  if (backup.code !== 0) throw new Error(`backup failed: ${backup.stderr}`);
  latestKey = JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"])).key;
});

afterAll(async () => {
  source?.destroy();
  throwaway?.destroy();
  await Promise.all([s3?.close(), ping?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

function databasesOf(pg: Postgres): string[] {
  return pg.psql("SELECT datname FROM pg_database ORDER BY 1").split("\n");
}

describe("drill.sh", () => {
  it("restores the latest backup with the drill key and reports table counts and PostGIS", async () => {
    const before = ping.pings.length;
    const drill = await runScript("drill.sh", [], drillEnv);
    expect(drill.code).toBe(0);
    expect(drill.stdout.trim()).toMatch(
      /^webstack-restore-drill: ok: monthly\/shop-\S+ restored in \d+s \(4 tables with data, 12700 rows, 4 tables, PostGIS 3\.\d+\.\d+ works; drill took \d+s\)$/,
    );
    expect(drill.stderr).toContain(
      "public.empty_table=0 public.orders=1200 public.places=3000 public.spatial_ref_sys=8500",
    );
    expect(ping.pings.slice(before)).toEqual([{ path: "/ping/test-uuid", body: drill.stdout.trim() }]);
  });

  it("leaves nothing behind in the throwaway server", () => {
    expect(databasesOf(throwaway)).toEqual(["postgres", "template0", "template1"]);
  });

  it("fails when the latest backup is older than DRILL_MAX_AGE_HOURS: backups have stopped", async () => {
    const latest = JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"]));
    const stale = { ...latest, created: new Date(Date.now() - 72 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "Z") };
    const staleFile = join(dir, "stale.json");
    writeFileSync(staleFile, JSON.stringify(stale));
    const original = join(dir, "latest.json");
    writeFileSync(original, JSON.stringify(latest));
    rclone(s3, ["copyto", "--ignore-times", staleFile, "t:backups/latest.json"]);
    try {
      const drill = await runScript("drill.sh", [], drillEnv);
      expect(drill.code).toBe(1);
      expect(drill.stderr.trim()).toMatch(
        /FAILED at latest: the latest backup \(monthly\/\S+\) is 7[12]h old: backups have stopped$/,
      );
      expect(ping.pings.at(-1)?.path).toBe("/ping/test-uuid/fail");
    } finally {
      rclone(s3, ["copyto", "--ignore-times", original, "t:backups/latest.json"]);
    }
  });

  it("fails on a backup taken without the drill recipient", async () => {
    const { BACKUP_DRILL_IDENTITY_FILE: _omitted, ...withoutDrill } = backupEnv;
    const saved = join(dir, "latest-before.json");
    writeFileSync(saved, rclone(s3, ["cat", "t:backups/latest.json"]));
    const backup = await runScript("backup.sh", [], withoutDrill);
    expect(backup.code).toBe(0);
    try {
      const drill = await runScript("drill.sh", [], drillEnv);
      expect(drill.code).toBe(1);
      expect(drill.stderr).toMatch(/is not encrypted to the drill key/);
    } finally {
      rclone(s3, ["copyto", "--ignore-times", saved, "t:backups/latest.json"]);
    }
  });
});

describe("a damaged backup object", () => {
  let stored: string;
  const pristine = join(dir, "pristine.tar.age");

  beforeAll(() => {
    stored = s3ObjectPath(s3, "backups", latestKey);
    copyFileSync(stored, pristine);
  });
  afterEach(() => copyFileSync(pristine, stored));

  function corruptOneByte() {
    const bytes = readFileSync(stored);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at] ^ 0xff;
    writeFileSync(stored, bytes);
  }

  /** Replace the object through the S3 API with the AWS CLI (Debian's awscli), truncated. */
  function uploadTruncated() {
    const truncated = join(dir, "truncated.tar.age");
    copyFileSync(pristine, truncated);
    truncateSync(truncated, Math.floor(readFileSync(pristine).length * 0.6));
    execFileSync("/usr/bin/aws", ["s3", "cp", truncated, `s3://backups/${latestKey}`, "--endpoint-url", s3.endpoint], {
      env: {
        PATH: "/usr/bin:/bin",
        HOME: dir,
        AWS_ACCESS_KEY_ID: S3_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY,
        AWS_DEFAULT_REGION: "us-east-1",
        AWS_REQUEST_CHECKSUM_CALCULATION: "when_required",
      },
      stdio: "ignore",
    });
  }

  it("is caught by restore.sh when a byte is flipped", async () => {
    corruptOneByte();
    const restored = await runScript(
      "restore.sh",
      ["restore", "--identity", operator.identityFile, "--database", "shop_flipped"],
      { ...source.env, ...bucketEnv(s3), PGDATABASE: "shop" },
    );
    expect(restored.code).toBe(1);
    expect(restored.stderr).toMatch(
      /FAILED at download: monthly\/\S+ is corrupted or truncated: \d+ bytes with sha256 [0-9a-f]{64}, the manifest says/,
    );
    expect(databasesOf(source)).not.toContain("shop_flipped");
  });

  it("is caught by restore.sh when truncated", async () => {
    uploadTruncated();
    const restored = await runScript(
      "restore.sh",
      ["restore", "--identity", operator.identityFile, "--database", "shop_truncated"],
      { ...source.env, ...bucketEnv(s3), PGDATABASE: "shop" },
    );
    expect(restored.code).toBe(1);
    expect(restored.stderr).toMatch(/FAILED at download: monthly\/\S+ is corrupted or truncated/);
  });

  it("is caught by restore.sh verify, without any key", async () => {
    corruptOneByte();
    const verified = await runScript("restore.sh", ["verify"], { ...bucketEnv(s3) });
    expect(verified.code).toBe(1);
    expect(verified.stderr).toMatch(/FAILED at verify: monthly\/\S+ is corrupted or truncated/);
  });

  it("is caught by the drill, which sends the failure ping", async () => {
    corruptOneByte();
    const drill = await runScript("drill.sh", [], drillEnv);
    expect(drill.code).toBe(1);
    expect(drill.stderr.trim()).toMatch(
      /^webstack-restore-drill: FAILED at download: monthly\/\S+ is corrupted or truncated/,
    );
    expect(ping.pings.at(-1)).toEqual({ path: "/ping/test-uuid/fail", body: drill.stderr.trim() });
    expect(databasesOf(throwaway)).toEqual(["postgres", "template0", "template1"]);
  });

  it("is caught by the drill when truncated", async () => {
    uploadTruncated();
    const drill = await runScript("drill.sh", [], drillEnv);
    expect(drill.code).toBe(1);
    expect(drill.stderr).toMatch(/FAILED at download: monthly\/\S+ is corrupted or truncated/);
  });
});
