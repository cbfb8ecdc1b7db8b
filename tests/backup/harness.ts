/**
 * What the backup suites start for themselves, all on loopback: a private PostgreSQL 15 cluster
 * with PostGIS (initdb in a temp dir, run as the `postgres` user when the tests run as root), a
 * signature-checking S3 server (@20minutes/s3rver), an HTTP listener that records monitoring
 * pings, and a runner for the real backup scripts with a given environment.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SCRIPTS_DIR = join(__dirname, "..", "..", "backup");
export const PG_BIN = "/usr/lib/postgresql/15/bin";
/** Credentials s3rver accepts (its built-in account); anything else fails signature checks. */
export const S3_ACCESS_KEY = "S3RVER";
export const S3_SECRET_KEY = "S3RVER";
export const PG_PASSWORD = "test-only-password";

import { freePort } from "../support/ports";

export { freePort };

const isRoot = process.getuid?.() === 0;

/** Run a command as the cluster's owner: `postgres` when we are root (initdb refuses root). */
function asOwner(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const full = isRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
  return execFileSync(full[0] as string, full[1] as string[], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export interface Postgres {
  port: number;
  dir: string;
  /** libpq variables that reach this cluster as the superuser (password through the environment). */
  env: Record<string, string>;
  psql(sql: string, database?: string): string;
  stop(): void;
  start(): void;
  destroy(): void;
}

/** A private cluster on 127.0.0.1 with scram authentication; `settings` become `-c` options. */
export async function startPostgres(settings: Record<string, string> = {}): Promise<Postgres> {
  const dir = mkdtempSync(join(tmpdir(), "webstack-pg-"));
  const data = join(dir, "data");
  const pwfile = join(dir, "pw");
  writeFileSync(pwfile, PG_PASSWORD);
  if (isRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  chmodSync(dir, 0o700);
  asOwner(`${PG_BIN}/initdb`, [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=scram-sha-256",
    `--pwfile=${pwfile}`,
    "-E",
    "UTF8",
  ]);
  const port = await freePort();
  const options = {
    listen_addresses: "127.0.0.1",
    unix_socket_directories: dir,
    max_connections: "50",
    ...settings,
  };
  const opts = Object.entries(options)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(" ");
  const pgctl = (action: string) =>
    asOwner(`${PG_BIN}/pg_ctl`, ["-D", data, "-l", join(dir, "log"), "-w", "-o", `-p ${port} ${opts}`, action]);
  pgctl("start");
  const env = {
    PGHOST: "127.0.0.1",
    PGPORT: String(port),
    PGUSER: "postgres",
    PGPASSWORD: PG_PASSWORD,
  };
  const pg: Postgres = {
    port,
    dir,
    env,
    psql(sql, database = "postgres") {
      return execFileSync("psql", ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], {
        encoding: "utf8",
        env: { ...process.env, ...env },
      }).trim();
    },
    stop: () => pgctl("stop"),
    start: () => pgctl("start"),
    destroy() {
      try {
        asOwner(`${PG_BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "stop"]);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return pg;
}

export interface S3 {
  endpoint: string;
  dir: string;
  close(): Promise<void>;
}

/** tests/backup/s3-server.ts in a process of its own, with the given buckets under a temp dir. */
export async function startS3(buckets: string[] = ["backups", "uploads"], address = "127.0.0.1"): Promise<S3> {
  const dir = mkdtempSync(join(tmpdir(), "webstack-s3-"));
  const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "s3-server.ts"), dir, ...buckets], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, S3_ADDRESS: address },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n")[0];
      if (out.includes("\n")) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.on("exit", (code) => reject(new Error(`s3-server exited with ${code}`)));
  });
  return {
    endpoint: `http://${address}:${port}`,
    dir,
    async close() {
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Where s3rver keeps an object's bytes on disk (to corrupt it behind the server's back). */
export function s3ObjectPath(s3: S3, bucket: string, key: string): string {
  const path = join(s3.dir, bucket, `${key}._S3rver_object`);
  if (!existsSync(path)) throw new Error(`no stored object at ${path}`);
  return path;
}

export interface Ping {
  path: string;
  body: string;
}

/** An HTTP listener that records every request as a ping. */
export async function startPingListener(): Promise<{ url: string; pings: Ping[]; close(): Promise<void> }> {
  const pings: Ping[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      pings.push({ path: req.url ?? "", body });
      res.end("OK");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/ping/test-uuid`,
    pings,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface AgeKey {
  identityFile: string;
  recipient: string;
  identity: string;
}

/** A fresh age key pair; the identity file is 0600 under `dir`. */
export function ageKey(dir: string, name: string): AgeKey {
  mkdirSync(dir, { recursive: true });
  const identityFile = join(dir, `${name}.key`);
  execFileSync("age-keygen", ["-o", identityFile], { stdio: "ignore" });
  chmodSync(identityFile, 0o600);
  const recipient = execFileSync("age-keygen", ["-y", identityFile], { encoding: "utf8" }).trim();
  const identity = execFileSync("cat", [identityFile], { encoding: "utf8" });
  return { identityFile, recipient, identity };
}

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run one of backup/*.sh with exactly the given environment (plus PATH and HOME). */
export function runScript(
  script: "backup.sh" | "restore.sh" | "drill.sh",
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn("bash", [join(SCRIPTS_DIR, script), ...args], {
      env: {
        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        HOME: process.env.HOME ?? "/root",
        ...env,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => {
      stdout += d;
    });
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin?.end(stdin ?? "");
  });
}

/** The environment backup.sh, restore.sh and drill.sh need to reach the test S3 server. */
export function bucketEnv(s3: S3, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    BACKUP_S3_ENDPOINT: s3.endpoint,
    BACKUP_S3_BUCKET: "backups",
    BACKUP_S3_ACCESS_KEY_ID: S3_ACCESS_KEY,
    BACKUP_S3_SECRET_ACCESS_KEY: S3_SECRET_KEY,
    BACKUP_S3_PROVIDER: "Other",
    BACKUP_S3_REGION: "us-east-1",
    BACKUP_RCLONE_RETRIES: "1",
    ...overrides,
  };
}

/** rclone, with the same remote the scripts use, for reading the bucket from a test. */
export function rclone(s3: S3, args: string[]): string {
  return execFileSync("rclone", args, {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RCLONE_CONFIG_T_TYPE: "s3",
      RCLONE_CONFIG_T_PROVIDER: "Other",
      RCLONE_CONFIG_T_ENDPOINT: s3.endpoint,
      RCLONE_CONFIG_T_ACCESS_KEY_ID: S3_ACCESS_KEY,
      RCLONE_CONFIG_T_SECRET_ACCESS_KEY: S3_SECRET_KEY,
      RCLONE_CONFIG_T_NO_CHECK_BUCKET: "true",
    },
  });
}

/** A kept process (pgbench) with a way to wait for it. */
export function startProcess(cmd: string, args: string[], env: Record<string, string>) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => {
    output += d;
  });
  child.stderr.on("data", (d) => {
    output += d;
  });
  const done = new Promise<{ code: number; output: string }>((resolve) =>
    child.on("close", (code) => resolve({ code: code ?? -1, output })),
  );
  return { child, done };
}
