"""Local development and test stacks: PostgreSQL, Redis and anvil on loopback, and the nodes."""
