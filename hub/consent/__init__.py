"""Consent and privacy: what personal data may go where, and the trace of every read.

Owns consents (append-only records and the coverage check every flow calls: `consents`),
their withdrawal and expiry, which cancel the legs a consent no longer covers
(`withdrawal`), who sees what (`visibility`, the one place personal data is given or
withheld), the access log (`access_log`) and the rotation of the keys that encrypt personal
data at rest (`key_rotation`).
"""
