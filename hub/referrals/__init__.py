"""Referrals: the handoff itself.

Owns the lifecycle rules of a leg (`lifecycle`, pure: no Flask, no SQLAlchemy), the
participants who are referred (`participants`), the legs with their snapshot and the reads
that find them (`legs`), the use cases that send, move, forward and cancel them
(`handoffs`), the sender's redirect (`redirection`), the coordinators' list of stalled
handoffs (`stalled`) and the funder reports (`reports`).
"""
