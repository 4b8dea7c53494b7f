"""The composition root of BayLink: settings, the app factory, the CLI and the Celery app,
where ``terminology``, ``fhir_exchange``, ``consent`` and ``referral`` are wired together."""
