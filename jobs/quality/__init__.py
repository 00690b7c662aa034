"""The quality analyses behind the `quality` agent: complexity (lizard) and duplicated code."""
