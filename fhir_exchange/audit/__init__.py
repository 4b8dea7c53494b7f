"""The audit trail: an AuditEvent (IHE BALP) for every request that touches patient data,
written in the request's transaction, append-only and hash-chained."""
