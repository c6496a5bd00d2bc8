"""The monitor: retrain triggers and retrain runs, live MAE of served models, the A/B report,
and the forecasters compared side by side (`viralab monitor ...`, `viralab forecasts`)."""
