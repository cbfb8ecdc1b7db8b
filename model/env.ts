/** The environment the stack gives its services, and the keys of the `.env` beside the compose file. */

/** Variables the stack sets itself for every app service (database and Redis connection). */
export const STACK_ENV_NAMES = [
  "DATABASE_URL",
  "PGHOST",
  "PGPORT",
  "PGUSER",
  "PGPASSWORD",
  "PGDATABASE",
  "REDIS_URL",
  "REDIS_HOST",
  "REDIS_PORT",
  "REDIS_PASSWORD",
] as const;

/** The generated passwords the `.env` must define (the app secrets come on top). */
export const POSTGRES_PASSWORD_KEY = "POSTGRES_PASSWORD";
export const REDIS_PASSWORD_KEY = "REDIS_PASSWORD";
/** The tunnel's connector token in the `.env` (tunnel mode); cloudflared reads it from there. */
export const TUNNEL_TOKEN_KEY = "TUNNEL_TOKEN";

/** The `.env` keys the stack writes itself; an app secret of the same name would overwrite one. */
export const STACK_DOTENV_KEYS = [POSTGRES_PASSWORD_KEY, REDIS_PASSWORD_KEY, TUNNEL_TOKEN_KEY] as const;

/** The variable that tells a routed service its port (set from its `port`). */
export const PORT_ENV_NAME = "PORT";
