"""Models: the built-in model builders, their declared parameters, and users' own builders."""
