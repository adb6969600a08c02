"""The outbox: what leaves the hub after a commit.

Owns the mail outbox and its transports (`mail`) and the hub's side of outbound webhooks:
events fanned out into deliveries and rendered for each endpoint (`webhook_fanout`), and the
endpoints' subscriptions as partners and admins manage them (`subscriptions`).  The delivery
engine itself is `webhooks/`, which knows nothing of the hub.
"""
