# The tracking server: MLflow with the PostgreSQL driver and boto3 for the S3 artifact store.
FROM python:3.11.7-slim-bookworm
RUN pip install --no-cache-dir "mlflow[auth]==3.17.2" "psycopg2-binary==2.9.13" "boto3==1.44.5"
EXPOSE 5000
ENTRYPOINT ["/bin/sh", "-c"]
