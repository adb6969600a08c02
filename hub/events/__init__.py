"""The event log: every change is an immutable event, appended with its outbox row in the
transaction of the change (docs/design.md §3).  This package is its one writer: nothing outside it
writes the event tables.

- `types`: the closed list of event types;
- `store`: the tables and `record()`, which appends one event;
- `bulk`: many at once, the same rows: `record_many()`, and on PostgreSQL the CTEs that append
  one event per row inside a caller's statement (`appending`);
- `envelope`: CloudEvents rendering, per recipient;
- `feed`: an organization's feed, read with a cursor.
"""
