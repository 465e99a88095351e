"""The read API and the dashboard page over Cassandra (docs/dashboard.md): ``python -m dashboard``."""
