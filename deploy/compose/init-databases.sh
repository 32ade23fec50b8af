#!/usr/bin/env bash
# One database and one role per service (run once by the postgres image on first start).
set -euo pipefail
for svc in stakeholders ideas votes comments; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE $svc LOGIN PASSWORD '${POSTGRES_PASSWORD}';
CREATE DATABASE $svc OWNER $svc;
SQL
done
