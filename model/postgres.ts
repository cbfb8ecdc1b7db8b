/**
 * Where PostgreSQL keeps a cluster on the data volume, by major version. Up to 17 the images keep
 * it in /var/lib/postgresql/data, bind-mounted from `<data>/postgres`. From 18 the official images
 * keep it in /var/lib/postgresql/<major>/docker under one mount at /var/lib/postgresql, from
 * `<data>/postgresql` (a major upgrade can then put the next cluster beside it), and refuse a
 * mount at the old place.
 */

/** The first major version with the per-major layout. */
export const PER_MAJOR_LAYOUT_SINCE = 18;

export interface PostgresLayout {
  /** The directory of the data volume bind-mounted into the container. */
  readonly hostDir: string;
  /** Where the container sees it. */
  readonly mountPoint: string;
  /** The cluster's directory inside the container (PGDATA). */
  readonly pgdata: string;
}

export function postgresLayout(major: number, dataDir: string): PostgresLayout {
  if (major < PER_MAJOR_LAYOUT_SINCE) {
    return {
      hostDir: `${dataDir}/postgres`,
      mountPoint: "/var/lib/postgresql/data",
      pgdata: "/var/lib/postgresql/data",
    };
  }
  return {
    hostDir: `${dataDir}/postgresql`,
    mountPoint: "/var/lib/postgresql",
    pgdata: `/var/lib/postgresql/${major}/docker`,
  };
}

/**
 * The PostgreSQL major version an image's tag starts with ("17-3.5", "18.1-alpine", "16"), or
 * undefined when the tag does not say (none, "latest", a digest alone).
 */
export function majorOfImageTag(image: string): number | undefined {
  const name = image.split("@")[0];
  const colon = name.lastIndexOf(":");
  if (colon < 0 || colon < name.lastIndexOf("/")) return undefined;
  const match = /^(\d{1,2})(?:[.-]|$)/.exec(name.slice(colon + 1));
  const major = match ? Number(match[1]) : undefined;
  return major !== undefined && major >= 10 ? major : undefined;
}
