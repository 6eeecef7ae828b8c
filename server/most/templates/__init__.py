"""Templates of the moving-object search page (a package so they install with it)."""
