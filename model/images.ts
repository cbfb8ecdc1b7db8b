/**
 * What an image reference says about where the image comes from, as Docker reads it: the first
 * path component is a registry when it has a dot or a port or is `localhost`; otherwise the image
 * is on Docker Hub (`docker.io`).
 */

/** The registry an image reference pulls from: `ghcr.io` for `ghcr.io/acme/api:1`, `docker.io` for `redis:7.4`. */
export function imageRegistry(ref: string): string {
  const slash = ref.indexOf("/");
  if (slash < 0) return DOCKER_HUB;
  const first = ref.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : DOCKER_HUB;
}

export const DOCKER_HUB = "docker.io";

/**
 * Images whose publishers build them for linux/amd64 only, so they cannot run on the ARM64
 * server, with what to use instead. The offline plan warns about them; the deploy's own platform
 * check refuses any image without a linux/arm64 variant, listed here or not.
 */
export const AMD64_ONLY_IMAGES: Readonly<Record<string, string>> = {
  "postgis/postgis": "imresamu/postgis (the same image, built for arm64 too)",
  "mcr.microsoft.com/mssql/server": "no ARM64 build; use Azure SQL Edge or another database",
};

/** The repository of a reference without registry default, tag or digest: `postgis/postgis` for `postgis/postgis:17-3.5`. */
export function imageRepository(ref: string): string {
  const withoutDigest = ref.split("@")[0];
  const lastSlash = withoutDigest.lastIndexOf("/");
  const colon = withoutDigest.indexOf(":", lastSlash + 1);
  const repo = colon < 0 ? withoutDigest : withoutDigest.slice(0, colon);
  return repo.startsWith("docker.io/") ? repo.slice("docker.io/".length) : repo;
}

/** The images of a stack, with where the config names each (for messages). */
export interface NamedImage {
  readonly key: string;
  readonly ref: string;
}

/** A warning for each image known to be amd64-only, naming its config key and what to use instead. */
export function amd64OnlyWarnings(images: readonly NamedImage[]): string[] {
  return images.flatMap(({ key, ref }) => {
    const instead = AMD64_ONLY_IMAGES[imageRepository(ref)];
    return instead === undefined
      ? []
      : [
          `webstack:${key} ("${ref}") is built for linux/amd64 only and cannot run on the ARM64 server; the deploy will refuse it. Use ${instead}.`,
        ];
  });
}
