"""LocalStack Lambda runtime executor running Node.js handlers as host processes (no Docker)."""
