/**
 * The deploy's role setup (compose/scripts/postgres-roles.sql) on the stand-in PostGIS image
 * (PostgreSQL 17), judged by PostgreSQL itself: what a role may do, and pg_dump's view of who owns
 * what. A cluster the release before the administrator role initialised (the app's role its
 * bootstrap superuser) must come out of it as a new cluster would, with its schema and data as
 * they were.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POSTGRES_ADMIN_ROLE } from "../../model/services";
import { DOCKER, run } from "../support/stack-configs";

const IMAGE = "local/postgis:17-3.5";
const ROLES_SQL = readFileSync(join(__dirname, "../../compose/scripts/postgres-roles.sql"), "utf8");
const PASSWORD = "first-password-0123456789";
const DATABASE = "app";
const APP = "app";
const containers: string[] = [];

/** Objects of most kinds an app's migrations create, with grants to a reporting role and data. */
const SCHEMA_AND_DATA = `
CREATE EXTENSION pgcrypto;
CREATE SCHEMA shop;
CREATE TYPE shop.status AS ENUM ('new', 'paid');
CREATE DOMAIN shop.price AS numeric CHECK (VALUE >= 0);
CREATE TYPE shop.pair AS (a int, b int);
CREATE TYPE shop.span AS RANGE (subtype = int4);
CREATE COLLATION shop.ci (provider = libc, locale = 'C');
CREATE TEXT SEARCH CONFIGURATION shop.search (COPY = pg_catalog.simple);
CREATE TABLE shop.orders (id bigserial PRIMARY KEY, ref uuid DEFAULT gen_random_uuid(), status shop.status,
  total shop.price, placed geometry(Point, 4326), note text COLLATE shop.ci);
CREATE TABLE shop.items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id bigint REFERENCES shop.orders);
CREATE SEQUENCE shop.invoice_numbers;
CREATE TABLE events (at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW shop.paid AS SELECT id, total FROM shop.orders WHERE status = 'paid';
CREATE MATERIALIZED VIEW shop.totals AS SELECT status, sum(total) AS total FROM shop.orders GROUP BY status;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, '-'); RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE INSERT ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE PROCEDURE shop.archive() LANGUAGE sql AS $$ DELETE FROM events WHERE at < '2026-01-01' $$;
CREATE AGGREGATE shop.total_of (numeric) (sfunc = numeric_add, stype = numeric, initcond = '0');
CREATE STATISTICS shop.orders_stats ON status, total FROM shop.orders;
ALTER TABLE shop.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_all ON shop.orders USING (true);
GRANT USAGE ON SCHEMA shop TO reporting;
GRANT SELECT ON shop.orders, shop.paid TO reporting;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reporting;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT USAGE ON SEQUENCES TO reporting;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
SELECT lo_from_bytea(424242, 'a large object');
INSERT INTO shop.orders (status, total, placed) VALUES ('paid', 12.5, ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326)), ('new', 3, NULL);
INSERT INTO shop.items (order_id) VALUES (1), (1), (2);
INSERT INTO events VALUES ('2026-06-01', 'opened');
SELECT nextval('shop.invoice_numbers');
REFRESH MATERIALIZED VIEW shop.totals;
`;

function docker(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  return run(DOCKER, args, { input, timeoutMs: 120_000 });
}

/** A cluster of the image, initialised by its entrypoint with `env`; resolves once it answers. */
async function startCluster(env: Record<string, string>): Promise<string> {
  const name = `webstack-roles-${process.pid}-${containers.length}`;
  containers.push(name);
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
  const started = docker(["run", "--detach", "--name", name, "--network", "none", ...envArgs, IMAGE]);
  if (started.status !== 0) throw new Error(`docker run: ${started.stderr}`);
  for (let i = 0; i < 120; i++) {
    const logs = docker(["logs", name]);
    if (
      /init process complete/.test(logs.stdout + logs.stderr) &&
      psqlAs(name, env.POSTGRES_USER, "SELECT 1").status === 0
    ) {
      return name;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${name} did not start: ${docker(["logs", name]).stderr}`);
}

/** psql over the container's socket (trusted) as `role`. */
function psqlAs(container: string, role: string, sql: string, database = DATABASE) {
  return docker(
    ["exec", "-i", container, "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-U", role, "-d", database],
    sql,
  );
}

function sqlAs(container: string, role: string, sql: string): string {
  const r = psqlAs(container, role, sql);
  if (r.status !== 0) throw new Error(`psql as ${role}: ${r.stderr}`);
  return r.stdout.trim();
}

/** psql over TCP with a password, as the apps connect. */
function overNetwork(container: string, role: string, password: string, sql: string) {
  return docker(
    ["exec", "-i", "--env", `PGPASSWORD=${password}`, container, "psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1"].concat([
      "-h",
      "127.0.0.1",
      "-U",
      role,
      "-d",
      DATABASE,
    ]),
    sql,
  );
}

/** The role setup as deploy.sh runs it: as `role`, with the release's environment. */
function setUpRoles(container: string, role: string, env: Record<string, string>) {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
  return docker(["exec", "-i", ...envArgs, container, "psql", "-X", "-q", "-U", role, "-d", DATABASE], ROLES_SQL);
}

/** The environment a release's compose file gives the postgres container. */
function releaseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    POSTGRES_USER: POSTGRES_ADMIN_ROLE,
    POSTGRES_DB: DATABASE,
    POSTGRES_PASSWORD: PASSWORD,
    POSTGRES_APP_USER: APP,
    ...extra,
  };
}

/** pg_dump's view of the database: every object with its owner and grants (no session key lines). */
function schemaDump(container: string): string {
  const r = docker(["exec", container, "pg_dump", "--schema-only", "-U", POSTGRES_ADMIN_ROLE, DATABASE]);
  if (r.status !== 0) throw new Error(`pg_dump: ${r.stderr}`);
  return r.stdout.replace(/^\\(un)?restrict .*$/gm, "");
}

/** A dump's lines (a mismatch then shows the lines that differ). */
function lines(dump: string): string[] {
  return dump.split("\n");
}

function dataDump(container: string): string {
  const r = docker(["exec", container, "pg_dump", "--data-only", "--blobs", "-U", POSTGRES_ADMIN_ROLE, DATABASE]);
  if (r.status !== 0) throw new Error(`pg_dump: ${r.stderr}`);
  return r.stdout.replace(/^\\(un)?restrict .*$/gm, "");
}

function rolesDump(container: string): string {
  const r = docker(["exec", container, "pg_dumpall", "--roles-only", "--no-role-passwords", "-U", POSTGRES_ADMIN_ROLE]);
  if (r.status !== 0) throw new Error(`pg_dumpall: ${r.stderr}`);
  return r.stdout.replace(/^\\(un)?restrict .*$/gm, "");
}

/** Objects outside the system and the extensions still owned by the administrator. */
function leftToAdmin(container: string): string {
  return sqlAs(
    container,
    POSTGRES_ADMIN_ROLE,
    `WITH admin AS (SELECT oid FROM pg_roles WHERE rolname = '${POSTGRES_ADMIN_ROLE}'),
       ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e'),
       mine AS (SELECT oid FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema')
     SELECT 'class ' || relname FROM pg_class WHERE relkind NOT IN ('i', 'I') AND relowner = (SELECT oid FROM admin) AND relnamespace IN (SELECT oid FROM mine) AND oid NOT IN (SELECT objid FROM ext)
     UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typowner = (SELECT oid FROM admin) AND typnamespace IN (SELECT oid FROM mine) AND oid NOT IN (SELECT objid FROM ext)
     UNION ALL SELECT 'proc ' || proname FROM pg_proc WHERE proowner = (SELECT oid FROM admin) AND pronamespace IN (SELECT oid FROM mine) AND oid NOT IN (SELECT objid FROM ext)
     UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = (SELECT oid FROM admin) AND oid IN (SELECT oid FROM mine) AND oid NOT IN (SELECT objid FROM ext)
     UNION ALL SELECT 'default acl ' || defaclobjtype::text FROM pg_default_acl WHERE defaclrole = (SELECT oid FROM admin)
     UNION ALL SELECT 'large object ' || oid FROM pg_largeobject_metadata WHERE lomowner = (SELECT oid FROM admin)
     UNION ALL SELECT 'database ' || datname FROM pg_database WHERE datname = '${DATABASE}' AND datdba = (SELECT oid FROM admin)
     ORDER BY 1`,
  );
}

/** superuser, createrole, createdb, replication, bypassrls, login: "t" or "f" each. */
function attributes(container: string, role: string, as = POSTGRES_ADMIN_ROLE): string {
  return sqlAs(
    container,
    as,
    `SELECT concat_ws(' ', rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin)
       FROM pg_roles WHERE rolname = '${role}'`,
  );
}

let fresh: string;
let legacy: string;
let legacyBefore: { schema: string; data: string };

beforeAll(async () => {
  // A new cluster (this release), and one the release before initialised with the app's role.
  fresh = await startCluster(releaseEnv());
  legacy = await startCluster({ POSTGRES_USER: APP, POSTGRES_DB: DATABASE, POSTGRES_PASSWORD: PASSWORD });
  sqlAs(legacy, APP, `CREATE ROLE reporting;\n${SCHEMA_AND_DATA}`);
  legacyBefore = { schema: schemaDumpAs(legacy, APP), data: dataDumpAs(legacy, APP) };
}, 180_000);

afterAll(() => {
  for (const name of containers) docker(["rm", "-f", "-v", name]);
});

/** The dumps of the cluster before its administrator role existed (pg_dump as its only role). */
function schemaDumpAs(container: string, role: string): string {
  return docker(["exec", container, "pg_dump", "--schema-only", "-U", role, DATABASE]).stdout.replace(
    /^\\(un)?restrict .*$/gm,
    "",
  );
}
function dataDumpAs(container: string, role: string): string {
  return docker(["exec", container, "pg_dump", "--data-only", "--blobs", "-U", role, DATABASE]).stdout.replace(
    /^\\(un)?restrict .*$/gm,
    "",
  );
}

describe("the database roles of a new cluster", () => {
  it("the app's role is made, owns the database and is not a superuser", () => {
    const r = setUpRoles(fresh, POSTGRES_ADMIN_ROLE, releaseEnv());
    expect(r.status, r.stderr).toBe(0);
    expect(attributes(fresh, APP)).toBe("f f f f f t");
    expect(attributes(fresh, POSTGRES_ADMIN_ROLE)).toMatch(/^t /);
    expect(
      sqlAs(fresh, APP, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"),
    ).toBe(APP);
    expect(leftToAdmin(fresh)).toBe("");
  });

  it("the app logs in over the network with the .env's password and builds its schema there", () => {
    sqlAs(fresh, POSTGRES_ADMIN_ROLE, "CREATE ROLE reporting");
    const r = overNetwork(fresh, APP, PASSWORD, SCHEMA_AND_DATA);
    expect(r.status, r.stderr).toBe(0);
  });

  it("the app may not do what only a superuser may", () => {
    for (const statement of [
      "CREATE ROLE intruder SUPERUSER",
      "ALTER ROLE app SUPERUSER",
      "COPY (SELECT 1) TO PROGRAM 'id'",
      "SELECT pg_read_file('/etc/passwd')",
      "SELECT rolpassword FROM pg_authid",
      "CREATE EXTENSION postgis_raster",
      "ALTER SYSTEM SET log_statement = 'all'",
    ]) {
      const r = overNetwork(fresh, APP, PASSWORD, statement);
      expect(r.status, statement).not.toBe(0);
      expect(r.stderr, statement).toMatch(/permission denied|must be superuser/);
    }
  });

  it("the administrator cannot log in over the network, not even with the password it was created with", () => {
    const r = overNetwork(fresh, POSTGRES_ADMIN_ROLE, PASSWORD, "SELECT 1");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/password authentication failed/);
  });

  it("running the setup again changes nothing", () => {
    const before = { schema: schemaDump(fresh), roles: rolesDump(fresh) };
    const r = setUpRoles(fresh, POSTGRES_ADMIN_ROLE, releaseEnv());
    expect(r.status, r.stderr).toBe(0);
    expect(schemaDump(fresh)).toBe(before.schema);
    expect(rolesDump(fresh)).toBe(before.roles);
  });

  it("a rotated password is the one the app logs in with", () => {
    const rotated = "rotated-password-9876543210";
    expect(setUpRoles(fresh, POSTGRES_ADMIN_ROLE, releaseEnv({ POSTGRES_PASSWORD: rotated })).status).toBe(0);
    expect(overNetwork(fresh, APP, PASSWORD, "SELECT 1").status).not.toBe(0);
    expect(overNetwork(fresh, APP, rotated, "SELECT 1").status).toBe(0);
    expect(setUpRoles(fresh, POSTGRES_ADMIN_ROLE, releaseEnv()).status).toBe(0);
  });

  it("the extensions the release names are created by the administrator, and the app uses them", async () => {
    const cluster = await startCluster(releaseEnv());
    const r = setUpRoles(cluster, POSTGRES_ADMIN_ROLE, releaseEnv({ POSTGRES_EXTENSIONS: "postgis_raster pg_trgm" }));
    expect(r.status, r.stderr).toBe(0);
    const used = overNetwork(
      cluster,
      APP,
      PASSWORD,
      "SELECT ST_Width(ST_MakeEmptyRaster(3, 2, 0, 0, 1)), similarity('a', 'a')",
    );
    expect(used.stdout.trim()).toBe("3|1");
  });

  it("an extension the image does not have fails the setup and changes no role", () => {
    const before = rolesDump(fresh);
    const r = setUpRoles(
      fresh,
      POSTGRES_ADMIN_ROLE,
      releaseEnv({ POSTGRES_APP_USER: "newcomer", POSTGRES_EXTENSIONS: "no_such_extension" }),
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/extension "no_such_extension" is not available/);
    expect(rolesDump(fresh)).toBe(before);
  });
});

describe("a cluster whose apps were its superuser, at the first deploy of this release", () => {
  it("its app role is no superuser any more, and the bootstrap superuser is the administrator", () => {
    expect(attributes(legacy, APP, APP)).toMatch(/^t /);
    const r = setUpRoles(legacy, APP, releaseEnv());
    expect(r.status, r.stderr).toBe(0);
    expect(attributes(legacy, APP)).toBe("f f f f f t");
    expect(sqlAs(legacy, POSTGRES_ADMIN_ROLE, `SELECT rolname FROM pg_roles WHERE oid = 10`)).toBe(POSTGRES_ADMIN_ROLE);
    expect(leftToAdmin(legacy)).toBe("");
  });

  it("its schema, owners and grants included, and its data are what they were", () => {
    expect(lines(schemaDump(legacy))).toEqual(lines(legacyBefore.schema));
    // The one difference: PostGIS's own table, like every extension's objects, is the administrator's.
    const postgisTable = "-- Data for Name: spatial_ref_sys; Type: TABLE DATA; Schema: public; Owner:";
    expect(lines(dataDump(legacy))).toEqual(
      lines(legacyBefore.data.replace(`${postgisTable} ${APP}`, `${postgisTable} ${POSTGRES_ADMIN_ROLE}`)),
    );
  });

  it("it is what a new cluster is whose app built the same schema", () => {
    expect(lines(schemaDump(legacy))).toEqual(lines(schemaDump(fresh)));
    expect(lines(rolesDump(legacy))).toEqual(lines(rolesDump(fresh)));
  });

  it("the app still changes and drops what it owns", () => {
    const r = overNetwork(
      legacy,
      APP,
      PASSWORD,
      `ALTER TABLE shop.orders ADD COLUMN paid_at timestamptz;
       REFRESH MATERIALIZED VIEW shop.totals;
       CALL shop.archive();
       SELECT setval('shop.invoice_numbers', 10);
       SELECT lo_unlink(424242);
       DROP VIEW shop.paid;
       CREATE TABLE shop.refunds (id int);
       DROP SCHEMA shop CASCADE;`,
    );
    expect(r.status, r.stderr).toBe(0);
  });

  it("a rollback to the release before sets the app role's password back and it logs in", () => {
    const old = "the-release-befores-password";
    const r = setUpRoles(legacy, APP, { POSTGRES_USER: APP, POSTGRES_DB: DATABASE, POSTGRES_PASSWORD: old });
    expect(r.status, r.stderr).toBe(0);
    expect(overNetwork(legacy, APP, old, "SELECT 1").status).toBe(0);
  });
});
