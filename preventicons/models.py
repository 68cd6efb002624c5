"""Platform-level models (identity database)."""
