"""Local mode and operator tooling: runs beside the service, never shipped in the Lambda asset."""
