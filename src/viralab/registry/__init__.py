"""Model Registry: promotion gates, aliases/stages, sync to the model_versions table."""
