"""The worker heartbeat that /readyz reads: arq's own health-check key for the default queue."""

HEALTH_KEY = "arq:queue:health-check"
HEALTH_INTERVAL_S = 5  # arq keeps the key for interval + 1 s; /readyz says "no heartbeat" after that
