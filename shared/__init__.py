"""Plumbing and contracts shared by every service: settings, logging, database sessions,
the event envelope and catalogue, the transactional outbox and its relay, the consumer runner,
JWT verification, problem+json errors and the service app factory. No domain logic lives here."""
