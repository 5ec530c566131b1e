"""Reading a page: its HTML parsed, its markdown, its main content (two readers reconciled), and the view a model is given."""
