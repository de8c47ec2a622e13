"""The MASH web page: sign in, check a person or a household, read the answer (GOV.UK Design System)."""
