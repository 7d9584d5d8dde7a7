"""Privacy check and export of synthetic sets."""
