"""Label-scale family over the real broker with the CAS simulator on TCP."""
