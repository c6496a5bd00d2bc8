#!/bin/sh
# The tracking server's entry point: refuse example secrets, write the auth app's config from
# the environment (MLflow reads its database from an ini file only), then run the command.
set -eu
/viralab/check-secrets.sh true
if [ -n "${MLFLOW_AUTH_DATABASE_URI:-}" ]; then
  umask 077
  # configparser reads `%` as interpolation: a percent-encoded password needs `%%`
  auth_db=$(printf '%s' "$MLFLOW_AUTH_DATABASE_URI" | sed 's/%/%%/g')
  cat > /tmp/mlflow_auth.ini <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-NO_PERMISSIONS}
database_uri = ${auth_db}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
  export MLFLOW_AUTH_CONFIG_PATH=/tmp/mlflow_auth.ini
fi
exec /bin/sh -c "$*"
