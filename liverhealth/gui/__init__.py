"""The PyQt5 workstation window (it only calls the library: no SQL or inference here)."""
