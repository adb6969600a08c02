"""Consent and privacy: what personal data may go where, and the trace of every read.

Owns consents (append-only records, the coverage check every flow calls, withdrawal and
expiry: `consents`), who sees what (`visibility`, the one place personal data is given or
withheld), the access log (`access_log`) and the rotation of the keys that encrypt personal
data at rest (`key_rotation`).
"""
