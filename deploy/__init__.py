"""Running several plate servers as one site: nginx in front, Redis between (README: scale-out)."""
