/**
 * The deploy dumps the database before a new migration runs (compose/scripts/deploy.sh; the e2e
 * suite runs it). The dumps stay on the data volume until a backup supersedes them: each good
 * backup removes the dumps made before it started, and only those.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ageKey, bucketEnv, type Postgres, runScript, type S3, startPostgres, startS3 } from "./harness";

let pg: Postgres;
let s3: S3;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), "webstack-pre-migration-"));
const dumps = join(dir, "pre-migration");

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres({ fsync: "off" }), startS3()]);
  const operator = ageKey(dir, "operator");
  writeFileSync(join(dir, "recipients.txt"), `${operator.recipient}\n`);
  pg.psql("CREATE DATABASE shop");
  pg.psql("CREATE TABLE orders AS SELECT i AS id FROM generate_series(1, 10) i", "shop");
  env = {
    ...pg.env,
    ...bucketEnv(s3),
    PGDATABASE: "shop",
    BACKUP_RECIPIENTS_FILE: join(dir, "recipients.txt"),
    BACKUP_PRE_MIGRATION_DIR: dumps,
  };
}, 60_000);

afterAll(async () => {
  pg?.destroy();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a backup after deploys that dumped the database before their migrations", () => {
  it("removes the dumps made before it started, and keeps a newer one and anything else", async () => {
    mkdirSync(dumps, { recursive: true });
    for (const name of ["shop-20260101T020000Z.dump", "shop-20261130T235959Z.dump", "shop-29991231T000000Z.dump"]) {
      writeFileSync(join(dumps, name), "stand-in dump");
    }
    writeFileSync(join(dumps, "notes.txt"), "not a dump");
    const backup = await runScript("backup.sh", [], env);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stderr).toContain("removed the dumps made before migrations, which this backup supersedes");
    expect(readdirSync(dumps).sort()).toEqual(["notes.txt", "shop-29991231T000000Z.dump"]);
  });

  it("succeeds when the deploy never dumped anything", async () => {
    rmSync(dumps, { recursive: true, force: true });
    const backup = await runScript("backup.sh", [], env);
    expect(backup.code, backup.stderr).toBe(0);
    expect(existsSync(dumps)).toBe(false);
  });

  it("does not remove the dumps when the backup fails", async () => {
    mkdirSync(dumps, { recursive: true });
    writeFileSync(join(dumps, "shop-20260101T020000Z.dump"), "stand-in dump");
    const backup = await runScript("backup.sh", [], { ...env, BACKUP_S3_BUCKET: "no-such-bucket" });
    expect(backup.code).toBe(1);
    expect(readdirSync(dumps)).toEqual(["shop-20260101T020000Z.dump"]);
  });
});
