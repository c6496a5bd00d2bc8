"""Model families: one package per kind of model, owning its data, fit, evaluation and logs."""
