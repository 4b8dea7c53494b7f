"""The patient's consent page: /consent (routes.py), server-rendered with Jinja2."""
