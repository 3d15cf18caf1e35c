"""Results: SQL aggregation, disclosure control, snapshots, and public and staff result views."""
