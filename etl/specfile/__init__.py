"""The spec file: YAML with positions -> JSON Schema -> frozen Spec objects, and what its SQL fields may hold."""
