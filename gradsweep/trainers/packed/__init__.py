"""Packed training: K trials of one balancer family trained as one stacked model."""
