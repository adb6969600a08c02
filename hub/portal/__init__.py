"""The portal: the pages people use, in French and in English.

Owns the server-rendered pages (counsellors, receiving partners, coordinators, organization
admins, and the participant's check-in reached from a mail), their templates, static files
and the translation catalogues (`templates/`, `static/`, `translations/`).  Pages call the
same use cases as the API; `app` registers them.
"""
