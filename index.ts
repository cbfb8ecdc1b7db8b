/**
 * The program `pulumi up` runs: config → components → stack outputs. Nothing else lives here.
 */
import * as pulumi from "@pulumi/pulumi";
import { renderRestoreEnv } from "./backup/render";
import { Alerts } from "./components/alerts";
import { AppStack } from "./components/app-stack";
import { Backups } from "./components/backups";
import { cloudflareOriginRanges, Edge } from "./components/edge";
import { HostConfig } from "./components/host-config";
import { Server } from "./components/server";
import { backupCredentialsSource, Storage } from "./components/storage";
import { loadConfig } from "./config/load";
import { backedUpDirs } from "./model/backups";
import { appDir } from "./model/server";
import { CLOUDFLARED_SERVICE, POSTGRES_ADMIN_ROLE } from "./model/services";

const { config, appSecrets, registryPasswords, alertsUrl } = loadConfig();

const server = new Server(config.prefix, {
  prefix: config.prefix,
  tier: config.tier,
  location: config.location,
  image: config.image,
  adminSshKeys: config.adminSshKeys,
  sshAllowedCidrs: config.sshAllowedCidrs,
  sshThroughTunnel: config.sshThroughTunnel,
  volumeSizeGb: config.volumeSizeGb,
  hetznerBackups: config.hetznerBackups,
  exposure: config.exposure,
  publicWebPorts: config.publicWebPorts,
  webSourceIps: config.exposure === "direct" ? cloudflareOriginRanges() : undefined,
  autoRebootTime: config.autoRebootTime,
  labels: config.labels,
});

const edge = new Edge(config.prefix, {
  prefix: config.prefix,
  accountId: config.cloudflareAccountId,
  domain: config.domain,
  routes: config.routes,
  hostnames: config.hostnames,
  routesInMatchOrder: config.routesInMatchOrder,
  exposure: config.exposure,
  manageZoneSettings: config.manageZoneSettings,
  sshThroughTunnel: config.sshThroughTunnel,
  ipv4: server.ipv4,
});

const storage = new Storage(config.prefix, {
  prefix: config.prefix,
  accountId: config.cloudflareAccountId,
  corsOrigins: config.hostnames.map((h) => `https://${h}`),
  location: config.r2Location,
  jurisdiction: config.r2Jurisdiction,
  backupCredentials: backupCredentialsSource(config),
});

const appStack = new AppStack(`${config.prefix}-app`, {
  config,
  host: server.ipv4,
  privateKey: server.deployPrivateKey,
  tunnelToken: edge.tunnelToken,
  appSecrets,
  registryPasswords,
  server: server.server,
  volumeAttachment: server.volumeAttachment,
});

// The host files cloud-init wrote at first boot, kept in step on the running server.
new HostConfig(`${config.prefix}-host`, {
  connection: { host: server.ipv4, privateKey: server.deployPrivateKey },
  exposure: config.exposure,
  autoRebootTime: config.autoRebootTime,
  adminSshKeys: config.adminSshKeys,
  sshAllowedCidrs: config.sshAllowedCidrs,
  sshThroughTunnel: config.sshThroughTunnel,
  dataVolume: { device: server.volumeDevice, sizeGb: config.volumeSizeGb, resource: server.volume },
  swapMb: config.tier.swapMb,
  serverIdentity: appStack.serverIdentity,
  dependsOn: [appStack.serverReady],
});

// Alerts from the server (its failures, its health) and from outside it (the dead man's switch).
const alerts = new Alerts(`${config.prefix}-alerts`, {
  connection: { host: server.ipv4, privateKey: server.deployPrivateKey },
  alerts: config.alerts,
  url: alertsUrl,
  prefix: config.prefix,
  composeFile: `${appDir()}/compose.yaml`,
  tunnelService: config.exposure === "tunnel" ? CLOUDFLARED_SERVICE : undefined,
  accountId: config.cloudflareAccountId,
  backupsBucket: storage.backupsBucketName,
  jurisdiction: config.r2Jurisdiction,
  serverIdentity: appStack.serverIdentity,
  dependsOn: [appStack.serverReady],
});

const backups = new Backups(
  `${config.prefix}-backups`,
  {
    connection: { host: server.ipv4, privateKey: server.deployPrivateKey },
    bucket: storage.backupsBucketName,
    endpoint: storage.s3Endpoint,
    accessKeyId: storage.backupCredentials.accessKeyId,
    secretAccessKey: storage.backupCredentials.secretAccessKey,
    recipients: config.backupRecipients,
    schedule: config.backupSchedule,
    drill: config.backupDrill,
    drillSchedule: config.backupDrillSchedule,
    pingUrl: config.backupPingUrl === undefined ? undefined : pulumi.secret(config.backupPingUrl),
    uploadsDirs: backedUpDirs(config),
    database: config.postgres.database,
    // Over the container's socket as the administrator, who can read every object and whose
    // dumps restore the app role's ownership.
    databaseUser: POSTGRES_ADMIN_ROLE,
    postgresImage: config.postgres.image,
    serverIdentity: appStack.serverIdentity,
    // The timers dump the app stack's Postgres: install them once the stack is up.
    dependsOn: [server.server, server.volumeAttachment, appStack],
  },
  {},
);

export const ipv4 = server.ipv4;
export const ipv6 = server.ipv6;
export const sshCommand = server.sshCommand;
export const volumeMountPoint = server.volumeMountPoint;
export const tier = { name: config.tier.name, serverType: config.tier.serverType };
export const monthlyCostEstimate = config.monthlyCost;
/** For `pulumi stack output --show-secrets deployPrivateKey` when an operator must act as `deploy`. */
export const deployPrivateKey = pulumi.secret(server.deployPrivateKey);
export const routeUrls = edge.routeUrls;
/** The tunnel's UUID; absent in direct mode. */
export const tunnelId = edge.tunnelId;
/**
 * SSH through the tunnel (sshThroughTunnel): the name CI's `cloudflared access tcp` dials, and the
 * deploy service token it authenticates with (give both to the deploy workflow's environment:
 * docs/going-live.md). Absent otherwise.
 */
export const sshHostname = edge.ssh?.hostname;
export const deployServiceTokenId = edge.ssh?.clientId;
export const deployServiceTokenSecret = edge.ssh?.clientSecret;
export const uploadsBucket = storage.uploadsBucketName;
export const backupsBucket = storage.backupsBucketName;
export const s3Endpoint = storage.s3Endpoint;
export const appReleaseHash = appStack.contentHash;

/**
 * The environment file restore.sh needs on a workstation or a new machine, with read-only
 * credentials: `pulumi stack output restoreEnv --show-secrets > backup.env` (docs/restore.md).
 */
export const restoreEnv = pulumi.secret(
  pulumi
    .all([
      storage.backupsBucketName,
      storage.restoreCredentials.accessKeyId,
      storage.restoreCredentials.secretAccessKey,
    ])
    .apply(([bucket, accessKeyId, secretAccessKey]) =>
      renderRestoreEnv({
        endpoint: storage.s3Endpoint,
        bucket,
        accessKeyId,
        secretAccessKey,
        database: config.postgres.database,
      }),
    ),
);
/** The dead man's switch's Worker (absent without webstack:alerts). */
export const deadMansSwitchWorker = alerts.deadMansSwitch;
/** Public key of the restore drill's own age identity (generated on the server; not an operator key). */
export const backupDrillRecipient = backups.drillRecipient;
