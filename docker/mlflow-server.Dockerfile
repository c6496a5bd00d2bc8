# The tracking server: MLflow (with its auth app) plus the PostgreSQL driver and boto3 for the S3
# artifact store. Runs as an unprivileged user; refuses example secrets at start.
FROM python:3.11.7-slim-bookworm
RUN pip install --no-cache-dir "mlflow[auth]==3.17.2" "psycopg2-binary==2.9.13" "boto3==1.44.5" \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin mlflow
# the scripts are executable in git; COPY keeps the mode
COPY check-secrets.sh mlflow-entrypoint.sh /viralab/
COPY .env.example /viralab/env.example
USER 10001:10001
WORKDIR /tmp
EXPOSE 5000
ENTRYPOINT ["/viralab/mlflow-entrypoint.sh"]
