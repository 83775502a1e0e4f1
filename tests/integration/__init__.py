"""Integration tests: each adapter and step against the real thing (Azurite, SQLite, HTTP stubs, SDKs, Bicep)."""
