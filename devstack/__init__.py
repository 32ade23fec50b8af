"""Local platform runner: embedded PostgreSQL and nats-server from PyPI wheels, one database
and Alembic upgrade per service, then the services and gateway under honcho."""
