"""Who a person is across the boundary: identity document numbers (validation with their
published check characters, canonical systems and forms) and, later, matching and linking."""
