"""Privacy and utility evaluation on labelled faces."""
