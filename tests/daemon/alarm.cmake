# alarm tests of the daemon (issue 5): registered here when they land.
