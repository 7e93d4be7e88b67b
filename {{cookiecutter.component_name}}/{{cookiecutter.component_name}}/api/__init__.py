"""HTTP and WebSocket routes; they call services and never the reverse."""
