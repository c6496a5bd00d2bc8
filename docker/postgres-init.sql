-- One cluster, separate databases, each owned by its own login role (run by postgres-init.sh,
-- which passes the passwords as psql variables). MLflow's backend store has its own
-- `model_versions` table, so the application tables (and their model_versions mirror) and
-- Optuna studies live apart; the tracking server's auth app keeps its users in mlflow_auth.
-- The superuser (POSTGRES_USER) is for administration only: no service connects with it.
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE ROLE viralab LOGIN PASSWORD :'viralab_password';
CREATE ROLE optuna LOGIN PASSWORD :'optuna_password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
CREATE DATABASE viralab OWNER viralab;
CREATE DATABASE optuna OWNER optuna;
REVOKE CONNECT, TEMPORARY ON DATABASE mlflow, mlflow_auth, viralab, optuna FROM PUBLIC;
