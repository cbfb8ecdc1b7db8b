/**
 * A backup that cannot be made must say so: each failure exits non-zero with one clear line, sends
 * the failure ping, and leaves latest.json pointing at the last good backup.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgeKey,
  ageKey,
  bucketEnv,
  freePort,
  type Ping,
  type Postgres,
  rclone,
  runScript,
  type S3,
  type ScriptResult,
  startPingListener,
  startPostgres,
  startS3,
} from "./harness";

let pg: Postgres;
let s3: S3;
let ping: Awaited<ReturnType<typeof startPingListener>>;
let operator: AgeKey;
let env: Record<string, string>;
let goodLatest: string;
const dir = mkdtempSync(join(tmpdir(), "webstack-backup-failures-"));

beforeAll(async () => {
  [pg, s3, ping] = await Promise.all([startPostgres({ fsync: "off" }), startS3(), startPingListener()]);
  operator = ageKey(dir, "operator");
  writeFileSync(join(dir, "recipients.txt"), `${operator.recipient}\n`);
  pg.psql("CREATE DATABASE shop");
  pg.psql(
    `CREATE EXTENSION postgis;
     CREATE TABLE places AS SELECT i AS id, md5(i::text) || md5((i * 7)::text) AS name,
       ST_SetSRID(ST_MakePoint(i % 180, i % 90), 4326) AS geom FROM generate_series(1, 20000) i;`,
    "shop",
  );
  env = {
    ...pg.env,
    ...bucketEnv(s3),
    PGDATABASE: "shop",
    BACKUP_RECIPIENTS_FILE: join(dir, "recipients.txt"),
    BACKUP_PING_URL: ping.url,
  };
  const good = await runScript("backup.sh", [], env);
  if (good.code !== 0) throw new Error(`the first backup failed: ${good.stderr}`);
  goodLatest = rclone(s3, ["cat", "t:backups/latest.json"]);
});

afterAll(async () => {
  pg?.destroy();
  await Promise.all([s3?.close(), ping?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

/** Run a backup that must fail; return its result and the pings it sent. */
async function failingBackup(overrides: Record<string, string>): Promise<{ result: ScriptResult; sent: Ping[] }> {
  const before = ping.pings.length;
  const result = await runScript("backup.sh", [], { ...env, ...overrides });
  return { result, sent: ping.pings.slice(before) };
}

function expectCleanFailure(result: ScriptResult, sent: Ping[], message: RegExp) {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(message);
  if (process.env.SHOW_FAILURES) console.log(lines[0]);
  expect(sent).toEqual([{ path: "/ping/test-uuid/fail", body: lines[0] }]);
  expect(rclone(s3, ["cat", "t:backups/latest.json"])).toBe(goodLatest);
}

describe("a backup that fails", () => {
  it("exits 1 when the S3 endpoint is unreachable", async () => {
    const closed = await freePort();
    const { result, sent } = await failingBackup({ BACKUP_S3_ENDPOINT: `http://127.0.0.1:${closed}` });
    expectCleanFailure(
      result,
      sent,
      /^webstack-backup: FAILED at bucket: cannot list the backups bucket at http:\/\/127\.0\.0\.1:\d+: .*connection refused/,
    );
  });

  it("exits 1 when the S3 credentials are wrong", async () => {
    const { result, sent } = await failingBackup({ BACKUP_S3_SECRET_ACCESS_KEY: "not-the-secret" });
    expectCleanFailure(
      result,
      sent,
      /^webstack-backup: FAILED at bucket: cannot list the backups bucket .*SignatureDoesNotMatch/,
    );
  });

  it("exits 1 when the database is down", async () => {
    pg.stop();
    try {
      const { result, sent } = await failingBackup({});
      expectCleanFailure(
        result,
        sent,
        /^webstack-backup: FAILED at database: cannot reach PostgreSQL database 'shop': .*Connection refused/,
      );
    } finally {
      pg.start();
    }
  });

  it("exits 1 before dumping a byte when the spool has no room for the database and its reserve", async () => {
    const spool = join(dir, "spool");
    execFileSync("mkdir", ["-p", spool]);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", spool]);
    try {
      const { result, sent } = await failingBackup({ BACKUP_WORK_DIR: spool });
      expectCleanFailure(
        result,
        sent,
        /^webstack-backup: FAILED at dump: not enough free space for the dump on .*\/spool\/backup-[^:]+: the database takes \d[\d.]*[KMG]?i?B and \d[\d.]*[KMG]?i?B must stay free; \d[\d.]*[KMG]?i?B is free\. Grow the data volume \(webstack:volumeSizeGb\)$/,
      );
      expect(readdirSync(spool), "spool left empty").toEqual([]);
    } finally {
      execFileSync("umount", [spool]);
    }
  });

  it("exits 1 when the recipients file is missing", async () => {
    const { result, sent } = await failingBackup({ BACKUP_RECIPIENTS_FILE: join(dir, "absent.txt") });
    expectCleanFailure(result, sent, /^webstack-backup: FAILED at config: no age recipients in .*absent\.txt$/);
  });

  it("refuses a private key in the recipients file", async () => {
    writeFileSync(join(dir, "secret-recipients.txt"), operator.identity);
    const { result, sent } = await failingBackup({ BACKUP_RECIPIENTS_FILE: join(dir, "secret-recipients.txt") });
    expectCleanFailure(result, sent, /FAILED at config: .* holds a private key; it must list public keys only$/);
  });
});

describe("a backup whose monitoring is down", () => {
  it("still succeeds, with a warning that the ping did not go through", async () => {
    const closed = await freePort();
    const result = await runScript("backup.sh", [], { ...env, BACKUP_PING_URL: `http://127.0.0.1:${closed}/ping` });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("webstack-backup: warning: the success ping did not go through\n");
    expect(rclone(s3, ["cat", "t:backups/latest.json"])).not.toBe(goodLatest);
  });
});
