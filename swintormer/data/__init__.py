"""Data: synthetic defocus from real photographs, and the bundled sample."""
