# The trainer: this project installed, running `mlflow run . --env-manager local -P ...`.
FROM python:3.11.7-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir -e .
COPY . .
ENV MLFLOW_DISABLE_TELEMETRY=true TF_CPP_MIN_LOG_LEVEL=2
CMD ["mlflow", "run", ".", "--env-manager", "local", "-P", "model=ridge"]
