"""The commands, one module each: options -> Settings -> one engine call -> render -> exit code."""
