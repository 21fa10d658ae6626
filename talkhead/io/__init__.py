"""Media input and output: the only code in talkhead that touches media files."""
