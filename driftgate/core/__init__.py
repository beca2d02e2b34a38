"""The shared core: what every service and the app use, importing none of them.

Errors and their HTTP mapping, event models, ids, adapter names and the one LoRA-directory
check, paths, credentials, the HTTP client of the services' APIs, and the state store (one
engine factory, one schema, its migrations).
"""
