"""The event log: every change is an immutable event, appended with its outbox row in the
transaction of the change (DESIGN §3).

- `types`: the closed list of event types;
- `store`: the tables and `record()`, the only way to append;
- `envelope`: CloudEvents rendering, per recipient;
- `feed`: an organization's feed, read with a cursor.
"""
