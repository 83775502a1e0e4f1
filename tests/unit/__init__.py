"""Unit tests: the pure domain, the contracts and the policy model, called directly (no host, no tables)."""
