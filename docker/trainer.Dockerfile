# The trainer: this project installed, running `mlflow run . --env-manager local -P ...` as an
# unprivileged user. The build context is the repository: see /.dockerignore (no .env, no
# conf/local/, no .git).
FROM python:3.11.7-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin trainer
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir -e .
COPY --chown=10001:10001 . .
# the scripts are executable in git; COPY keeps the mode
COPY docker/check-secrets.sh /viralab/check-secrets.sh
COPY docker/.env.example /viralab/env.example
ENV MLFLOW_DISABLE_TELEMETRY=true TF_CPP_MIN_LOG_LEVEL=2
RUN chown 10001:10001 /app
USER 10001:10001
ENTRYPOINT ["/viralab/check-secrets.sh"]
CMD ["mlflow", "run", ".", "--env-manager", "local", "-P", "model=ridge"]
