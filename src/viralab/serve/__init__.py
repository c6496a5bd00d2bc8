"""Pyfunc models and predict_virality_score."""
