"""The questions ``otel-rerank demo`` and ``examples/load.py`` ask of the standard-library corpus.

Written the way people ask a docs assistant, each answerable from one docstring.
"""

from __future__ import annotations

from typing import Final

DEMO_QUERIES: Final = (
    "How do I turn a Python object into a JSON string?",
    "How can I create a temporary directory that is removed afterwards?",
    "How do I run a shell command and capture its output?",
    "What is the easiest way to count how many times each item occurs?",
    "How do I parse command-line arguments?",
    "How can I read a CSV file row by row?",
    "How do I compute the median of a list of numbers?",
    "How do I copy a whole directory tree?",
    "How can I find files matching a wildcard pattern?",
    "How do I schedule a coroutine and wait for several of them?",
    "How do I parse a date string into a datetime?",
    "How can I cache the results of an expensive function?",
    "How do I generate a random token that is safe for passwords?",
    "How do I compress data with gzip?",
    "How can I make a deep copy of a nested object?",
    "How do I split a URL into its components?",
    "How do I write log messages to a rotating file?",
    "How can I join path components independently of the operating system?",
    "How do I compute the SHA-256 digest of some bytes?",
    "How can I wait for a thread to finish?",
    "How do I pretty-print a nested data structure?",
    "How can I compare two sequences and show their differences?",
    "How do I create a named tuple type?",
    "How do I decode base64 data?",
    "How can I measure how long a small snippet takes to run?",
    "How do I iterate over every combination of items from two lists?",
    "How can I keep a list sorted while inserting items?",
    "How do I open a ZIP archive and list its members?",
    "How do I get the current time in UTC?",
    "How can I serialize objects to bytes and read them back?",
    "How do I define an enumeration of named constants?",
    "How can I send an HTTP request and read the response?",
)
