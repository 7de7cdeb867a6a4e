"""The clinic server: API, database, doctor review, expert system, model distribution."""
