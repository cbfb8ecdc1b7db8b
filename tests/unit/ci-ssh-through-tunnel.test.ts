/**
 * The deploy workflow's tunnel step (scripts/ci-ssh-through-tunnel.sh) reads the stack's outputs:
 * a stack that does not exist yet, or has the tunnel off, is left to SSH straight to the server;
 * outputs it cannot read fail the step with pulumi's words. A stand-in `pulumi` plays the CLI.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/mock-engine";

const SECRET = "stand-in-service-token-secret-0123456789";
const dir = mkdtempSync(join(tmpdir(), "webstack-ci-tunnel-"));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the step with a stand-in pulumi that answers as `pulumi` (a shell snippet) would. */
function step(pulumi: string) {
  const bin = mkdtempSync(join(dir, "bin-"));
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  tool("pulumi", pulumi);
  // sudo records what it would run and with which token; cloudflared is "installed".
  tool(
    "sudo",
    `printf '%s\\n' "$*" >"${bin}/sudo.args"; printf '%s' "$TUNNEL_SERVICE_TOKEN_SECRET" >"${bin}/sudo.secret"`,
  );
  tool("cloudflared", "exit 0");
  const result = spawnSync("bash", [join(PROJECT_ROOT, "scripts/ci-ssh-through-tunnel.sh"), "acme/prod"], {
    encoding: "utf8",
    env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir },
  });
  const read = (file: string) => {
    try {
      return readFileSync(join(bin, file), "utf8");
    } catch {
      return undefined;
    }
  };
  return { ...result, sudoArgs: read("sudo.args"), sudoSecret: read("sudo.secret") };
}

const OUTPUTS = JSON.stringify({
  ipv4: "203.0.113.10",
  sshHostname: "shop-prod-ssh.example.com",
  deployServiceTokenId: "id.access",
});
const answering = `case "$*" in
  *--json*) echo '${OUTPUTS}' ;;
  *--show-secrets*deployServiceTokenSecret*) echo '${SECRET}' ;;
  *) exit 9 ;;
esac`;

describe("the deploy workflow's tunnel step", () => {
  it("goes through the tunnel with the name, address and token of the stack's outputs", () => {
    const result = step(answering);
    expect(result.status, result.stderr).toBe(0);
    expect(result.sudoArgs).toMatch(/ssh-through-tunnel\.sh start shop-prod-ssh\.example\.com 203\.0\.113\.10$/m);
    expect(result.sudoArgs).toContain("--preserve-env=TUNNEL_SERVICE_TOKEN_ID,TUNNEL_SERVICE_TOKEN_SECRET");
    expect(result.sudoSecret).toBe(SECRET);
    // The secret appears once, in GitHub's mask command, and nowhere else.
    expect(`${result.stdout}${result.stderr}`.split(SECRET)).toHaveLength(2);
    expect(result.stdout).toContain(`::add-mask::${SECRET}`);
  });

  it("leaves a stack that does not exist yet to SSH straight to the server", () => {
    const result = step(`echo "error: no stack named 'acme/prod' found" >&2; exit 255`);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("acme/prod does not exist yet");
    expect(result.sudoArgs).toBeUndefined();
  });

  it("leaves a stack with the tunnel off to SSH straight to the server", () => {
    const result = step(`echo '{"ipv4": "203.0.113.10"}'`);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("has no sshHostname output (sshThroughTunnel is off)");
    expect(result.sudoArgs).toBeUndefined();
  });

  it("fails, with pulumi's words, when the outputs cannot be read", () => {
    const result = step(`echo "error: [401] Unauthorized: No credentials provided or are invalid." >&2; exit 255`);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("cannot read the outputs of acme/prod: error: [401] Unauthorized");
    expect(result.sudoArgs).toBeUndefined();
  });

  it("fails when the token's secret cannot be read", () => {
    const result = step(
      `case "$*" in *--json*) echo '${OUTPUTS}' ;; *) echo "error: decrypting: access denied" >&2; exit 255 ;; esac`,
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("cannot read the deployServiceTokenSecret output of acme/prod: error: decrypting");
  });
});
