/**
 * Backup then restore, with the real tools: PostgreSQL 15 + PostGIS, pg_dump/pg_restore, age,
 * rclone and a signature-checking S3 server, all on loopback.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderBackupEnv, renderRestoreEnv } from "../../backup/render";
import { BACKUP_RETENTION } from "../../model/backups";
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
  startPingListener,
  startPostgres,
  startS3,
} from "./harness";

let pg: Postgres;
let s3: S3;
let ping: Awaited<ReturnType<typeof startPingListener>>;
let operator: AgeKey;
let drill: AgeKey;
let env: Record<string, string>;
const keys = join(tmpdir(), `webstack-backup-keys-${process.pid}`);

/** A fingerprint of every row and geometry of the sample schema. */
function fingerprint(database: string): string {
  return pg.psql(
    `SELECT (SELECT md5(string_agg(id || ':' || name || ':' || encode(ST_AsEWKB(geom), 'hex'), ',' ORDER BY id)) FROM places)
       || (SELECT md5(string_agg(id || ':' || kind || ':' || encode(ST_AsEWKB(geom), 'hex'), ',' ORDER BY id)) FROM areas)
       || (SELECT md5(string_agg(id || ':' || body::text, ',' ORDER BY id)) FROM notes)`,
    database,
  );
}

beforeAll(async () => {
  [pg, s3, ping] = await Promise.all([startPostgres({ fsync: "off" }), startS3(), startPingListener()]);
  operator = ageKey(keys, "operator");
  drill = ageKey(keys, "drill");
  const recipients = join(keys, "recipients.txt");
  writeFileSync(recipients, `# operators\n${operator.recipient}\n`);
  pg.psql("CREATE DATABASE shop");
  pg.psql(
    `CREATE EXTENSION postgis;
     CREATE TABLE places (id bigint PRIMARY KEY, name text NOT NULL, geom geometry(Point, 4326) NOT NULL);
     CREATE TABLE areas (id bigint PRIMARY KEY, kind text NOT NULL, geom geometry(Polygon, 4326) NOT NULL);
     CREATE TABLE notes (id serial PRIMARY KEY, body jsonb NOT NULL);
     INSERT INTO places SELECT i, 'place ' || i, ST_SetSRID(ST_MakePoint(-180 + (i * 7919 % 36000) / 100.0, -90 + (i * 104729 % 18000) / 100.0), 4326)
       FROM generate_series(1, 5000) i;
     INSERT INTO areas SELECT i, CASE WHEN i % 2 = 0 THEN 'park' ELSE 'lake' END,
       ST_Buffer(ST_SetSRID(ST_MakePoint((i % 360) - 180, (i % 170) - 85), 4326), 0.3, 4)
       FROM generate_series(1, 1000) i;
     INSERT INTO notes (body) SELECT jsonb_build_object('n', i, 'text', 'ünïcödé ' || i) FROM generate_series(1, 300) i;
     CREATE INDEX places_geom ON places USING gist (geom);
     CREATE INDEX areas_geom ON areas USING gist (geom);`,
    "shop",
  );
  env = {
    ...pg.env,
    ...bucketEnv(s3),
    PGDATABASE: "shop",
    BACKUP_RECIPIENTS_FILE: recipients,
    BACKUP_DRILL_IDENTITY_FILE: drill.identityFile,
    BACKUP_PING_URL: ping.url,
  };
});

afterAll(async () => {
  pg?.destroy();
  await Promise.all([s3?.close(), ping?.close()]);
  rmSync(keys, { recursive: true, force: true });
});

describe("backup.sh then restore.sh", () => {
  let first: { code: number; stdout: string; stderr: string };

  beforeAll(async () => {
    first = await runScript("backup.sh", [], env);
  });

  it("succeeds with one line that names the object, its size and the versions", () => {
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const lines = first.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^webstack-backup: ok: monthly\/shop-\d{8}T\d{6}Z\.tar\.zst\.age [\d.]+[KMG]iB sha256=[0-9a-f]{16} in \d+s \(PostgreSQL 15\.\d+, PostGIS 3\.\d+\.\d+, \d+ tables\)$/,
    );
  });

  it("writes a manifest beside the object and points latest.json at it", () => {
    const latest = JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"]));
    const manifest = JSON.parse(
      rclone(s3, ["cat", `t:backups/${latest.key.replace(/\.tar\.zst\.age$/, ".manifest.json")}`]),
    );
    expect(manifest).toEqual(latest);
    expect(manifest).toMatchObject({
      database: "shop",
      tier: "monthly",
      postgresVersion: expect.stringMatching(/^15\./),
      postgisVersion: expect.stringMatching(/^3\./),
      drillRecipient: true,
      tables: 4,
    });
    const object = rclone(s3, ["lsjson", `t:backups/${manifest.key}`]);
    expect(JSON.parse(object)[0].Size).toBe(manifest.sizeBytes);
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.durationSeconds).toBeGreaterThanOrEqual(0);
  });

  it("stores only ciphertext: the object is an age file, not a readable dump", () => {
    const latest = JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"]));
    const head = rclone(s3, ["cat", "--count", "200", `t:backups/${latest.key}`]);
    expect(head.startsWith("age-encryption.org/v1\n")).toBe(true);
    expect(head).not.toContain("places");
  });

  it("sends the success ping with the journal line as its body", () => {
    const success = ping.pings.filter((p) => p.path === "/ping/test-uuid");
    expect(success.length).toBeGreaterThanOrEqual(1);
    expect(success[0].body).toBe(first.stdout.trim());
  });

  it("restores the latest backup into a new database with the same rows and geometries", async () => {
    const restored = await runScript(
      "restore.sh",
      ["restore", "latest", "--identity", operator.identityFile, "--database", "shop_copy"],
      env,
    );
    expect(restored.stderr).toBe("");
    expect(restored.stdout).toMatch(/^webstack-restore: ok: monthly\/shop-\S+ restored into shop_copy in \d+s/);
    expect(fingerprint("shop_copy")).toBe(fingerprint("shop"));
    expect(
      pg.psql("SELECT count(*) FROM pg_indexes WHERE indexname IN ('places_geom', 'areas_geom')", "shop_copy"),
    ).toBe("2");
  });

  it("reads the private key from standard input", async () => {
    const restored = await runScript(
      "restore.sh",
      ["restore", "--identity", "-", "--database", "shop_from_stdin"],
      env,
      operator.identity,
    );
    expect(restored.stderr).toBe("");
    expect(fingerprint("shop_from_stdin")).toBe(fingerprint("shop"));
  });

  it("refuses a key the backup was not encrypted to, with the reason", async () => {
    const stranger = ageKey(keys, "stranger");
    const restored = await runScript(
      "restore.sh",
      ["restore", "--identity", stranger.identityFile, "--database", "shop_wrong_key"],
      env,
    );
    expect(restored.code).toBe(1);
    expect(restored.stderr).toMatch(/FAILED at download: cannot decrypt .*not encrypted to this key/);
    expect(pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'shop_wrong_key'")).toBe("0");
  });

  it("refuses to restore into a database that exists", async () => {
    const restored = await runScript(
      "restore.sh",
      ["restore", "--identity", operator.identityFile, "--database", "shop"],
      env,
    );
    expect(restored.code).toBe(1);
    expect(restored.stderr).toMatch(/database shop already exists/);
  });

  it("writes each later backup of the same week under daily/, then restores a named one", async () => {
    const second = await runScript("backup.sh", [], env);
    expect(second.code).toBe(0);
    // Names have one-second resolution: the third gets a name of its own.
    await new Promise((r) => setTimeout(r, 1000));
    const third = await runScript("backup.sh", [], env);
    expect(third.code).toBe(0);
    // The first of the month went to monthly/, the first of the ISO week to weekly/, the rest to daily/.
    expect(second.stdout).toMatch(/ ok: weekly\/shop-/);
    expect(third.stdout).toMatch(/ ok: daily\/shop-/);
    const named = third.stdout.match(/ok: (daily\/\S+)/)?.[1] ?? "";
    const restored = await runScript(
      "restore.sh",
      ["restore", named.replace("daily/", ""), "--identity", operator.identityFile, "--database", "shop_named"],
      env,
    );
    expect(restored.stderr).toBe("");
    expect(restored.stdout).toContain(named);
    expect(fingerprint("shop_named")).toBe(fingerprint("shop"));
  });

  it("refuses a name two backups share, naming both, instead of restoring either", async () => {
    // Two backups made in the same second share a name under different prefixes.
    const latest = JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"])) as { key: string };
    const name = latest.key.split("/").pop() ?? "";
    rclone(s3, ["copyto", `t:backups/${latest.key}`, `t:backups/weekly/${name}`]);
    const restored = await runScript(
      "restore.sh",
      ["restore", name, "--identity", operator.identityFile, "--database", "shop_twice"],
      env,
    );
    rclone(s3, ["deletefile", `t:backups/weekly/${name}`]);
    expect(restored.code).toBe(1);
    expect(restored.stderr).toContain(`the name '${name}' matches `);
    expect(restored.stderr).toContain(`weekly/${name}`);
    expect(restored.stderr).toContain(latest.key);
  });

  it("lists every backup and marks the latest", async () => {
    const listed = await runScript("restore.sh", ["list"], env);
    expect(listed.code).toBe(0);
    const rows = listed.stdout.trim().split("\n").slice(1);
    expect(rows).toHaveLength(3);
    expect(rows.filter((r) => r.endsWith("<- latest"))).toHaveLength(1);
    expect(rows.map((r) => r.match(/ (\w+)\/shop-/)?.[1]).sort()).toEqual(["daily", "monthly", "weekly"]);
  });

  it("reads its settings from the environment file the component renders (--env-file)", async () => {
    const envFile = join(keys, "backup.env");
    writeFileSync(
      envFile,
      renderBackupEnv({
        endpoint: s3.endpoint,
        bucket: "backups",
        accessKeyId: S3_ACCESS_KEY,
        secretAccessKey: S3_SECRET_KEY,
        provider: "Other",
        database: "shop",
        databaseUser: "postgres",
        pgExec: "",
        workDir: join(keys, "work"),
        uploadsDirs: [],
      }),
    );
    const listed = await runScript("restore.sh", ["--env-file", envFile, "list"], {});
    expect(listed.stderr).toBe("");
    expect(listed.stdout.trim().split("\n")).toHaveLength(4);
  });

  it("restores on a new machine with nothing but the scripts, the restoreEnv output and an operator's key", async () => {
    // What docs/restore.md says to do on a workstation: the stack's restoreEnv output as the
    // environment file (the test server's endpoint and keys in place of R2's), any PostgreSQL.
    const envFile = join(keys, "restore.env");
    writeFileSync(
      envFile,
      renderRestoreEnv({
        endpoint: s3.endpoint,
        bucket: "backups",
        accessKeyId: S3_ACCESS_KEY,
        secretAccessKey: S3_SECRET_KEY,
        database: "shop",
        provider: "Other",
      }),
      { mode: 0o600 },
    );
    const libpq = { PGHOST: pg.env.PGHOST, PGPORT: pg.env.PGPORT, PGUSER: "postgres", PGPASSWORD: pg.env.PGPASSWORD };
    const restored = await runScript(
      "restore.sh",
      ["--env-file", envFile, "restore", "latest", "--identity", "-", "--database", "shop_new_machine"],
      libpq,
      operator.identity,
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(fingerprint("shop_new_machine")).toBe(fingerprint("shop"));
  });

  it("writes only under the prefixes that the retention rules expire (and latest.json)", () => {
    const prefixes = BACKUP_RETENTION.map((r) => r.prefix);
    const objects = rclone(s3, ["lsf", "-R", "--files-only", "t:backups"]).trim().split("\n");
    for (const key of objects) {
      if (key === "latest.json") continue;
      expect(prefixes.some((p) => key.startsWith(p))).toBe(true);
    }
    expect(new Set(objects.map((k) => k.split("/")[0]))).toEqual(
      new Set(["latest.json", "daily", "weekly", "monthly"]),
    );
  });

  it("verifies an object against its manifest without any key", async () => {
    const verified = await runScript("restore.sh", ["verify", "latest"], env);
    expect(verified.stderr).toBe("");
    expect(verified.stdout).toMatch(/ok: daily\/shop-\S+ matches its manifest/);
  });

  it("fetches the encrypted object and its manifest to a file", async () => {
    const file = join(keys, "fetched.tar.age");
    const fetched = await runScript("restore.sh", ["fetch", "latest", "--output", file], env);
    expect(fetched.stderr).toBe("");
    const manifest = JSON.parse(readFileSync(`${file}.manifest.json`, "utf8"));
    expect(readFileSync(file).length).toBe(manifest.sizeBytes);
  });
});

describe("restore.sh over the live database", () => {
  it("refuses without the confirmation flag", async () => {
    const refused = await runScript("restore.sh", ["restore", "--identity", operator.identityFile, "--over-live"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/add --confirm-over-live once the app is stopped/);
  });

  it("refuses while the app still holds a session on the live database", async () => {
    const { startProcess } = await import("./harness");
    const app = startProcess("psql", ["-X", "-d", "shop", "-c", "SELECT pg_sleep(30)"], pg.env);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const refused = await runScript(
        "restore.sh",
        ["restore", "--identity", operator.identityFile, "--over-live", "--confirm-over-live"],
        env,
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/1 session\(s\) still use shop: stop the app first/);
    } finally {
      // Killing psql leaves its backend asleep until pg_sleep ends: end the session server-side.
      pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'shop'");
      await app.done;
    }
  });

  it("swaps the restored copy in under the live name and keeps the old one, owned by the live one's owner", async () => {
    const before = fingerprint("shop");
    // As on the server: the app's role, no superuser, owns the live database.
    pg.psql("CREATE ROLE shop_app; ALTER DATABASE shop OWNER TO shop_app");
    pg.psql('INSERT INTO notes (body) VALUES (\'{"written": "after the backup"}\')', "shop");
    const swapped = await runScript(
      "restore.sh",
      ["restore", "--identity", operator.identityFile, "--over-live", "--confirm-over-live"],
      env,
    );
    expect(swapped.stderr).toBe("");
    expect(swapped.stdout).toMatch(/restored into shop \(the previous one is kept as shop_before_restore_\d{8}T\d{6}Z/);
    expect(fingerprint("shop")).toBe(before);
    expect(pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'")).toBe("shop_app");
    const kept = pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'shop_before_restore_%'");
    expect(pg.psql("SELECT count(*) FROM notes", kept)).toBe("301");
  });
});
