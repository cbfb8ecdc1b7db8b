/**
 * Runs the real program (`index.ts`) under Pulumi runtime mocks: no CLI, no credentials, no
 * network. Used by the offline plan (`npm run plan`) and by the resource-graph tests.
 *
 * The mocks stand in for the providers: every resource gets a stable stand-in id (numeric, as
 * hcloud's are) and the outputs the program reads (IPs, the volume's device path, the deploy key,
 * generated secrets), and provider functions answer with stand-ins (zone, tunnel token).
 * The mock monitor is wrapped so each registration is recorded with its parent and options
 * (protect, ignoreChanges, dependsOn), and each component's registered outputs with it, which
 * `setMocks` alone does not expose.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { APP_SECRET_NAMESPACE, PROJECT } from "../config/namespaces";
import { isGenericStandIn, secretStandIn, urlSecretStandIn } from "../config/stand-ins";

// Internal SDK modules: the mock monitor and the settings that hold it. Typed by hand below.
// biome-ignore lint/suspicious/noExplicitAny: untyped internals of @pulumi/pulumi
const settings: any = require("@pulumi/pulumi/runtime/settings");

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

export const SECRET_MASK = "[secret]";
export const PROJECT_ROOT = join(__dirname, "..");

/** A stand-in ED25519 public key for the program's deploy key (a fixed value keeps plans stable). */
export const STAND_IN_DEPLOY_PUBLIC_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKm1gnGkYlq7U3WBuF1dOmqHdaJDlhJyTrDeyFk1s2Ck";

export interface RecordedResource {
  type: string;
  name: string;
  /** `type::name` of the parent, or undefined for the stack's direct children. */
  parent?: string;
  urn: string;
  /** The stand-in id the mock provider gave it (custom resources only). */
  id?: string;
  custom: boolean;
  /** Inputs with every secret value replaced by "[secret]". */
  inputs: Record<string, unknown>;
  /** Inputs exactly as the engine received them (secret values in the clear): tests only. */
  rawInputs: Record<string, unknown>;
  /** Paths (top-level keys) of inputs that hold a secret. */
  secretInputs: string[];
  /**
   * What a component registered as its outputs (`registerOutputs`), secrets masked; undefined for
   * custom resources and for components that registered none.
   */
  registeredOutputs?: Record<string, unknown>;
  options: {
    protect: boolean;
    ignoreChanges: string[];
    dependsOn: string[];
    deleteBeforeReplace: boolean;
    retainOnDelete: boolean;
    additionalSecretOutputs: string[];
  };
}

export interface ProgramRun {
  stack: string;
  resources: RecordedResource[];
  /** Stack outputs, resolved, with secret ones replaced by "[secret]". */
  outputs: Record<string, unknown>;
  /** Names of the stack outputs that are secret. */
  secretOutputs: string[];
  /** The module exports of index.ts, as Outputs. */
  exports: Record<string, unknown>;
}

/** The program threw (a bad config, say); `resources` is what had been registered by then. */
export class ProgramFailed extends Error {
  constructor(
    readonly cause: unknown,
    readonly resources: RecordedResource[],
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = "ProgramFailed";
  }
}

/** Config as the Pulumi CLI hands it to the program: `project:key` → string, plus the secret keys. */
export interface EngineConfig {
  values: Record<string, string>;
  secretKeys: string[];
}

/**
 * Read `Pulumi.<stack>.yaml` as the CLI would: scalars as strings, lists and maps as JSON, and
 * `secure:` values (which only the CLI can decrypt) replaced by a stand-in marked secret.
 */
export function readStackFile(stack: string, root = PROJECT_ROOT): EngineConfig {
  const path = join(root, `Pulumi.${stack}.yaml`);
  if (!existsSync(path)) throw new Error(`no stack file ${path}; stacks here: prod, staging`);
  return readConfigFile(path);
}

/** Read a stack-config file (`config:` map, as in Pulumi.<stack>.yaml) from any path. */
export function readConfigFile(path: string): EngineConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new Error(`cannot read stack config file ${path}`);
  }
  return engineConfig(stackConfigOf(text, path));
}

const STACK_FILE_SHAPE =
  "a stack config file is a YAML mapping with a config: mapping of keys, e.g. config: {webstack:tier: small}";

/** The `config:` map of a stack file's text; a file that is not one is named as such. */
function stackConfigOf(text: string, path: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    const where = (err as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new Error(`${path} is not valid YAML${where ? ` (line ${where})` : ""}; ${STACK_FILE_SHAPE}`);
  }
  const isMapping = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isMapping(doc))
    throw new Error(`${path} is not a stack config file: it is not a YAML mapping; ${STACK_FILE_SHAPE}`);
  // The project file has a config: block too (the keys' declarations), beside its name and runtime.
  if ("name" in doc && "runtime" in doc) {
    throw new Error(
      `${path} is not a stack config file: it is a Pulumi project file (it has name: and runtime:); plan a stack file such as Pulumi.prod.yaml`,
    );
  }
  if (!("config" in doc)) {
    const keys = Object.keys(doc).slice(0, 5).join(", ");
    throw new Error(
      `${path} is not a stack config file: it has no config: key (its keys: ${keys}); ${STACK_FILE_SHAPE}`,
    );
  }
  if (doc.config === null) return {};
  if (!isMapping(doc.config)) throw new Error(`${path}: config: must be a mapping of keys; ${STACK_FILE_SHAPE}`);
  return doc.config;
}

/**
 * Add a stand-in, marked secret, for every app secret (`secrets:<NAME>`) the services or the
 * registries name but the config lacks: a user's real stack file holds them encrypted, which only
 * the CLI can read.
 */
export function withStandInAppSecrets(config: EngineConfig): EngineConfig {
  const listed = (key: string): unknown[] => {
    try {
      const value: unknown = JSON.parse(config.values[`${PROJECT}:${key}`] ?? "[]");
      return Array.isArray(value) ? value : [];
    } catch {
      return [];
    }
  };
  const names = [
    ...listed("services").flatMap((s) => {
      const secrets = (s as { secrets?: unknown } | null)?.secrets;
      return Array.isArray(secrets) ? secrets : [];
    }),
    ...listed("registries").map((r) => (r as { passwordSecret?: unknown } | null)?.passwordSecret),
  ].filter((name) => name !== undefined);
  const values = { ...config.values };
  const secretKeys = [...config.secretKeys];
  for (const name of names) {
    const key = `${APP_SECRET_NAMESPACE}:${String(name)}`;
    if (key in values) continue;
    values[key] = secretStandIn(key);
    secretKeys.push(key);
  }
  // The alerts channel's URL: a stand-in shaped like a URL, as the config check wants one.
  let alerts: unknown;
  try {
    alerts = JSON.parse(config.values[`${PROJECT}:alerts`] ?? "null");
  } catch {
    alerts = null;
  }
  const urlSecret = (alerts as { urlSecret?: unknown } | null)?.urlSecret;
  if (typeof urlSecret === "string") {
    const key = `${APP_SECRET_NAMESPACE}:${urlSecret}`;
    if (!(key in values) || isGenericStandIn(key, values[key])) {
      values[key] = urlSecretStandIn(key);
      if (!secretKeys.includes(key)) secretKeys.push(key);
    }
  }
  return { values, secretKeys };
}

/**
 * Turn a stack file's `config:` map into what the engine passes to the program (app secrets the
 * file cannot hold get stand-ins, see withStandInAppSecrets).
 */
export function engineConfig(config: Record<string, unknown>): EngineConfig {
  const values: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    const full = key.includes(":") ? key : `${PROJECT}:${key}`;
    if (isSecure(value)) {
      values[full] = secretStandIn(full);
      secretKeys.push(full);
    } else {
      values[full] = typeof value === "string" ? value : JSON.stringify(value);
    }
  }
  return withStandInAppSecrets({ values, secretKeys });
}

function isSecure(value: unknown): boolean {
  return typeof value === "object" && value !== null && Object.keys(value).length === 1 && "secure" in value;
}

/** The stand-in outputs each resource type gets beyond its inputs. */
function standInOutputs(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  id: string,
  generation: number,
): Record<string, unknown> {
  // A resource made again (a replaced password, a rebuilt server) gets new values.
  const again = generation > 0 ? `-g${generation}` : "";
  switch (type) {
    case "hcloud:index/primaryIp:PrimaryIp":
      return { ipAddress: inputs.type === "ipv6" ? "2001:db8:10::/64" : "203.0.113.10" };
    case "hcloud:index/server:Server":
      return {
        ipv4Address: "203.0.113.10",
        ipv6Address: "2001:db8:10::1",
        ipv6Network: "2001:db8:10::/64",
        status: "running",
      };
    case "hcloud:index/volume:Volume":
      return { linuxDevice: `/dev/disk/by-id/scsi-0HC_Volume_${id}` };
    case "tls:index/privateKey:PrivateKey":
      return {
        publicKeyOpenssh: `${STAND_IN_DEPLOY_PUBLIC_KEY}\n`,
        privateKeyOpenssh: pulumi.secret(`stand-in private key of ${name}`),
        privateKeyPem: pulumi.secret(`stand-in private key of ${name}`),
      };
    case "random:index/randomPassword:RandomPassword":
      return { result: pulumi.secret(`stand-in-password-${name}${again}`) };
    case "random:index/randomBytes:RandomBytes":
      return {
        base64: pulumi.secret(Buffer.from(standInHex(name, 32), "hex").toString("base64")),
        hex: pulumi.secret(standInHex(name, 32)),
      };
    case "cloudflare:index/accountToken:AccountToken":
      return { value: pulumi.secret(`stand-in-api-token-${name}`), status: "active" };
    case "cloudflare:index/zeroTrustAccessServiceToken:ZeroTrustAccessServiceToken":
      // Cloudflare's shapes: a 32-hex Client ID with ".access", a 64-hex Client Secret.
      return {
        clientId: `${standInHex(`client id ${name}${again}`, 16)}.access`,
        clientSecret: pulumi.secret(standInHex(`client secret ${name}${again}`, 32)),
      };
    default:
      return {};
  }
}

/** A stand-in Hetzner id: a number from 1000 to 99999, the same for the same name. */
function standInNumber(name: string): number {
  return 1000 + (Number.parseInt(standInHex(`id ${name}`, 4), 16) % 99_000);
}

/** A stand-in hex string of `bytes` bytes, derived from a seed (stable across runs). */
export function standInHex(seed: string, bytes: number): string {
  let out = "";
  for (let i = 0; out.length < bytes * 2; i++) out += createHash("sha256").update(`${seed}#${i}`).digest("hex");
  return out.slice(0, bytes * 2);
}

/** The stand-in tunnel token for a tunnel id (what cloudflared would get); secret. */
export function standInTunnelToken(tunnelId: string): string {
  return `stand-in-tunnel-token-${tunnelId}`;
}

/** The stand-in R2 permission groups the account lists (ids stable across runs). */
export const STAND_IN_PERMISSION_GROUPS = [
  "Workers R2 Storage Bucket Item Read",
  "Workers R2 Storage Bucket Item Write",
  "Workers R2 Storage Read",
  "Workers R2 Storage Write",
].map((name) => ({ id: standInHex(name, 16), name, scopes: ["com.cloudflare.edge.r2.bucket"] }));

/** What getIpRanges answers under mocks: the proxy ranges Cloudflare publishes (https://www.cloudflare.com/ips/), in its order. */
export const CLOUDFLARE_IP_RANGES = {
  ipv4Cidrs: [
    "173.245.48.0/20",
    "103.21.244.0/22",
    "103.22.200.0/22",
    "103.31.4.0/22",
    "141.101.64.0/18",
    "108.162.192.0/18",
    "190.93.240.0/20",
    "188.114.96.0/20",
    "197.234.240.0/22",
    "198.41.128.0/17",
    "162.158.0.0/15",
    "104.16.0.0/13",
    "104.24.0.0/14",
    "172.64.0.0/13",
    "131.0.72.0/22",
  ],
  ipv6Cidrs: [
    "2400:cb00::/32",
    "2606:4700::/32",
    "2803:f800::/32",
    "2405:b500::/32",
    "2405:8100::/32",
    "2a06:98c0::/29",
    "2c0f:f248::/32",
  ],
};

/**
 * What the provider functions (invokes) return: by default their inputs echoed; the zone lookup,
 * the tunnel token and the permission groups get stand-in results the program reads.
 */
function standInCall(token: string, inputs: Record<string, unknown>): Record<string, unknown> {
  switch (token) {
    case "cloudflare:index/getZone:getZone": {
      const name = String((inputs.filter as { name?: unknown } | undefined)?.name ?? "");
      const zoneId = standInHex(`zone ${name}`, 16);
      return { ...inputs, id: zoneId, zoneId, name, status: "active" };
    }
    case "cloudflare:index/getZeroTrustTunnelCloudflaredToken:getZeroTrustTunnelCloudflaredToken":
      return { ...inputs, token: pulumi.secret(standInTunnelToken(String(inputs.tunnelId))) };
    case "cloudflare:index/getIpRanges:getIpRanges":
      return { ...inputs, ...CLOUDFLARE_IP_RANGES };
    case "cloudflare:index/getAccountApiTokenPermissionGroupsList:getAccountApiTokenPermissionGroupsList":
      return { ...inputs, results: STAND_IN_PERMISSION_GROUPS };
    default:
      return inputs;
  }
}

/** Replace secret wrappers by the mask and resource references by their URN. */
export function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return SECRET_MASK;
    if (obj[SIG_KEY] === RESOURCE_SIG) return obj.urn;
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, maskSecrets(v)]));
  }
  return value;
}

/** Unwrap secret wrappers, keeping their plaintext (what a test must prove never leaks). */
export function revealSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealSecrets);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return revealSecrets(obj.value);
    if (obj[SIG_KEY] === RESOURCE_SIG) return obj.urn;
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, revealSecrets(v)]));
  }
  return value;
}

function containsSecret(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(containsSecret);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return true;
    return Object.values(obj).some(containsSecret);
  }
  return false;
}

/** `type::name` from a URN `urn:pulumi:stack::project::parentType$type::name`. */
function urnToRef(urn: string): string {
  const parts = urn.split("::");
  const types = parts[2].split("$");
  return `${types[types.length - 1]}::${parts.slice(3).join("::")}`;
}

/** Resolve an Output (or plain value) to its value; secrets stay wrapped for `isSecret` checks. */
export function settle<T>(value: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => {
    pulumi.output(value).apply((v) => {
      resolve(v as T);
      return v;
    });
  });
}

/**
 * Evaluate `index.ts` for one stack with the given engine config. Call once per process: the
 * Pulumi runtime is global state (vitest runs each test file in its own process).
 */
let runs = 0;

export interface RunOptions {
  /**
   * Resources made again since the first deploy, by name, and how many times: they get new ids
   * and new generated values, as after `pulumi up --replace` or a server rebuilt after a refresh.
   */
  generations?: Readonly<Record<string, number>>;
}

export async function runProgram(stack: string, config: EngineConfig, options: RunOptions = {}): Promise<ProgramRun> {
  const resources: RecordedResource[] = [];
  const ids = new Map<string, string>();

  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const generation = options.generations?.[args.name] ?? 0;
        // Ids are stable across evaluations, as in the state: a resource's id changes only when
        // it is made again. Hetzner's are numbers.
        const id = args.type.startsWith("hcloud:")
          ? String(standInNumber(args.name) + 100_000 * generation)
          : `${args.name}-id${generation > 0 ? `-g${generation}` : ""}`;
        ids.set(`${args.type}::${args.name}`, id);
        return {
          id,
          state: { ...args.inputs, ...standInOutputs(args.type, args.name, args.inputs, id, generation) },
        };
      },
      call(args) {
        return standInCall(args.token, args.inputs as Record<string, unknown>);
      },
    },
    PROJECT,
    stack,
    false,
  );

  const monitor = settings.getMonitor();
  const register = monitor.registerResource.bind(monitor);
  // biome-ignore lint/suspicious/noExplicitAny: protobuf request object of the SDK's internal monitor
  monitor.registerResource = (req: any, callback: unknown) => {
    const type: string = req.getType();
    const name: string = req.getName();
    const parentUrn: string = req.getParent();
    const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
    if (type === "pulumi:pulumi:Stack") return register(req, callback);
    const parentRef = parentUrn && !parentUrn.includes("pulumi:pulumi:Stack") ? urnToRef(parentUrn) : undefined;
    resources.push({
      type,
      name,
      parent: parentRef,
      urn: `${parentUrn}::${type}::${name}`,
      custom: req.getCustom(),
      inputs: maskSecrets(raw) as Record<string, unknown>,
      rawInputs: revealSecrets(raw) as Record<string, unknown>,
      secretInputs: Object.entries(raw)
        .filter(([, v]) => containsSecret(v))
        .map(([k]) => k),
      options: {
        protect: Boolean(req.getProtect()),
        ignoreChanges: req.getIgnorechangesList(),
        dependsOn: (req.getDependenciesList() as string[]).map(urnToRef),
        deleteBeforeReplace: Boolean(req.getDeletebeforereplace()),
        retainOnDelete: Boolean(req.getRetainondelete()),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      },
    });
    return register(req, callback);
  };

  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  // biome-ignore lint/suspicious/noExplicitAny: protobuf request object of the SDK's internal monitor
  monitor.registerResourceOutputs = (req: any, callback: unknown) => {
    const ref = urnToRef(req.getUrn());
    const recorded = resources.find((r) => `${r.type}::${r.name}` === ref);
    const raw = (req.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>;
    if (recorded && Object.keys(raw).length > 0)
      recorded.registeredOutputs = maskSecrets(raw) as Record<string, unknown>;
    return registerOutputs(req, callback);
  };

  pulumi.runtime.setAllConfig(config.values, config.secretKeys);

  // The program itself, exactly as `pulumi up` loads it. Later runs in the same process import it
  // under a fresh URL so that it is evaluated again with the new config.
  runs += 1;
  const url = pathToFileURL(join(PROJECT_ROOT, "index.ts")).href;
  let exports: Record<string, unknown>;
  try {
    exports = (await import(runs === 1 ? url : `${url}?run=${runs}`)) as Record<string, unknown>;
  } catch (err) {
    // biome-ignore lint/suspicious/noExplicitAny: waitForRPCs is internal and untyped
    await (pulumi.runtime as any).waitForRPCs();
    throw new ProgramFailed(err, resources);
  }
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  for (const [key, value] of Object.entries(exports)) {
    const secret = pulumi.Output.isInstance(value) && (await pulumi.isSecret(value));
    if (secret) secretOutputs.push(key);
    outputs[key] = secret ? SECRET_MASK : await settle(value as pulumi.Input<unknown>);
  }
  // biome-ignore lint/suspicious/noExplicitAny: waitForRPCs is internal and untyped
  await (pulumi.runtime as any).waitForRPCs();
  for (const r of resources) r.id = ids.get(`${r.type}::${r.name}`);
  return { stack, resources, outputs, secretOutputs, exports };
}
