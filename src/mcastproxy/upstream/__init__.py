"""The host side on each upstream interface, and the merge of what it reports."""
