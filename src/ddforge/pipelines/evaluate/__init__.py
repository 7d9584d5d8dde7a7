"""The papers' evaluation protocol for every synthetic set and for the real-data baselines."""
