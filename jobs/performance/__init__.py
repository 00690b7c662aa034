"""The performance agent's parts: config, thresholds, statistics, the built-in engine and the k6 adapter."""
