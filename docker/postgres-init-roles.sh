#!/bin/sh
# Runs once, when the PostgreSQL volume is first created: the schema owner (migrations) and the
# app role (the API), which owns nothing and cannot bypass row-level security.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE app_owner LOGIN PASSWORD '${APP_OWNER_PASSWORD}';
CREATE ROLE app_user LOGIN PASSWORD '${APP_USER_PASSWORD}' NOSUPERUSER NOBYPASSRLS;
ALTER DATABASE "${POSTGRES_DB}" OWNER TO app_owner;
ALTER SCHEMA public OWNER TO app_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO app_user;
SQL
