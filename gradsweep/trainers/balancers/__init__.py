"""The balancers: the interface, one file per built-in balancer (its declaration and its
code), and the catalogue that finds them and a user's own by import path."""
