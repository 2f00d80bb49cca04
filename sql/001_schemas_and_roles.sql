-- Schemas and the two group roles (DESIGN.md "Rules": a loader role writes; an analyst role
-- reads marts only). Both are NOLOGIN: an admin grants them to real users, so no password
-- lives in this repository, e.g.  CREATE ROLE alice LOGIN IN ROLE ledger_analyst;
-- Run as a superuser, or as a role with CREATEROLE that is a member of ledger_loader.

-- Roles are cluster-wide: another database on the same server may have created them already
-- (the exception handler covers two databases migrating at the same moment).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_loader') THEN
        CREATE ROLE ledger_loader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_analyst') THEN
        CREATE ROLE ledger_analyst NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

-- staging: COPY target and data-quality audit, invisible to analysts.
-- marts: what analysts query. audit: runs, input files, quarantine, checks, closed periods.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS audit;  -- migrate() created it already, for schema_migrations
ALTER SCHEMA staging OWNER TO ledger_loader;
ALTER SCHEMA marts OWNER TO ledger_loader;
ALTER SCHEMA audit OWNER TO ledger_loader;

REVOKE ALL ON SCHEMA staging FROM PUBLIC;
REVOKE ALL ON SCHEMA audit FROM PUBLIC;
REVOKE ALL ON SCHEMA marts FROM PUBLIC;
GRANT USAGE ON SCHEMA marts TO ledger_analyst;

-- Tables the loader creates in marts later (every migration creates them as ledger_loader)
-- are readable by analysts without a grant per table.
ALTER DEFAULT PRIVILEGES FOR ROLE ledger_loader IN SCHEMA marts
    GRANT SELECT ON TABLES TO ledger_analyst;
