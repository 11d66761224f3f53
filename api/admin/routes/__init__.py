"""Admin API routes, one module per resource; each route calls one control service."""
