"""What Québec's Law 25 asks of the organizations that use the hub, kept by the software: the
person's copy of their data, the register of confidentiality incidents, and (with the consent
records of `hub.consent`) the rest of docs/design.md §15."""
