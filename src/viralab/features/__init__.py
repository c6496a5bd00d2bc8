"""Feature engineering as scikit-learn transformers: flatten, type, encode, window."""
