"""Test suite of the VideoCrafter Suite pack (run through ``scripts/test.sh``)."""
