/**
 * R2 storage of one stack: an uploads bucket the app's browsers may reach (CORS for the app's
 * origins), and a protected backups bucket whose lifecycle rules implement the backup retention,
 * plus the S3 credentials the backup job uses.
 *
 * Cost: R2 bills stored GB-months ($0.015, first 10 GB free) and operations; egress is free.
 */
import { createHash } from "node:crypto";
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { BACKUP_RETENTION } from "../model/backups";

/** Where the backup job's R2 credentials come from, as the Storage component takes it. */
export type BackupCredentialsSource =
  | { mode: "token" }
  | { mode: "config"; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string> };

/** The backup credentials source of a resolved config; the secret key stays a Pulumi secret. */
export function backupCredentialsSource(config: {
  backupCredentials: "token" | "config";
  backupAccessKeyId?: string;
  backupSecretAccessKey?: string;
}): BackupCredentialsSource {
  if (config.backupCredentials === "token") return { mode: "token" };
  const { backupAccessKeyId, backupSecretAccessKey } = config;
  // The cross-checks require both keys in this mode; this guards callers that skip them.
  if (backupAccessKeyId === undefined || backupSecretAccessKey === undefined) {
    throw new Error('webstack:backupCredentials is "config" but backupAccessKeyId or backupSecretAccessKey is unset');
  }
  return { mode: "config", accessKeyId: backupAccessKeyId, secretAccessKey: pulumi.secret(backupSecretAccessKey) };
}

export interface StorageArgs {
  /**
   * Prefix of every resource and bucket name, `<app>-<stack>`: each stack gets its own buckets.
   * @example "shop-prod"
   */
  prefix: string;
  /** The Cloudflare account that owns the buckets (32 hex characters). */
  accountId: string;
  /**
   * Origins (`https://<hostname>`) whose pages may use the uploads bucket from the browser.
   * @example ["https://app.example.com"]
   */
  corsOrigins: readonly string[];
  /**
   * Location hint for new buckets.
   * @default "weur"
   */
  location: string;
  /**
   * Jurisdiction of the buckets: `default` or `eu`.
   * @default "default"
   */
  jurisdiction: "default" | "eu";
  /**
   * Where the backup job's credentials come from: an account API token the program creates
   * (`token`), or an R2 API token's keys from the stack config (`config`).
   * @default { mode: "token" }
   */
  backupCredentials: BackupCredentialsSource;
}

/** S3 credentials for R2. */
export interface S3Credentials {
  accessKeyId: pulumi.Output<string>;
  secretAccessKey: pulumi.Output<string>;
}

/** The R2 permission group that reads a bucket's objects: the restore token's only one. */
export const R2_READ_PERMISSION_GROUP = "Workers R2 Storage Bucket Item Read";
/** The R2 permission groups a bucket-scoped backup token holds: read (restore drills) and write. */
export const R2_OBJECT_PERMISSION_GROUPS = [R2_READ_PERMISSION_GROUP, "Workers R2 Storage Bucket Item Write"] as const;

const DAY_SECONDS = 86_400;

export class Storage extends pulumi.ComponentResource {
  readonly uploadsBucketName: pulumi.Output<string>;
  readonly backupsBucketName: pulumi.Output<string>;
  /** The S3 API endpoint of the account (and jurisdiction). */
  readonly s3Endpoint: string;
  /** Credentials allowed to read and write objects of the backups bucket. Both secret. */
  readonly backupCredentials: S3Credentials;
  /**
   * Credentials for restores, from a workstation or a new machine: read-only on the backups
   * bucket when the program makes the tokens; the configured keys otherwise. Both secret.
   */
  readonly restoreCredentials: S3Credentials;

  constructor(name: string, args: StorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vps:storage:Storage", name, {}, opts);
    const parent = { parent: this };
    const names = bucketNames(args.prefix);
    const common = { accountId: args.accountId, jurisdiction: args.jurisdiction };

    const uploads = createBucket("uploads", names.uploads);
    new cloudflare.R2BucketCors(
      `${name}-uploads-cors`,
      { ...common, bucketName: uploads.name, rules: uploadsCorsRules(args.corsOrigins) },
      parent,
    );
    new cloudflare.R2BucketLifecycle(
      `${name}-uploads-lifecycle`,
      { ...common, bucketName: uploads.name, rules: [abortIncompleteUploadsRule()] },
      parent,
    );

    const backups = createBucket("backups", names.backups);
    new cloudflare.R2BucketLifecycle(
      `${name}-backups-lifecycle`,
      { ...common, bucketName: backups.name, rules: backupLifecycleRules() },
      parent,
    );
    // No one, not the server's token nor the account's owner, deletes or overwrites a backup
    // before the lifecycle would: a compromised server cannot destroy the history.
    new cloudflare.R2BucketLock(
      `${name}-backups-lock`,
      { ...common, bucketName: backups.name, rules: backupLockRules() },
      parent,
    );

    this.uploadsBucketName = uploads.name;
    this.backupsBucketName = backups.name;
    this.s3Endpoint = r2Endpoint(args.accountId, args.jurisdiction);
    if (args.backupCredentials.mode === "token") {
      this.backupCredentials = createToken("backups", backups.name, R2_OBJECT_PERMISSION_GROUPS);
      this.restoreCredentials = createToken("backups-restore", backups.name, [R2_READ_PERMISSION_GROUP]);
    } else {
      this.backupCredentials = {
        accessKeyId: pulumi.secret(args.backupCredentials.accessKeyId),
        secretAccessKey: pulumi.secret(args.backupCredentials.secretAccessKey),
      };
      this.restoreCredentials = this.backupCredentials;
    }

    this.registerOutputs({
      uploadsBucketName: this.uploadsBucketName,
      backupsBucketName: this.backupsBucketName,
      s3Endpoint: this.s3Endpoint,
      backupAccessKeyId: this.backupCredentials.accessKeyId,
      backupSecretAccessKey: this.backupCredentials.secretAccessKey,
      restoreAccessKeyId: this.restoreCredentials.accessKeyId,
      restoreSecretAccessKey: this.restoreCredentials.secretAccessKey,
    });

    function createBucket(purpose: "uploads" | "backups", bucketName: string): cloudflare.R2Bucket {
      return new cloudflare.R2Bucket(
        `${name}-${purpose}`,
        { ...common, name: bucketName, location: args.location, storageClass: "Standard" },
        // Both buckets hold data nothing else holds (user files, the only off-site backups):
        // Pulumi refuses to delete them, also on `pulumi destroy`.
        { ...parent, protect: true },
      );
    }

    /** An account API token with these permission groups on one bucket, as S3 credentials. */
    function createToken(
      purpose: "backups" | "backups-restore",
      bucketName: pulumi.Output<string>,
      permissionGroups: readonly string[],
    ): S3Credentials {
      const groups = cloudflare
        .getAccountApiTokenPermissionGroupsListOutput({ accountId: args.accountId }, parent)
        .apply((list) => permissionGroupIds(list.results ?? [], permissionGroups));
      const token = new cloudflare.AccountToken(
        `${name}-${purpose}-token`,
        {
          accountId: args.accountId,
          name: `${args.prefix}-${purpose}`,
          policies: [
            {
              effect: "allow",
              permissionGroups: groups.apply((ids) => ids.map((id) => ({ id }))),
              resources: bucketName.apply((bucket) =>
                JSON.stringify({ [r2BucketResourceKey(args.accountId, args.jurisdiction, bucket)]: "*" }),
              ),
            },
          ],
        },
        parent,
      );
      const value = pulumi.secret(token.value);
      return {
        accessKeyId: pulumi.secret(token.id),
        secretAccessKey: pulumi.secret(value.apply(s3SecretFromTokenValue)),
      };
    }
  }
}

/** The bucket names of one stack; valid R2 names whenever the app name and stack name are valid. */
export function bucketNames(prefix: string): { uploads: string; backups: string } {
  return { uploads: `${prefix}-uploads`, backups: `${prefix}-backups` };
}

/** Why a name is not a valid R2 bucket name, or undefined when it is. */
export function r2BucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `is ${name.length} characters long; R2 allows 3 to 63`;
  if (!/^[a-z0-9-]+$/.test(name)) return "may hold only lowercase letters, digits and '-'";
  if (!/^[a-z0-9].*[a-z0-9]$/.test(name)) return "must begin and end with a letter or digit";
  return undefined;
}

/**
 * The backups bucket's lifecycle: each retention prefix expires after its days, and multipart
 * uploads an interrupted backup left behind are aborted after a day.
 */
export function backupLifecycleRules(): cloudflare.types.input.R2BucketLifecycleRule[] {
  return [
    ...BACKUP_RETENTION.map(({ prefix, keepDays }) => ({
      id: `expire-${prefix.replace(/\/$/, "")}-after-${keepDays}d`,
      enabled: true,
      conditions: { prefix },
      deleteObjectsTransition: { condition: { type: "Age", maxAge: keepDays * DAY_SECONDS } },
    })),
    abortIncompleteUploadsRule(),
  ];
}

/**
 * The backups bucket's lock: each retention prefix is locked for as long as it is kept, so an
 * object can be neither deleted nor overwritten before the lifecycle expires it. latest.json, at
 * the root, is not locked: each backup rewrites it.
 */
export function backupLockRules(): cloudflare.types.input.R2BucketLockRule[] {
  return BACKUP_RETENTION.map(({ prefix, keepDays }) => ({
    id: `lock-${prefix.replace(/\/$/, "")}-for-${keepDays}d`,
    enabled: true,
    prefix,
    condition: { type: "Age", maxAgeSeconds: keepDays * DAY_SECONDS },
  }));
}

function abortIncompleteUploadsRule(): cloudflare.types.input.R2BucketLifecycleRule {
  return {
    id: "abort-incomplete-multipart-uploads-after-1d",
    enabled: true,
    conditions: { prefix: "" },
    abortMultipartUploadsTransition: { condition: { type: "Age", maxAge: DAY_SECONDS } },
  };
}

/** CORS of the uploads bucket: the app's pages may read and upload (presigned PUT, multipart). */
export function uploadsCorsRules(origins: readonly string[]): cloudflare.types.input.R2BucketCorsRule[] {
  return [
    {
      id: "app-origins",
      allowed: { origins: [...origins], methods: ["GET", "HEAD", "PUT", "POST"], headers: ["*"] },
      // Browsers need ETag to complete multipart uploads.
      exposeHeaders: ["ETag"],
      maxAgeSeconds: 3600,
    },
  ];
}

/** The S3 endpoint of an account's R2 buckets in a jurisdiction. */
export function r2Endpoint(accountId: string, jurisdiction: "default" | "eu"): string {
  return jurisdiction === "eu"
    ? `https://${accountId}.eu.r2.cloudflarestorage.com`
    : `https://${accountId}.r2.cloudflarestorage.com`;
}

/** The resource key that scopes an API token policy to one R2 bucket. */
export function r2BucketResourceKey(accountId: string, jurisdiction: string, bucket: string): string {
  return `com.cloudflare.edge.r2.bucket.${accountId}_${jurisdiction}_${bucket}`;
}

/** R2's S3 secret access key of an API token: the SHA-256 (hex) of the token's value. */
export function s3SecretFromTokenValue(tokenValue: string): string {
  return createHash("sha256").update(tokenValue).digest("hex");
}

/** The ids of the named permission groups, or an error naming the missing ones. */
export function permissionGroupIds(
  groups: readonly { id: string; name: string }[],
  names: readonly string[] = R2_OBJECT_PERMISSION_GROUPS,
): string[] {
  const missing = names.filter((n) => !groups.some((g) => g.name === n));
  if (missing.length > 0) {
    throw new Error(
      `Cloudflare lists no permission group named ${missing.map((m) => `"${m}"`).join(", ")}; ` +
        'set webstack:backupCredentials to "config" and give an R2 API token\'s keys instead',
    );
  }
  return names.map((n) => groups.find((g) => g.name === n)!.id);
}
