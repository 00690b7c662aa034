"""The security agent's scanners: secrets (detect-secrets), SAST (bandit, semgrep) and dependency
vulnerabilities (lock files against OSV); `jobs.agents.security` runs them."""
