#!/bin/sh
# Refuse to start while a secret is empty or still its docker/.env.example value ("change-me...").
# Compose's ${VAR:?} only proves a value is set: `make compose-config` validates the stack with the
# example file, so the example values are turned away here, when a container starts.
#   check-secrets.sh COMMAND...   checks $VIRALAB_SECRET_VARS (names), then execs COMMAND
set -eu
example=${VIRALAB_ENV_EXAMPLE:-/viralab/env.example}
bad=""
for name in ${VIRALAB_SECRET_VARS:-}; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    bad="$bad $name(empty)"
    continue
  fi
  expected=""
  if [ -r "$example" ]; then
    expected=$(sed -n "s/^$name=//p" "$example" | head -n 1)
  fi
  case "$value" in
    change-me*) bad="$bad $name" ;;
    *) if [ -n "$expected" ] && [ "$value" = "$expected" ]; then bad="$bad $name"; fi ;;
  esac
done
if [ -n "$bad" ]; then
  echo "refusing to start: example or empty secret(s):$bad; set real values in docker/.env" >&2
  exit 64
fi
exec "$@"
