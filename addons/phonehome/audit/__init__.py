"""The per-flow pipeline, the session that feeds the store, and the stores themselves."""
