/**
 * The stack config schema: every key a stack sets, by area, with its default, and the checks
 * across keys. `Pulumi.yaml` declares the same keys for the CLI (a test keeps the two in step).
 */
import { z } from "zod";
import { appConfigFields, appCrossChecks } from "./app";
import { backupConfigFields } from "./backups";
import { EDGE_SECRET_KEYS, edgeConfigFields, edgeCrossChecks } from "./edge";
import type { CrossCheck } from "./problems";
import { serverConfigFields, serverCrossChecks } from "./server";

/** The stack config schema. Keys are the config keys without the `webstack:` namespace. */
export const stackConfigSchema = z.strictObject({
  ...serverConfigFields,
  ...edgeConfigFields,
  ...appConfigFields,
  ...backupConfigFields,
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
export const crossChecks: CrossCheck[] = [...serverCrossChecks, ...edgeCrossChecks, ...appCrossChecks];
