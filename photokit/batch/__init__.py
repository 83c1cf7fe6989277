"""Scoring archives: sources and engines (`archive`, ``photokit.score_archive``) and the
SQLite results store (`store`)."""
