/**
 * The stack config schema: every key a stack sets, by area, with its default, and the checks
 * across keys. `Pulumi.yaml`'s `config:` block, which declares the same keys for the CLI, is
 * generated from it (scripts/pulumi-yaml.ts, `npm run docs`).
 */
import { z } from "zod";
import { alertsConfigDescriptions, alertsConfigFields } from "./alerts";
import { appConfigDescriptions, appConfigFields, appCrossChecks } from "./app";
import { backupConfigDescriptions, backupConfigFields } from "./backups";
import { EDGE_SECRET_KEYS, edgeConfigDescriptions, edgeConfigFields, edgeCrossChecks } from "./edge";
import type { CrossCheck } from "./problems";
import { registryConfigDescriptions, registryConfigFields, registryCrossChecks } from "./registries";
import { serverConfigDescriptions, serverConfigFields, serverCrossChecks } from "./server";
import { uniquenessChecks } from "./unique";

/** The stack config schema. Keys are the config keys without the `webstack:` namespace. */
export const stackConfigSchema = z.strictObject({
  ...serverConfigFields,
  ...edgeConfigFields,
  ...appConfigFields,
  ...registryConfigFields,
  ...backupConfigFields,
  ...alertsConfigFields,
});

export type StackConfigInput = z.input<typeof stackConfigSchema>;
export type StackConfigOutput = z.output<typeof stackConfigSchema>;

/** The config keys, in declaration order. */
export const CONFIG_KEYS = Object.keys(stackConfigSchema.shape) as (keyof StackConfigInput)[];

/** Keys whose values are secrets: error messages name them but never print their values. */
export const SECRET_CONFIG_KEYS: ReadonlySet<string> = new Set<string>([...EDGE_SECRET_KEYS]);

/**
 * Checks across keys. They run on the raw values even when single keys failed (zod stops object
 * refinements at the first failing field), so one run reports every problem; each check looks only
 * at values of the right shape.
 */
export const crossChecks: CrossCheck[] = [
  ...serverCrossChecks,
  ...edgeCrossChecks,
  ...appCrossChecks,
  ...registryCrossChecks,
  ...uniquenessChecks,
];

/**
 * The keys by area, in the schema's order, with Pulumi.yaml's one-line description of each and
 * the comment that heads the area there.
 */
export const CONFIG_AREAS: readonly { title: string; descriptions: Readonly<Record<string, string>> }[] = [
  { title: "The server and its host (config/server.ts).", descriptions: serverConfigDescriptions },
  { title: "The Cloudflare edge and R2 storage (config/edge.ts).", descriptions: edgeConfigDescriptions },
  { title: "The app stack (config/app.ts).", descriptions: appConfigDescriptions },
  { title: "Private registries (config/registries.ts).", descriptions: registryConfigDescriptions },
  {
    title: "Backups (config/backups.ts): pg_dump → age → the R2 backups bucket, with a weekly restore drill.",
    descriptions: backupConfigDescriptions,
  },
  {
    title: "Alerts (config/alerts.ts): one channel for the server's alerts and the dead man's switch.",
    descriptions: alertsConfigDescriptions,
  },
];
