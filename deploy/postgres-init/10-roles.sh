#!/bin/sh
# Runs once, when the PostgreSQL container initialises an empty data volume
# (docker-entrypoint-initdb.d), as the superuser POSTGRES_USER. Creates the two roles
# the app uses (README, "Database roles"):
#   supportgroups      owns the database and its tables; only `migrate` connects as it
#   supportgroups_app  what Daphne and the scheduled commands connect as; owns nothing,
#                      and every migrate grants it SELECT/INSERT/UPDATE/DELETE only
# The superuser itself is for maintenance by hand; nothing in the app uses it.
set -eu
: "${DB_OWNER_PASSWORD:?set DB_OWNER_PASSWORD in deploy/db.env}"
: "${DB_APP_PASSWORD:?set DB_APP_PASSWORD in deploy/db.env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_password="$DB_OWNER_PASSWORD" -v app_password="$DB_APP_PASSWORD" <<'SQL'
CREATE ROLE supportgroups LOGIN PASSWORD :'owner_password';
CREATE ROLE supportgroups_app LOGIN PASSWORD :'app_password';
CREATE DATABASE supportgroups OWNER supportgroups;
-- Only the two roles may connect; no temporary tables for the app role.
REVOKE ALL ON DATABASE supportgroups FROM PUBLIC;
GRANT CONNECT ON DATABASE supportgroups TO supportgroups_app;
\connect supportgroups
-- PostgreSQL 15+ already keeps PUBLIC from creating objects in public; older ones do not.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
