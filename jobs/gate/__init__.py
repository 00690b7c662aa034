"""The quality gate: conditions on new code over the other agents' results (check run `aqe/quality-gate`)."""
