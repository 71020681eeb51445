"""Pure domain code: levels, billing math, contracts. Imports neither Temporal activities nor I/O."""
