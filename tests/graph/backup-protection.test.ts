/**
 * Backups the server cannot destroy, and a restore that needs nothing but the stack's outputs and
 * an operator's age key: the prod program under Pulumi mocks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { backupLifecycleRules, s3SecretFromTokenValue } from "../../components/storage";
import { BACKUP_RETENTION } from "../../model/backups";
import {
  engineConfig,
  type ProgramRun,
  readStackFile,
  revealSecrets,
  runProgram,
  settle,
  standInHex,
} from "../../scripts/mock-engine";
import { ofType, only, T } from "../support/graph";

/** The environment file's variables: `KEY="value"` lines, as backup/render.ts writes them. */
function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    [...text.matchAll(/^([A-Z0-9_]+)="((?:[^"\\]|\\.)*)"$/gm)].map((m) => [m[1], m[2].replace(/\\(.)/g, "$1")]),
  );
}

let run: ProgramRun;
let restoreEnv: Record<string, string>;
const DAY = 86_400;
const BACKUPS_TOKEN = "stand-in-api-token-shop-prod-backups-token";
const RESTORE_TOKEN = "stand-in-api-token-shop-prod-backups-restore-token";

beforeAll(async () => {
  require("tsx/cjs/api").register();
  run = await runProgram("prod", readStackFile("prod"));
  restoreEnv = parseEnv(String(revealSecrets(await settle(run.exports.restoreEnv as never))));
});

describe("the backups bucket", () => {
  it("locks every backup for as long as the lifecycle keeps it, so the server's token cannot delete it", () => {
    const lock = only(run.resources, T.r2BucketLock);
    expect(lock.inputs.bucketName).toBe("shop-prod-backups");
    const rules = lock.inputs.rules as {
      prefix: string;
      enabled: boolean;
      condition: { type: string; maxAgeSeconds: number };
    }[];
    expect(rules.map((r) => [r.prefix, r.condition.type, r.condition.maxAgeSeconds / DAY, r.enabled])).toEqual(
      BACKUP_RETENTION.map((r) => [r.prefix, "Age", r.keepDays, true]),
    );
    // At least as long as the lifecycle: a lock shorter than the expiry would let a compromised
    // server delete the older backups it can still reach.
    const expiries = backupLifecycleRules() as unknown as {
      id: string;
      conditions: { prefix: string };
      deleteObjectsTransition?: { condition: { maxAge: number } };
    }[];
    for (const rule of expiries) {
      if (!rule.deleteObjectsTransition) continue;
      const locked = rules.find((r) => r.prefix === rule.conditions.prefix);
      expect(locked?.condition.maxAgeSeconds, rule.id).toBeGreaterThanOrEqual(
        rule.deleteObjectsTransition.condition.maxAge,
      );
    }
  });

  it("leaves latest.json, which each backup rewrites, unlocked", () => {
    const rules = only(run.resources, T.r2BucketLock).inputs.rules as { prefix: string }[];
    for (const rule of rules) expect(rule.prefix, "a rule that would lock the bucket's root").not.toBe("");
  });
});

describe("the restore credentials", () => {
  it("are a second token that may only read the backups bucket", () => {
    const tokens = ofType(run.resources, T.accountToken);
    expect(tokens.map((t) => t.inputs.name).sort()).toEqual(["shop-prod-backups", "shop-prod-backups-restore"]);
    const restore = tokens.find((t) => t.inputs.name === "shop-prod-backups-restore")!;
    const [policy, ...more] = restore.inputs.policies as { resources: string; permissionGroups: { id: string }[] }[];
    expect(more).toEqual([]);
    expect(Object.keys(JSON.parse(policy.resources))).toEqual([
      `com.cloudflare.edge.r2.bucket.${readStackFile("prod").values["webstack:cloudflareAccountId"]}_default_shop-prod-backups`,
    ]);
    expect(policy.permissionGroups.map((g) => g.id)).toEqual([standInHex("Workers R2 Storage Bucket Item Read", 16)]);
  });

  it("are exported as one secret output, an environment file restore.sh reads on any machine", () => {
    expect(run.secretOutputs).toContain("restoreEnv");
    expect(restoreEnv).toEqual({
      BACKUP_S3_ENDPOINT: `https://${readStackFile("prod").values["webstack:cloudflareAccountId"]}.r2.cloudflarestorage.com`,
      BACKUP_S3_BUCKET: "shop-prod-backups",
      BACKUP_S3_ACCESS_KEY_ID: "shop-prod-backups-restore-token-id",
      BACKUP_S3_SECRET_ACCESS_KEY: s3SecretFromTokenValue(RESTORE_TOKEN),
      BACKUP_S3_PROVIDER: "Cloudflare",
      BACKUP_S3_REGION: "auto",
      PGDATABASE: "app",
    });
  });

  it("never hold the server's writing token", () => {
    expect(JSON.stringify(restoreEnv)).not.toContain(s3SecretFromTokenValue(BACKUPS_TOKEN));
    expect(JSON.stringify(restoreEnv)).not.toContain("shop-prod-backups-token-id");
  });

  it("are the configured keys when the program makes no tokens (backupCredentials: config)", async () => {
    const prod = readStackFile("prod");
    const extra = engineConfig({
      backupCredentials: "config",
      backupAccessKeyId: "0123456789abcdef0123456789abcdef",
      backupSecretAccessKey: { secure: "x" },
    });
    const withKeys = await runProgram("prod", {
      values: { ...prod.values, ...extra.values },
      secretKeys: [...prod.secretKeys, ...extra.secretKeys],
    });
    expect(ofType(withKeys.resources, T.accountToken)).toEqual([]);
    const env = parseEnv(String(revealSecrets(await settle(withKeys.exports.restoreEnv as never))));
    expect(env.BACKUP_S3_ACCESS_KEY_ID).toBe("0123456789abcdef0123456789abcdef");
  });
});
