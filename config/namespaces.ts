/**
 * The two config namespaces the program reads: the project's own keys (`webstack:tier`) and the
 * app secrets (`secrets:JWT_SECRET`).
 */

/** The Pulumi project name, which is also the config namespace (`webstack:tier`). */
export const PROJECT = "webstack";

/** The namespace of app secrets: `pulumi config set --secret secrets:JWT_SECRET …`. */
export const APP_SECRET_NAMESPACE = "secrets";
