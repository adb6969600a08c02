"""Adapters: the hub's glue to the outside world's libraries and formats.

Owns the Authlib OAuth 2.0 server and resource protector (`oauth`), FHIR R4 resources
(`fhir`), Open Referral HSDS 3.0 documents (`hsds`) and spreadsheets in and out
(`spreadsheet`).  They translate; the capabilities decide.
"""
