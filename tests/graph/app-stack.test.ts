/**
 * The AppStack in the resource graph of the prod stack, evaluated under Pulumi mocks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { writeFileCommand } from "../../components/ship-file";
import { renderStackFiles } from "../../compose/stack-files";
import { resolveConfig } from "../../config/resolve";
import {
  type ProgramRun,
  type RecordedResource,
  readStackFile,
  runProgram,
  standInTunnelToken,
} from "../../scripts/mock-engine";
import { artifactsOf, shippedFiles } from "../../scripts/plan";
import { stackFileValues } from "../support/stack-configs";

let run: ProgramRun;
const commands = () =>
  run.resources.filter((r) => r.type === "command:remote:Command" && r.parent?.startsWith("vps:app:AppStack::"));
/** The tunnel token the Edge component hands over (the mock's stand-in for the tunnel). */
const tunnelToken = () => {
  const tunnel = run.resources.find(
    (r) => r.type === "cloudflare:index/zeroTrustTunnelCloudflared:ZeroTrustTunnelCloudflared",
  );
  if (!tunnel?.id) throw new Error("no tunnel in the graph");
  return standInTunnelToken(tunnel.id);
};
/** The files the AppStack reports shipping (its `shipped` output), with their commands. */
const shipped = () => shippedFiles(run).filter((f) => f.component.startsWith("vps:app:AppStack::"));
const byName = (suffix: string): RecordedResource => {
  const found = run.resources.find((r) => r.name.endsWith(suffix));
  if (!found) throw new Error(`no resource named *${suffix}`);
  return found;
};

beforeAll(async () => {
  run = await runProgram("prod", readStackFile("prod"));
});

describe("AppStack in the prod graph", () => {
  it("is a vps:app:AppStack whose commands are its children", () => {
    const stack = run.resources.find((r) => r.type === "vps:app:AppStack");
    expect(stack?.name).toBe("shop-prod-app");
    const appCommands = run.resources.filter(
      (r) => r.type === "command:remote:Command" && r.name.startsWith("shop-prod-app-"),
    );
    expect(appCommands.length).toBeGreaterThan(0);
    for (const c of appCommands) expect(c.parent).toBe("vps:app:AppStack::shop-prod-app");
  });

  it("connects as the deploy user with the program's deploy key, kept secret", () => {
    for (const c of commands()) {
      expect(c.secretInputs).toContain("connection");
      const connection = c.rawInputs.connection as { user: string; host: string; privateKey: string };
      expect(connection.user).toBe("deploy");
      expect(connection.host).toBe("203.0.113.10");
      expect(connection.privateKey).toBe("stand-in private key of shop-prod-deploy-key");
    }
  });

  it("holds no plaintext secret in any command's inputs", () => {
    const secrets = [
      "stand-in-password-shop-prod-app-postgres-password",
      "stand-in-password-shop-prod-app-redis-password",
      tunnelToken(),
      "stand-in-secret-for-secrets-JWT-SECRET",
    ];
    for (const c of commands()) {
      const { connection, ...rest } = c.inputs;
      void connection;
      const text = JSON.stringify(rest);
      for (const s of secrets) expect(text, c.name).not.toContain(s);
    }
  });

  it("sends the .env with every secret through stdin, as a secret", () => {
    const ship = byName("-ship-env");
    expect(ship.secretInputs).toContain("stdin");
    const env = ship.rawInputs.stdin as string;
    expect(env).toContain("POSTGRES_PASSWORD='stand-in-password-shop-prod-app-postgres-password'");
    expect(env).toContain("REDIS_PASSWORD='stand-in-password-shop-prod-app-redis-password'");
    expect(env).toContain(`TUNNEL_TOKEN='${tunnelToken()}'`);
    expect(env).toContain("JWT_SECRET='stand-in-secret-for-secrets-JWT-SECRET'");
    expect(ship.rawInputs.create).toMatch(/umask 077/);
    expect(ship.rawInputs.create).not.toMatch(/PASSWORD|TOKEN/);
  });

  it("waits for the server and the volume attachment before anything is shipped", () => {
    const ready = byName("-app-server-ready");
    expect(ready.options.dependsOn).toEqual(
      expect.arrayContaining([
        "hcloud:index/server:Server::shop-prod-server",
        "hcloud:index/volumeAttachment:VolumeAttachment::shop-prod-volume-attachment",
      ]),
    );
    for (const { command: c } of shipped()) {
      expect(c.options.dependsOn).toContain("command:remote:Command::shop-prod-app-server-ready");
    }
    expect(ready.inputs.create).toContain("sudo -n install -d -o deploy -g deploy -m 0750 '/srv/data/app'");
  });

  it("deploys after every file is shipped, with no delete command that could stop the stack", () => {
    const deploy = byName("-app-deploy");
    for (const { command: c } of shipped()) {
      expect(deploy.options.dependsOn).toContain(`command:remote:Command::${c.name}`);
    }
    expect(deploy.inputs.delete).toBeUndefined();
    expect(deploy.inputs.create).toMatch(
      /^WAIT_TIMEOUT=300 DATA_DIR=\/srv\/data POSTGRES_IMAGE=imresamu\/postgis:17-3\.5 POSTGRES_MAJOR=17 MAJOR_UPGRADE_DIR=\/var\/lib\/webstack-backup\/major-upgrade PRE_MIGRATION_DIR=\/var\/lib\/webstack-backup\/pre-migration bash '\/srv\/data\/app\/releases\/[0-9a-f]{16}\/scripts\/deploy\.sh' '\/srv\/data\/app'/,
    );
  });

  it("waits as long as deployWaitSeconds says for the stack to be healthy", async () => {
    const prod = readStackFile("prod");
    const slow = await runProgram("prod", {
      ...prod,
      values: { ...prod.values, "webstack:deployWaitSeconds": "900" },
    });
    const deploy = slow.resources.find((r) => r.name.endsWith("-app-deploy"));
    expect(deploy?.inputs.create).toMatch(/^WAIT_TIMEOUT=900 /);
  });

  it("triggers the deploy on the content hash of what it ships, the server and a secret hash of the .env", () => {
    const deploy = byName("-app-deploy");
    const hash = renderStackFiles(resolveConfig("prod", stackFileValues("prod")), "/srv/data").contentHash;
    const triggers = deploy.rawInputs.triggers as string[];
    expect(triggers[0]).toBe(hash);
    const server = run.resources.find((r) => r.type === "hcloud:index/server:Server");
    expect(triggers[2]).toBe(server?.id);
    expect(deploy.secretInputs).toContain("triggers");
    expect(run.outputs.appReleaseHash).toBe(hash);
  });

  it("keeps the content hash when nothing it ships changes, and changes it when a service does", () => {
    const prod = stackFileValues("prod");
    const hash = (values: Record<string, unknown>) =>
      renderStackFiles(resolveConfig("prod", values), "/srv/data").contentHash;
    expect(hash({ ...prod, volumeSizeGb: 80, labels: ["team=other"] })).toBe(hash(prod));
    const services = prod.services as Record<string, unknown>[];
    const bumped = [{ ...services[0], image: "ghcr.io/example/shop-api:1.4.3" }, ...services.slice(1)];
    expect(hash({ ...prod, services: bumped })).not.toBe(hash(prod));
  });

  it("reports each file it ships with the command that writes that path with that mode", () => {
    const files = shipped();
    expect(files.map((f) => f.path.replace(/^.*\/releases\/[0-9a-f]{16}\//, "")).sort()).toEqual([
      ".env",
      ".registries",
      "Caddyfile",
      "compose.yaml",
      "scripts/deploy.sh",
      "scripts/postgres-roles.sql",
    ]);
    for (const f of files) expect(f.command.inputs.create, f.path).toBe(writeFileCommand(f.path, f.mode, "deploy"));
    expect(files.find((f) => f.path.endsWith("/.env"))).toMatchObject({ mode: "0600", text: undefined });
    expect(files.find((f) => f.path.endsWith("/.registries"))).toMatchObject({ mode: "0600", text: undefined });
    expect(files.find((f) => f.path.endsWith("/deploy.sh"))?.mode).toBe("0755");
    expect(files.find((f) => f.path.endsWith("/postgres-roles.sql"))?.mode).toBe("0644");
  });

  it("reports every command that sends a file on stdin as a shipped file", () => {
    const reported = new Set(shipped().map((f) => f.command.name));
    const withStdin = commands().filter((c) => c.rawInputs.stdin !== undefined);
    expect(withStdin.map((c) => c.name).filter((n) => !reported.has(n))).toEqual([]);
  });

  it("gives the plan compose.yaml, the Caddyfile and the deploy scripts, but never the .env", () => {
    const files = artifactsOf(run);
    const appFiles = Object.keys(files).filter((f) => !/^(backup|alerts|host)\//.test(f));
    expect(appFiles.sort()).toEqual([
      "Caddyfile",
      "cloud-init.yaml",
      "compose.yaml",
      "scripts/deploy.sh",
      "scripts/postgres-roles.sql",
    ]);
    expect(Object.keys(files).some((f) => f.endsWith(".env"))).toBe(false);
  });

  it("generates the Postgres and Redis passwords without URL-special characters", () => {
    for (const what of ["postgres", "redis"]) {
      const password = byName(`-app-${what}-password`);
      expect(password.inputs).toMatchObject({ length: 40, special: false });
    }
  });
});
