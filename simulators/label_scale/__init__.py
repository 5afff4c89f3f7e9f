"""Label-scale simulators (CAS CL series): a PLU table and printed labels."""
