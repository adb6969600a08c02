"""Follow-ups: what happens on time, or is noticed when it does not.

Owns the deadlines of a leg in business days (`deadlines`) and the policies that set them
(`policies`), the checks a scheduler tick runs on legs and organizations (`leg_checks`), the
participant's check-in (`checkins`), the mails to staff (`staff_mails`, `digests`), the tick
that runs them all (`tick`), the scheduler that calls it (`scheduler`) and `hub deadlines`
(`cli`).
"""
