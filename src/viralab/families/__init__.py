"""Model families: each owns its data contract, fit, evaluation, logging and packaging."""
