"""Comparison table, image grids and MLflow metrics for every method and baseline."""
