/**
 * What the routes imply, computed once into the resolved config: the hostnames the stack serves
 * and the order in which the proxies must try the routes.
 */
import type { Route } from "./server";

/** Every hostname the routes serve, in the order they first appear. */
export function hostnamesOf(routes: readonly Route[]): string[] {
  return [...new Set(routes.map((r) => r.hostname))];
}

/**
 * The routes in the order a proxy that takes the first match must try them: grouped by hostname
 * (in `hostnamesOf` order), and on each hostname the longer path prefixes first and the
 * whole-hostname route last; routes of equal length keep their order. cloudflared's ingress and
 * Caddy's `handle` blocks both match this way.
 */
export function routesInMatchOrder(routes: readonly Route[]): Route[] {
  const pathLength = (r: Route) => (r.path === undefined ? -1 : r.path.length);
  return hostnamesOf(routes).flatMap((hostname) =>
    routes
      .map((route, i) => ({ route, i }))
      .filter(({ route }) => route.hostname === hostname)
      .sort((a, b) => pathLength(b.route) - pathLength(a.route) || a.i - b.i)
      .map(({ route }) => route),
  );
}
