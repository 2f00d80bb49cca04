"""Pure DataFrame -> DataFrame transforms from lake tables to marts."""
