"""Peer matching (jumelage, docs/design.md §11): a newcomer put in touch with someone who settled
in the same region before, on the peer's terms: the tables (`profiles`) and the use cases
(`matching`)."""
