/**
 * A backup taken while the app writes restores to one consistent moment: pgbench's TPC-B-like
 * transactions move money between accounts, tellers and branches and log each move in history, so
 * in any consistent snapshot the four sums are equal.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  type AgeKey,
  ageKey,
  bucketEnv,
  type Postgres,
  runScript,
  type S3,
  type ScriptResult,
  startPostgres,
  startProcess,
  startS3,
} from "./harness";

let pg: Postgres;
let s3: S3;
let operator: AgeKey;
let env: Record<string, string>;
let backup: ScriptResult;
let load: { code: number; output: string };
let backupStartedAfterLoad: boolean;
const dir = mkdtempSync(join(tmpdir(), "webstack-consistency-"));

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres({ fsync: "off", max_connections: "60" }), startS3()]);
  operator = ageKey(dir, "operator");
  writeFileSync(join(dir, "recipients.txt"), `${operator.recipient}\n`);
  pg.psql("CREATE DATABASE bank");
  const { execFileSync } = await import("node:child_process");
  execFileSync("pgbench", ["-i", "-q", "-s", "4", "bank"], { env: { ...process.env, ...pg.env }, stdio: "ignore" });
  env = { ...pg.env, ...bucketEnv(s3), PGDATABASE: "bank", BACKUP_RECIPIENTS_FILE: join(dir, "recipients.txt") };

  const writer = startProcess("pgbench", ["-c", "4", "-j", "2", "-T", "15", "bank"], pg.env);
  await new Promise((r) => setTimeout(r, 2000));
  const historyBefore = Number(pg.psql("SELECT count(*) FROM pgbench_history", "bank"));
  backup = await runScript("backup.sh", [], { ...env, BACKUP_JOBS: "2" });
  backupStartedAfterLoad = historyBefore > 0 && writer.child.exitCode === null;
  load = await writer.done;
}, 180_000);

afterAll(async () => {
  pg?.destroy();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

it("takes the backup while pgbench is writing", () => {
  expect(backup.stderr).toBe("");
  expect(backup.code).toBe(0);
  expect(backupStartedAfterLoad).toBe(true);
  expect(load.code).toBe(0);
  expect(load.output).toMatch(/number of transactions actually processed: [1-9]\d*/);
});

it("restores to a state in which every transfer is complete: the four sums agree", async () => {
  const restored = await runScript(
    "restore.sh",
    ["restore", "--identity", operator.identityFile, "--database", "bank_restored", "--jobs", "2"],
    env,
  );
  expect(restored.stderr).toBe("");
  const sums = pg
    .psql(
      `SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
              (SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(delta) FROM pgbench_history),
              (SELECT count(*) FROM pgbench_history)`,
      "bank_restored",
    )
    .split("|")
    .map(Number);
  const [accounts, tellers, branches, history, moves] = sums;
  expect(moves).toBeGreaterThan(0);
  expect(accounts).toBe(history);
  expect(tellers).toBe(history);
  expect(branches).toBe(history);
  // The live database went on writing after the snapshot: the restore is a past moment, not now.
  expect(Number(pg.psql("SELECT count(*) FROM pgbench_history", "bank"))).toBeGreaterThan(moves);
});
