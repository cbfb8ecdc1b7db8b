/**
 * The images the stack runs unless its config names others: multi-arch, so they run on the
 * ARM64 server (`postgis/postgis` is amd64-only; `imresamu/postgis` is the same image built for
 * arm64 too). Renovate reads this file (renovate.json): it proposes each new release, and pins
 * each default by digest in its pull request, so that `docker compose pull` can never bring a
 * different image under the same tag.
 */
export const DEFAULT_IMAGES = {
  postgres: "imresamu/postgis:17-3.5",
  redis: "redis:7.4",
  caddy: "caddy:2.10-alpine",
  cloudflared: "cloudflare/cloudflared:2025.8.1",
} as const;
