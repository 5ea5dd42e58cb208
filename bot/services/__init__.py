"""Services every feature shares: configuration, the spec chain, labels and roles (no feature imports another)."""
