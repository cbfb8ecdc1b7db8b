/**
 * Tiers: the one knob users turn as they grow. A tier names a Hetzner ARM64 (CAX) server type and
 * the memory budgets that the app stack, Postgres and Redis are tuned to.
 *
 * Budgets are in MiB and always add up to the server's RAM: what the OS keeps (kernel, sshd,
 * dockerd, journald, page cache headroom), Postgres, Redis, the proxy pair (Caddy and
 * cloudflared) and the share left for the user's own services.
 */

export const TIER_NAMES = ["small", "medium", "large", "xlarge"] as const;
export type TierName = (typeof TIER_NAMES)[number];

export interface MemoryBudget {
  /** Kept free for the OS, dockerd and the page cache. */
  readonly osMb: number;
  readonly postgresMb: number;
  readonly redisMb: number;
  /** Caddy and cloudflared together. */
  readonly proxyMb: number;
  /** Shared by the API, workers and web front end. */
  readonly appsMb: number;
}

export interface Tier {
  readonly name: TierName;
  readonly serverType: string;
  readonly vcpus: number;
  readonly memoryMb: number;
  /** Local NVMe disk of the server type (holds the OS, images and swap; never state). */
  readonly diskGb: number;
  /** Swap file on the local disk: a cushion against OOM kills, not extra memory. */
  readonly swapMb: number;
  readonly memory: MemoryBudget;
}

export const TIERS: Readonly<Record<TierName, Tier>> = {
  small: {
    name: "small",
    serverType: "cax11",
    vcpus: 2,
    memoryMb: 4096,
    diskGb: 40,
    swapMb: 2048,
    memory: { osMb: 768, postgresMb: 1024, redisMb: 256, proxyMb: 256, appsMb: 1792 },
  },
  medium: {
    name: "medium",
    serverType: "cax21",
    vcpus: 4,
    memoryMb: 8192,
    diskGb: 80,
    swapMb: 2048,
    memory: { osMb: 1024, postgresMb: 2560, redisMb: 512, proxyMb: 256, appsMb: 3840 },
  },
  large: {
    name: "large",
    serverType: "cax31",
    vcpus: 8,
    memoryMb: 16384,
    diskGb: 160,
    swapMb: 4096,
    memory: { osMb: 1536, postgresMb: 5120, redisMb: 1024, proxyMb: 512, appsMb: 8192 },
  },
  xlarge: {
    name: "xlarge",
    serverType: "cax41",
    vcpus: 16,
    memoryMb: 32768,
    diskGb: 320,
    swapMb: 4096,
    memory: { osMb: 2048, postgresMb: 10240, redisMb: 2048, proxyMb: 512, appsMb: 17920 },
  },
};

/** Hetzner locations, and the ones that offer ARM64 (CAX) servers. */
export const HETZNER_LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"] as const;
export const ARM_LOCATIONS = ["fsn1", "nbg1", "hel1"] as const;

/** Hetzner's x86 server type families; named in errors so a user who types one learns why not. */
export const X86_SERVER_TYPE = /^(cx|cpx|ccx)\d+$/;
