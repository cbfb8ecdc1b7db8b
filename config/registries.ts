/**
 * Private registries the deploy logs in to before it pulls: `webstack:registries`, each with the
 * name of the `secrets:<NAME>` key (set with `--secret`) that holds its password or token.
 * Spread into `stackConfigSchema` next to the app's keys.
 */
import { z } from "zod";
import { imageRegistry } from "../model/images";
import type { CrossCheck, Problem } from "./problems";

/** A registry host as image references name it: `ghcr.io`, `registry.gitlab.com`, `git.example.com:5050`. */
const REGISTRY_SERVER =
  /^(localhost|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9-]{0,61}[a-z0-9]|\d{1,3}(\.\d{1,3}){3})(:\d{1,5})?$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

export const registrySchema = z.strictObject({
  /** The registry's host (and port), exactly as the images name it: `ghcr.io`, `registry.gitlab.com`, `docker.io`. */
  server: z.string().regex(REGISTRY_SERVER, {
    message:
      "must be a registry host as image references name it, such as ghcr.io or git.example.com:5050 (no https://, no path)",
  }),
  /** The user (or robot account) the deploy logs in as. */
  username: z.string().regex(/^[^\s:]{1,255}$/, { message: "must be a user name without spaces or ':'" }),
  /**
   * The name of the app secret holding the password or access token (read-only scope is enough):
   * `pulumi config set --secret secrets:<NAME> <token>`.
   */
  passwordSecret: z
    .string()
    .regex(ENV_NAME, { message: "must name a secrets:<NAME> key (A-Z, 0-9, _), such as GHCR_TOKEN" }),
});

export type Registry = z.output<typeof registrySchema>;

export const registryConfigFields = {
  /**
   * Registries the deploy logs in to (`docker login --password-stdin`, as the deploy user) before
   * it pulls; a registry removed from the list is logged out of.
   * @example [{ server: "ghcr.io", username: "shop-bot", passwordSecret: "GHCR_TOKEN" }]
   * @default []
   */
  registries: z.array(registrySchema).default([]),
};

export const registryConfigDescriptions: Record<keyof typeof registryConfigFields, string> = {
  registries:
    "Private registries the deploy logs in to before pulling: a list of {server (e.g. ghcr.io), username, passwordSecret (the NAME of a secrets:<NAME> key set with --secret that holds the password or read-only token)}.",
};

type Loose = Record<string, unknown>;
const isObject = (v: unknown): v is Loose => v !== null && typeof v === "object" && !Array.isArray(v);

/** Every image reference the raw config names (the services', Postgres', Redis', the proxies'), with its path. */
function rawImages(raw: Loose): { path: (string | number)[]; ref: string }[] {
  const images: { path: (string | number)[]; ref: string }[] = [];
  if (Array.isArray(raw.services)) {
    raw.services.forEach((s, i) => {
      if (isObject(s) && typeof s.image === "string") images.push({ path: ["services", i, "image"], ref: s.image });
    });
  }
  for (const [key, field] of [
    ["postgres", "image"],
    ["redis", "image"],
    ["proxy", "caddyImage"],
    ["proxy", "cloudflaredImage"],
  ] as const) {
    const value = raw[key];
    if (isObject(value) && typeof value[field] === "string") images.push({ path: [key, field], ref: value[field] });
  }
  return images;
}

export const registryCrossChecks: CrossCheck[] = [
  /**
   * One entry per server (docker keeps one login per registry), and each one used by an image: a
   * registry no image comes from is most often a misspelled host (`ghcr.com`), whose images would
   * then be pulled without credentials.
   */
  function registriesUsedOnce(raw) {
    if (!Array.isArray(raw.registries)) return [];
    const used = new Set(rawImages(raw).map((image) => imageRegistry(image.ref)));
    const problems: Problem[] = [];
    const seen = new Set<string>();
    raw.registries.forEach((r, i) => {
      if (!isObject(r) || typeof r.server !== "string") return;
      if (seen.has(r.server)) {
        problems.push({
          path: ["registries", i, "server"],
          message: "is listed twice; docker keeps one login per registry",
        });
      } else if (!used.has(r.server)) {
        problems.push({
          path: ["registries", i, "server"],
          message: `is not the registry of any image; the images come from: ${[...used].sort().join(", ")}`,
        });
      }
      seen.add(r.server);
    });
    return problems;
  },
];

/** The app secrets holding registry passwords, each once, sorted. */
export function registrySecretNames(registries: readonly Registry[]): string[] {
  return [...new Set(registries.map((r) => r.passwordSecret))].sort();
}
