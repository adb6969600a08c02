"""The partner API (`/api/v1`): one blueprint per resource, schemas beside them,
`Idempotency-Key` replays, and every error as RFC 9457 problem+json.  `app` registers it.
"""
