"""One template distillation pipeline, instantiated per method under a Kedro namespace."""
