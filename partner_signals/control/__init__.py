"""The control plane's service functions: one set for the admin API, the CLI and the console.

Each function takes a SQLAlchemy connection (the caller owns the transaction) and the
`Actor` asking, checks the actor's role and company scope, does the change and records it
in the audit trail in the same transaction. Errors are `ControlError`s whose status and
code the admin API answers with (application/problem+json) and the CLI prints as one line.

- `actor`: who is asking (an operator token or the local command line) and what it may do
- `audit`: the append-only trail and its reader
- `operators`: operator tokens (create, list, revoke, authenticate)
- `companies`: companies and their plans
- `keys`: partner API keys and POS ingest keys (list, create, revoke)
- `health`: the health summary an on-call operator reads first
"""
