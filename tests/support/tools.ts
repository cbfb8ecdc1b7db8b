/**
 * The real tools the validator suites run. They are installed by scripts/install-test-tools.sh
 * (the README's test command runs it); a missing tool fails the suite with that hint rather than
 * skipping it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

export const CACHE = process.env.WEBSTACK_CACHE ?? "/var/cache/webstack";
const HINT = "run `bash scripts/install-test-tools.sh` (the README's test command does)";

export interface ToolResult {
  status: number;
  output: string;
}

/** Debian 13's `cloud-init schema` (25.x) on a user-data text, inside the cached trixie chroot. */
export function cloudInitSchema(userData: string): ToolResult {
  const root = join(CACHE, "cloud-init-trixie");
  const probe = spawnSync("chroot", [root, "cloud-init", "--version"], { encoding: "utf8" });
  if (probe.status !== 0) throw new Error(`no trixie cloud-init chroot at ${root}: ${HINT}`);
  const dir = mkdtempSync(join(root, "tmp", "schema-"));
  try {
    writeFileSync(join(dir, "user-data"), userData);
    const inside = `/tmp/${basename(dir)}/user-data`;
    const r = spawnSync("chroot", [root, "cloud-init", "schema", "--config-file", inside, "--annotate"], {
      encoding: "utf8",
    });
    return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function cloudInitVersion(): string {
  return execFileSync("chroot", [join(CACHE, "cloud-init-trixie"), "cloud-init", "--version"], {
    encoding: "utf8",
  }).trim();
}

/** shellcheck on a script's text (its shebang picks the dialect). */
export function shellcheck(name: string, script: string): ToolResult {
  if (spawnSync("shellcheck", ["--version"]).status !== 0) throw new Error(`shellcheck is missing: ${HINT}`);
  const dir = mkdtempSync(join(tmpdir(), "shellcheck-"));
  try {
    const file = join(dir, basename(name));
    writeFileSync(file, script);
    const r = spawnSync("shellcheck", ["--severity=style", "--format=gcc", file], { encoding: "utf8" });
    return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}`.replaceAll(file, name) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
