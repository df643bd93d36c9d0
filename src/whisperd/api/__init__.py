"""HTTP routes (thin), error mapping and middleware."""
