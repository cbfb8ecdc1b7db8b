/**
 * The only code that reads Pulumi config: the stack's keys and the app secrets, read once and
 * together, then resolved and checked. It fails closed: a key the engine cannot tell secret is
 * treated as an error, never as a secret. Nothing downstream reads `pulumi.Config` again.
 */
import * as pulumi from "@pulumi/pulumi";
import { alertsSecretNames, alertsUrlProblems } from "./alerts";
import { appSecretNames, appSecretProblems, secretKeyProblems } from "./app";
import { APP_SECRET_NAMESPACE, PROJECT, PROVIDER_NAMESPACES } from "./namespaces";
import { ConfigError, nearestName } from "./problems";
import { registrySecretNames } from "./registries";
import { rawConfigFromPulumi, resolveConfig, type StackConfig } from "./resolve";

export interface LoadedConfig {
  readonly config: StackConfig;
  /** App secret values by name (`secrets:<NAME>`), each a Pulumi secret. */
  readonly appSecrets: Readonly<Record<string, pulumi.Output<string>>>;
  /** Registry passwords by the name of their `secrets:<NAME>` key, each a Pulumi secret. */
  readonly registryPasswords: Readonly<Record<string, pulumi.Output<string>>>;
  /** The alerts channel's URL (`webstack:alerts.urlSecret`), a Pulumi secret; absent without alerts. */
  readonly alertsUrl?: pulumi.Output<string>;
}

/**
 * Read and resolve the current stack's config from the Pulumi engine (the CLI or the mocks). A
 * bad stack config, then a missing or plaintext app secret, fails here, before any resource.
 */
export function loadConfig(): LoadedConfig {
  const all = pulumi.runtime.allConfig();
  // No message may show a secret's value, wherever it was pasted.
  const secretValues = Object.entries(all)
    .filter(([key]) => isConfigSecret(key))
    .map(([, value]) => value);
  const config = resolveConfig(pulumi.getStack(), rawConfigFromPulumi(all), isConfigSecret, secretValues);
  const appSecretsNamed = appSecretNames(config.services);
  const registrySecrets = registrySecretNames(config.registries);
  const alertsSecret = alertsSecretNames(config.alerts);
  const problems = [
    ...strayKeyProblems(Object.keys(all), [...appSecretsNamed, ...registrySecrets, ...alertsSecret]),
    ...appSecretProblems(config.services, all, isConfigSecret),
    // A secret both a service and a registry use is reported once, above.
    ...secretKeyProblems(
      registrySecrets.filter((name) => !appSecretsNamed.includes(name)),
      "a registry names it as its passwordSecret",
      all,
      isConfigSecret,
    ),
    ...secretKeyProblems(
      alertsSecret.filter((name) => !appSecretsNamed.includes(name) && !registrySecrets.includes(name)),
      "webstack:alerts names it as its urlSecret",
      all,
      isConfigSecret,
    ),
    ...alertsUrlProblems(config.alerts, all),
  ];
  if (problems.length > 0) throw new ConfigError(config.stack, problems, secretValues);
  const secrets = new pulumi.Config(APP_SECRET_NAMESPACE);
  const read = (names: readonly string[]) =>
    Object.fromEntries(names.map((name) => [name, secrets.requireSecret(name)]));
  return {
    config,
    appSecrets: read(appSecretsNamed),
    registryPasswords: read(registrySecrets),
    alertsUrl: config.alerts ? secrets.requireSecret(config.alerts.urlSecret) : undefined,
  };
}

/**
 * Keys nothing reads: a namespace that is neither the program's nor a provider's (a misspelled
 * `webstak:tier` is ignored by everything, silently), and app secrets that no service, registry or
 * alerts channel names (a misspelled name, or one a removed service left behind). Their values are
 * never shown.
 */
export function strayKeyProblems(fullKeys: readonly string[], secretsUsed: readonly string[]): string[] {
  const namespaces = [PROJECT, APP_SECRET_NAMESPACE, ...PROVIDER_NAMESPACES];
  return fullKeys.flatMap((fullKey) => {
    const at = fullKey.indexOf(":");
    const namespace = fullKey.slice(0, at);
    const name = fullKey.slice(at + 1);
    if (namespace === APP_SECRET_NAMESPACE) {
      if (secretsUsed.includes(name)) return [];
      const near = nearestName(name, secretsUsed);
      return [
        `${fullKey}: no service (secrets), registry (passwordSecret) or webstack:alerts (urlSecret) names it` +
          `${near ? ` (did you mean ${APP_SECRET_NAMESPACE}:${near}?)` : ""}; ` +
          `name it where it is needed, or remove it: pulumi config rm ${fullKey}`,
      ];
    }
    if (namespaces.includes(namespace)) return [];
    const near = nearestName(namespace, namespaces);
    return [
      `${fullKey}: unknown config namespace "${namespace}"${near ? ` (did you mean ${near}:${name}?)` : ""}, ` +
        `so nothing reads it; the stack's keys are webstack:<key>, app secrets secrets:<NAME>, and the ` +
        `providers' ${PROVIDER_NAMESPACES.map((n) => `${n}:`).join(", ")}`,
    ];
  });
}

/** Whether the engine holds a config key as secret (the SDK's own check, internal to it). */
function isConfigSecret(fullKey: string): boolean {
  // biome-ignore lint/suspicious/noExplicitAny: internal, untyped module of @pulumi/pulumi
  const runtimeConfig: any = require("@pulumi/pulumi/runtime/config");
  if (typeof runtimeConfig.isConfigSecret !== "function") {
    throw new Error(
      "this @pulumi/pulumi cannot tell secret config from plaintext (no isConfigSecret): refusing to go on",
    );
  }
  return Boolean(runtimeConfig.isConfigSecret(fullKey));
}
