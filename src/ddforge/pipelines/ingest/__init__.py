"""Raw data to normalised train/val/test tensors and the fitted pixel transform."""
