"""A module a malicious bundle names: loading a bundle must never import it."""

raise RuntimeError("_never_imported was imported: a bundle's type names reached an import")
