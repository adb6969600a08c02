"""Partners who answer from their mailbox (design §14): a mail for every new leg to the
receiving organization's notification recipients, with a signed link that opens the leg and
lets them answer it without an account."""
