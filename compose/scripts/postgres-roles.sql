-- The database's roles made what the release's compose file says. deploy.sh runs it with psql in
-- the postgres container, over the container's own socket (which the image trusts), before the
-- migration; the values come from the container's environment, never from a command line:
--   POSTGRES_USER        the cluster's superuser, the stack's administrator ("postgres"): it has no
--                        password, so it logs in only through that socket (`docker compose exec`)
--   POSTGRES_APP_USER    the role the apps and the migration connect as: it logs in with
--                        POSTGRES_PASSWORD, is not a superuser, and owns the database and every
--                        object in it that is not an extension's
--   POSTGRES_EXTENSIONS  extensions (space-separated) created by the administrator: the app's role
--                        may create trusted extensions only
-- One transaction: a failure leaves the roles as they were. Running it again changes nothing.
--
-- Releases before the administrator role initialised the cluster with the app's role as
-- POSTGRES_USER, which made it the bootstrap superuser, a role PostgreSQL 16 and later never lets
-- lose SUPERUSER. deploy.sh then runs this as that role: it is renamed to the administrator and a
-- new app role takes over the database and its objects.
-- A compose file of such a release (no POSTGRES_APP_USER: a rollback to it) only gets its role's
-- password set back to its .env's.
\set ON_ERROR_STOP 1
\getenv admin POSTGRES_USER
\getenv app POSTGRES_APP_USER
\getenv password POSTGRES_PASSWORD
\getenv database POSTGRES_DB
\getenv extensions POSTGRES_EXTENSIONS

\if :{?app}
\else
  ALTER ROLE CURRENT_USER PASSWORD :'password';
  \quit
\endif
\if :{?extensions}
\else
  \set extensions ''
\endif

BEGIN;

SELECT session_user <> :'admin' AS before_admin,
       (SELECT oid = 10 FROM pg_roles WHERE rolname = session_user) AS session_is_bootstrap \gset
\if :before_admin
  \if :session_is_bootstrap
    -- PostgreSQL does not rename the session's own role: a superuser that exists only for this
    -- transaction does.
    CREATE ROLE webstack_renamer SUPERUSER NOLOGIN;
    SET SESSION AUTHORIZATION webstack_renamer;
    ALTER ROLE :"app" RENAME TO :"admin";
    RESET SESSION AUTHORIZATION;
    DROP ROLE webstack_renamer;
  \else
    CREATE ROLE :"admin" SUPERUSER;
  \endif
\endif

SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') AS app_missing \gset
\if :app_missing
  CREATE ROLE :"app";
\endif
ALTER ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
ALTER ROLE :"admin" SUPERUSER LOGIN PASSWORD NULL;

SELECT format('CREATE EXTENSION IF NOT EXISTS %I CASCADE', name)
  FROM unnest(string_to_array(:'extensions', ' ')) AS name WHERE name <> '' \gexec

ALTER DATABASE :"database" OWNER TO :"app";

-- Every object of the database the administrator owns goes to the app's role, except the system's
-- and the extensions' own objects. Indexes, owned sequences and row types follow their tables.
WITH admin AS (SELECT oid FROM pg_roles WHERE rolname = :'admin'),
extension_member AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
user_schema AS (
  SELECT oid, nspname, nspowner FROM pg_namespace
   WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_|toast_temp_)'
)
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, :'app')
  FROM user_schema n
 WHERE n.nspowner = (SELECT oid FROM admin)
   AND n.oid NOT IN (SELECT objid FROM extension_member WHERE classid = 'pg_namespace'::regclass)
UNION ALL
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                             WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
              n.nspname, c.relname, :'app')
  FROM pg_class c JOIN user_schema n ON n.oid = c.relnamespace
 WHERE c.relowner = (SELECT oid FROM admin) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
   AND c.oid NOT IN (SELECT objid FROM extension_member WHERE classid = 'pg_class'::regclass)
   AND NOT (c.relkind = 'S' AND c.oid IN (SELECT objid FROM pg_depend
                                            WHERE classid = 'pg_class'::regclass AND deptype IN ('a', 'i')
                                              AND refclassid = 'pg_class'::regclass))
UNION ALL
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'app')
  FROM pg_proc p JOIN user_schema n ON n.oid = p.pronamespace
 WHERE p.proowner = (SELECT oid FROM admin)
   AND p.oid NOT IN (SELECT objid FROM extension_member WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT format('ALTER %s %I.%I OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
              n.nspname, t.typname, :'app')
  FROM pg_type t JOIN user_schema n ON n.oid = t.typnamespace
 WHERE t.typowner = (SELECT oid FROM admin) AND t.typtype IN ('d', 'e', 'r')
   AND t.oid NOT IN (SELECT objid FROM extension_member WHERE classid = 'pg_type'::regclass)
UNION ALL
SELECT format('ALTER COLLATION %I.%I OWNER TO %I', n.nspname, o.collname, :'app')
  FROM pg_collation o JOIN user_schema n ON n.oid = o.collnamespace
 WHERE o.collowner = (SELECT oid FROM admin)
   AND o.oid NOT IN (SELECT objid FROM extension_member WHERE classid = 'pg_collation'::regclass)
UNION ALL
SELECT format('ALTER TEXT SEARCH CONFIGURATION %I.%I OWNER TO %I', n.nspname, o.cfgname, :'app')
  FROM pg_ts_config o JOIN user_schema n ON n.oid = o.cfgnamespace
 WHERE o.cfgowner = (SELECT oid FROM admin)
   AND o.oid NOT IN (SELECT objid FROM extension_member WHERE classid = 'pg_ts_config'::regclass)
UNION ALL
SELECT format('ALTER TEXT SEARCH DICTIONARY %I.%I OWNER TO %I', n.nspname, o.dictname, :'app')
  FROM pg_ts_dict o JOIN user_schema n ON n.oid = o.dictnamespace
 WHERE o.dictowner = (SELECT oid FROM admin)
   AND o.oid NOT IN (SELECT objid FROM extension_member WHERE classid = 'pg_ts_dict'::regclass)
UNION ALL
SELECT format('ALTER STATISTICS %I.%I OWNER TO %I', n.nspname, o.stxname, :'app')
  FROM pg_statistic_ext o JOIN user_schema n ON n.oid = o.stxnamespace
 WHERE o.stxowner = (SELECT oid FROM admin)
UNION ALL
SELECT format('ALTER LARGE OBJECT %s OWNER TO %I', o.oid, :'app')
  FROM pg_largeobject_metadata o
 WHERE o.lomowner = (SELECT oid FROM admin)
\gexec

-- Default privileges the administrator holds (the ones the app's role set before it was renamed)
-- become the app's: granted the same for the app's role, taken back from the administrator.
WITH admin AS (SELECT oid FROM pg_roles WHERE rolname = :'admin'),
entry AS (
  SELECT d.defaclnamespace AS schema_oid, d.defaclobjtype AS objtype, d.defaclacl AS acl,
         CASE WHEN d.defaclnamespace = 0 THEN '' ELSE format(' IN SCHEMA %I', n.nspname) END AS scope,
         CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                              WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' END AS kind
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
   WHERE d.defaclrole = (SELECT oid FROM admin)
),
granted AS (
  SELECT e.scope, e.kind, a.privilege_type, a.is_grantable,
         CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
    FROM entry e, aclexplode(e.acl) AS a
   WHERE a.grantee <> (SELECT oid FROM admin)
),
-- Without an entry, anyone may execute new functions and use new types: an entry that names no
-- PUBLIC grant took that away.
public_revoked AS (
  SELECT e.kind, CASE e.objtype WHEN 'f' THEN 'EXECUTE' ELSE 'USAGE' END AS privilege_type
    FROM entry e
   WHERE e.schema_oid = 0 AND e.objtype IN ('f', 'T')
     AND NOT EXISTS (SELECT FROM aclexplode(e.acl) AS a WHERE a.grantee = 0)
)
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s GRANT %s ON %s TO %s%s', :'app', scope, privilege_type,
              kind, grantee, CASE WHEN is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
  FROM granted
UNION ALL
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s REVOKE %s ON %s FROM %s', :'admin', scope, privilege_type,
              kind, grantee)
  FROM granted
UNION ALL
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE %s ON %s FROM PUBLIC', :'app', privilege_type, kind)
  FROM public_revoked
UNION ALL
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT %s ON %s TO PUBLIC', :'admin', privilege_type, kind)
  FROM public_revoked
\gexec

COMMIT;
