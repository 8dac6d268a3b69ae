"""The multitask problems: the interface every problem implements, and the built-in ones."""
