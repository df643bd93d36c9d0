"""Wire models of the HTTP APIs (pydantic), separate from the domain objects."""
