"""Who is asking: SMART Backend Services (client registration with a public JWKS,
``private_key_jwt`` client assertions, short-lived access tokens with SMART v2 system
scopes), and the request context every FHIR route is answered in."""
