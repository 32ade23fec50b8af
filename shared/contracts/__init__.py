"""The services' public models: what each service's HTTP API answers, and what the gateway's
clients read (the contract between them, typed on both sides). One module per service; each
service's models.py imports its own and routes return only these."""
