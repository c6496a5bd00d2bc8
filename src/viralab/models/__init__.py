"""Estimators: tabular regressors, the Keras LSTM builder, naive baselines."""
