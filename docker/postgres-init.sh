#!/bin/sh
# First start of an empty cluster only (docker-entrypoint-initdb.d): one role per database, the
# passwords from the environment, passed as psql variables (quoted by psql, never in the SQL).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v mlflow_password="$MLFLOW_DB_PASSWORD" \
  -v viralab_password="$VIRALAB_DB_PASSWORD" \
  -v optuna_password="$OPTUNA_DB_PASSWORD" \
  -f /viralab/postgres-init.sql
