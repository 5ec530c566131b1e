"""Facts without a model: CSS selectors and typed fields, and a product's facts from its structured data."""
