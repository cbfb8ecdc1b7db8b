/**
 * The uploads directories are backed up with the database: one archive per run, encrypted to the
 * same recipients, in the backups bucket beside the dump (the one bucket-scoped token covers it),
 * recorded in the manifest before latest.json moves; restore.sh unpacks it with owners and ACLs,
 * and the drill proves it opens. Real tar, age, rclone, PostgreSQL and an S3 server.
 */
import { execFileSync } from "node:child_process";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgeKey,
  ageKey,
  bucketEnv,
  type Postgres,
  rclone,
  runScript,
  type S3,
  s3ObjectPath,
  startPostgres,
  startS3,
} from "./harness";

interface UploadsEntry {
  key: string;
  sha256: string;
  sizeBytes: number;
  files: number;
  dirs: string[];
}

let pg: Postgres;
let s3: S3;
let operator: AgeKey;
let drillKey: AgeKey;
let env: Record<string, string>;
let manifest: { key: string; uploads: UploadsEntry };
const dir = mkdtempSync(join(tmpdir(), "webstack-uploads-"));
/** Stands for /srv/data/uploads: what users uploaded, written by an app running as uid 1000. */
const uploads = join(dir, "srv", "uploads");
/** A second directory from webstack:backupUploadsDirs. */
const exports = join(dir, "srv", "exports");
const WRITER_UID = 1000;
const UPLOADS_GID = 10001;

const getfacl = (path: string) =>
  execFileSync("getfacl", ["--absolute-names", "--numeric", path], { encoding: "utf8" }).replace(/^# file:.*\n/m, "");
const latest = () => JSON.parse(rclone(s3, ["cat", "t:backups/latest.json"]));
/** drill.sh against a throwaway cluster, with the drill key only. */
const runDrill = (throwaway: Postgres) =>
  runScript("drill.sh", [], {
    ...throwaway.env,
    ...bucketEnv(s3),
    PGDATABASE: "shop",
    BACKUP_DRILL_IDENTITY_FILE: drillKey.identityFile,
  });

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres({ fsync: "off" }), startS3()]);
  operator = ageKey(dir, "operator");
  drillKey = ageKey(dir, "drill");
  writeFileSync(join(dir, "recipients.txt"), `${operator.recipient}\n`);
  pg.psql("CREATE DATABASE shop");
  pg.psql("CREATE TABLE orders AS SELECT i AS id FROM generate_series(1, 100) i", "shop");

  mkdirSync(join(uploads, "avatars"), { recursive: true });
  mkdirSync(exports, { recursive: true });
  writeFileSync(join(uploads, "avatars", "ada.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]));
  writeFileSync(join(uploads, "report.pdf"), "%PDF-1.7 quarterly report\n");
  writeFileSync(join(exports, "orders.csv"), "id\n1\n2\n");
  // As the deploy leaves it: the writers' group, setgid, a default ACL; files owned by the app.
  for (const path of [uploads, join(uploads, "avatars")]) {
    chownSync(path, 0, UPLOADS_GID);
    execFileSync("chmod", ["2775", path]);
    execFileSync("setfacl", ["-m", `g:${UPLOADS_GID}:rwx,d:g:${UPLOADS_GID}:rwx,d:m::rwx`, path]);
  }
  for (const file of [join(uploads, "avatars", "ada.png"), join(uploads, "report.pdf")]) {
    chownSync(file, WRITER_UID, UPLOADS_GID);
  }

  env = {
    ...pg.env,
    ...bucketEnv(s3),
    PGDATABASE: "shop",
    BACKUP_RECIPIENTS_FILE: join(dir, "recipients.txt"),
    BACKUP_DRILL_IDENTITY_FILE: drillKey.identityFile,
    BACKUP_UPLOADS_DIRS: `${uploads}:${exports}`,
  };
  const backup = await runScript("backup.sh", [], env);
  if (backup.code !== 0) throw new Error(`backup failed: ${backup.stderr}`);
  manifest = latest();
}, 60_000);

afterAll(async () => {
  pg?.destroy();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a backup of a stack with uploads", () => {
  it("archives the uploads directories beside the dump and records them in the manifest", () => {
    const { uploads: entry } = manifest;
    expect(entry.key).toBe(manifest.key.replace(/\.tar\.zst\.age$/, ".uploads.tar.zst.age"));
    expect(entry.files).toBe(3);
    expect(entry.dirs).toEqual([uploads, exports]);
    const stored = rclone(s3, ["lsjson", `t:backups/${entry.key}`]);
    expect(JSON.parse(stored)[0].Size).toBe(entry.sizeBytes);
  });

  it("stores the uploads only as ciphertext for the backup's recipients", () => {
    const bytes = readFileSync(s3ObjectPath(s3, "backups", manifest.uploads.key));
    expect(bytes.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
    expect(bytes.includes(Buffer.from("quarterly report"))).toBe(false);
    const plain = execFileSync("age", ["--decrypt", "--identity", operator.identityFile], { input: bytes });
    expect(execFileSync("zstd", ["-dc"], { input: plain }).includes(Buffer.from("quarterly report"))).toBe(true);
  });

  it("is listed once, as the database backup, not also as its uploads archive", async () => {
    const listed = await runScript("restore.sh", ["list"], env);
    expect(listed.code).toBe(0);
    const rows = listed.stdout.trim().split("\n").slice(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(manifest.key);
  });

  it("fails when an uploads directory is missing, and latest.json keeps pointing at the last whole backup", async () => {
    const failed = await runScript("backup.sh", [], { ...env, BACKUP_UPLOADS_DIRS: `${uploads}:${dir}/gone` });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`FAILED at uploads: uploads directory ${dir}/gone does not exist`);
    expect(latest().key).toBe(manifest.key);
  });
});

describe("restore.sh uploads", () => {
  it("unpacks the uploads into a new directory with their bytes, owners, modes and ACLs", async () => {
    const into = join(dir, "restored");
    const restored = await runScript(
      "restore.sh",
      ["uploads", "--identity", operator.identityFile, "--into", into],
      env,
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`${manifest.uploads.key} (3 files) unpacked into ${into}${uploads}`);
    for (const file of ["avatars/ada.png", "report.pdf"]) {
      expect(readFileSync(join(into, uploads, file))).toEqual(readFileSync(join(uploads, file)));
      expect(statSync(join(into, uploads, file)).uid).toBe(WRITER_UID);
    }
    expect(readFileSync(join(into, exports, "orders.csv"), "utf8")).toBe("id\n1\n2\n");
    expect(statSync(join(into, uploads)).mode & 0o7777).toBe(0o2775);
    expect(getfacl(join(into, uploads, "avatars"))).toBe(getfacl(join(uploads, "avatars")));
    expect(getfacl(join(into, uploads, "avatars"))).toContain(`default:group:${UPLOADS_GID}:rwx`);
  });

  it("reads the private key from standard input", async () => {
    const into = join(dir, "restored-stdin");
    const restored = await runScript(
      "restore.sh",
      ["uploads", "latest", "--identity", "-", "--into", into],
      env,
      operator.identity,
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(existsSync(join(into, uploads, "report.pdf"))).toBe(true);
  });

  it("puts lost and changed files back over the live uploads, keeping files added since", async () => {
    unlinkSync(join(uploads, "avatars", "ada.png"));
    writeFileSync(join(uploads, "report.pdf"), "ransomware was here\n");
    writeFileSync(join(uploads, "new-since.txt"), "uploaded after the backup\n");
    const refused = await runScript("restore.sh", ["uploads", "--identity", operator.identityFile, "--over-live"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("add --confirm-over-live");
    const restored = await runScript(
      "restore.sh",
      ["uploads", "--identity", operator.identityFile, "--over-live", "--confirm-over-live"],
      env,
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(readFileSync(join(uploads, "report.pdf"), "utf8")).toBe("%PDF-1.7 quarterly report\n");
    expect(statSync(join(uploads, "avatars", "ada.png")).uid).toBe(WRITER_UID);
    expect(readFileSync(join(uploads, "new-since.txt"), "utf8")).toBe("uploaded after the backup\n");
  });

  it("refuses a directory that is not empty, and a key the backup was not encrypted to", async () => {
    const full = await runScript("restore.sh", ["uploads", "--identity", operator.identityFile, "--into", dir], env);
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(`${dir} is not empty`);
    const stranger = ageKey(join(dir, "keys"), "stranger");
    const into = join(dir, "restored-stranger");
    const wrong = await runScript("restore.sh", ["uploads", "--identity", stranger.identityFile, "--into", into], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`cannot decrypt ${manifest.uploads.key}`);
  });
});

describe("the restore drill of a backup with uploads", () => {
  it("decrypts and lists the uploads archive with the drill key and counts its files", async () => {
    const throwaway = await startPostgres({ fsync: "off" });
    try {
      const drill = await runDrill(throwaway);
      expect(drill.code, drill.stderr).toBe(0);
      expect(drill.stdout).toContain("uploads archive opens with 3 files");
    } finally {
      throwaway.destroy();
    }
  });

  it("fails on a damaged uploads archive, naming it", async () => {
    const object = s3ObjectPath(s3, "backups", manifest.uploads.key);
    const original = readFileSync(object);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 40] ^= 0xff;
    writeFileSync(object, damaged);
    const throwaway = await startPostgres({ fsync: "off" });
    try {
      const drill = await runDrill(throwaway);
      expect(drill.code).toBe(1);
      expect(drill.stderr).toContain(`FAILED at uploads: ${manifest.uploads.key} is corrupted or truncated`);
    } finally {
      throwaway.destroy();
      writeFileSync(object, original);
    }
  });
});
