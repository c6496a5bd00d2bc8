-- One cluster, separate databases: MLflow's backend store has its own `model_versions` table,
-- so the application tables (and their model_versions mirror) and Optuna studies live apart.
CREATE DATABASE viralab;
CREATE DATABASE optuna;
