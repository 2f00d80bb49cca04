#!/usr/bin/env bash
# First start of the Postgres container only (docker-entrypoint-initdb.d): two databases, each
# with its own login role. Names and passwords come from the container's environment, which
# docker-compose.yml fills from the git-ignored .env; nothing secret is in this file.
#   - Airflow's metadata database, owned by AIRFLOW_DB_USER.
#   - The ledger warehouse, owned by LEDGER_DB_USER, a member of the group role ledger_loader
#     (the migrations in sql/ give it the schemas; ledger_analyst reads marts only).
set -euo pipefail

: "${AIRFLOW_DB_NAME:?}" "${AIRFLOW_DB_USER:?}" "${AIRFLOW_DB_PASSWORD:?}"
: "${LEDGER_DB_NAME:?}" "${LEDGER_DB_USER:?}" "${LEDGER_DB_PASSWORD:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v airflow_db="$AIRFLOW_DB_NAME" -v airflow_user="$AIRFLOW_DB_USER" \
    -v airflow_password="$AIRFLOW_DB_PASSWORD" \
    -v ledger_db="$LEDGER_DB_NAME" -v ledger_user="$LEDGER_DB_USER" \
    -v ledger_password="$LEDGER_DB_PASSWORD" <<'SQL'
CREATE ROLE :"airflow_user" LOGIN PASSWORD :'airflow_password';
CREATE DATABASE :"airflow_db" OWNER :"airflow_user";

CREATE ROLE ledger_loader NOLOGIN;
CREATE ROLE ledger_analyst NOLOGIN;
CREATE ROLE :"ledger_user" LOGIN PASSWORD :'ledger_password' IN ROLE ledger_loader;
GRANT ledger_analyst TO :"ledger_user" WITH ADMIN OPTION;
CREATE DATABASE :"ledger_db" OWNER :"ledger_user";
REVOKE ALL ON DATABASE :"airflow_db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"ledger_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"ledger_db" TO ledger_analyst;
SQL
