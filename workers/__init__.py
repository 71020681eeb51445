"""Worker processes: one factory builds every worker of the fleet."""
