"""Retrain triggers and training alerts."""
