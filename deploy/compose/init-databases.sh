#!/usr/bin/env bash
# One database and one login role per service, each role owning its database and nothing else.
# Run once by the postgres image on the first start of an empty volume (docker-entrypoint-initdb.d).
#
#   SERVICE_DATABASES="stakeholders ideas votes comments"   names: database = role = service
#   <NAME>_DB_PASSWORD                                      each role's password (required)
#
# Idempotent, so it can also be run by hand against an existing server (PGHOST, PGPORT, ...).
# Nobody but the owner may connect to a service's database: no service reads another's data.
set -euo pipefail

: "${SERVICE_DATABASES:?list the service databases}"
: "${POSTGRES_USER:=postgres}"

for name in $SERVICE_DATABASES; do
  password_var="${name^^}_DB_PASSWORD"
  password="${!password_var:-}"
  if [[ -z "$password" ]]; then
    echo "init-databases: $password_var is not set" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
    -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'name', :'name') \gexec
SQL
  echo "init-databases: database and role $name ready"
done
