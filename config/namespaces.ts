/**
 * The config namespaces of a stack: the two the program reads, the project's own keys
 * (`webstack:tier`) and the app secrets (`secrets:JWT_SECRET`), and those its providers and
 * Pulumi itself read.
 */

/** The Pulumi project name, which is also the config namespace (`webstack:tier`). */
export const PROJECT = "webstack";

/** The namespace of app secrets: `pulumi config set --secret secrets:JWT_SECRET …`. */
export const APP_SECRET_NAMESPACE = "secrets";

/** Namespaces read by the providers the program uses (`hcloud:token`, `cloudflare:apiToken`) and by Pulumi. */
export const PROVIDER_NAMESPACES = ["hcloud", "cloudflare", "command", "random", "pulumi"] as const;
